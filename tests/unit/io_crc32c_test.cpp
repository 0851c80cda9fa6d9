#include <catch2/catch.hpp>

#include <cstdint>
#include <random>
#include <string>

#include "pipekit/io/crc32c.hpp"

using pipekit::io::crc32c;
using pipekit::io::crc32c_hw;
using pipekit::io::crc32c_hw_available;
using pipekit::io::crc32c_mask;
using pipekit::io::crc32c_table;

TEST_CASE("crc32c gives the known CRC-32C check values", "[io]") {
  // The check value of the Castagnoli CRC (RFC 3720 B.4 and the CRC catalogue).
  CHECK(crc32c("123456789") == 0xE3069283u);
  CHECK(crc32c_table("123456789") == 0xE3069283u);
  CHECK(crc32c("") == 0u);
  CHECK(crc32c("a") == 0xC1D04330u);
  // RFC 3720 B.4: 32 bytes of zeros, of 0xff, ascending and descending.
  CHECK(crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  CHECK(crc32c(up) == 0x46DD794Eu);
  CHECK(crc32c(down) == 0x113FDB5Cu);
  // Continuing a CRC over a split equals the CRC of the whole.
  CHECK(crc32c("56789", crc32c("1234")) == 0xE3069283u);
  // Snappy's mask: golang/snappy's crc("") masked.
  CHECK(crc32c_mask(0) == 0xa282ead8u);
}

TEST_CASE("crc32c hardware and table implementations agree on any length and alignment", "[io]") {
  std::mt19937 rng(42);
  std::string data(70000, '\0');
  for (auto& c : data) c = static_cast<char>(rng());
  const bool hw = crc32c_hw_available();
  INFO("SSE4.2 crc32: " << (hw ? "yes" : "no, table only"));
  for (std::size_t offset = 0; offset < 16; ++offset) {
    for (std::size_t len : {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 255, 1000, 4096, 65536, 69000}) {
      std::string_view v(data.data() + offset, len);
      const std::uint32_t t = crc32c_table(v);
      if (hw) REQUIRE(crc32c_hw(v) == t);
      REQUIRE(crc32c(v) == t);
      // Split anywhere: the continuation matches.
      const std::size_t cut = len / 3;
      REQUIRE(crc32c(v.substr(cut), crc32c(v.substr(0, cut))) == t);
    }
  }
  for (int i = 0; i < 500; ++i) {
    const std::size_t offset = rng() % 64;
    const std::size_t len = rng() % 5000;
    std::string_view v(data.data() + offset, len);
    if (hw) REQUIRE(crc32c_hw(v) == crc32c_table(v));
  }
}
