#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/keccak.hpp"
#include "pipekit/eth/abi.hpp"

#include <catch2/catch.hpp>

using namespace pipekit::eth;

namespace {

// Bytes (i * 7 + 3) mod 256, the pattern used for the reference digests below.
bytes pattern(std::size_t n) {
  bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return b;
}

std::string hash_hex(std::span<const std::uint8_t> data) { return to_hex(keccak256(data), false); }

}  // namespace

TEST_CASE("keccak256 published vectors", "[eth]") {
  CHECK(to_hex(keccak256(std::string_view("")), false) ==
        "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470");
  CHECK(to_hex(keccak256(std::string_view("abc")), false) ==
        "4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45");
  // Ethereum's transfer event topic and selector
  CHECK(to_hex(keccak256(std::string_view("Transfer(address,address,uint256)"))) ==
        "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
}

TEST_CASE("keccak256 around the 136-byte rate and over several blocks", "[eth]") {
  // Expected digests computed with js-sha3 0.9 (keccak256, a pure-JS reference):
  //   node -e 'const {keccak256}=require("js-sha3"); const b=Buffer.alloc(n);
  //            for(let i=0;i<n;i++) b[i]=(i*7+3)&255; console.log(keccak256(b))'
  CHECK(hash_hex(pattern(135)) == "00ef96af9cf4b24c7f269d922294444a197d0a33638c2e56634c57e892103a8f");
  CHECK(hash_hex(pattern(136)) == "742061bcad767ed4c4f5883b1dcb1aad11afdcc140dc469d953759b127b9f9ed");
  CHECK(hash_hex(pattern(137)) == "e3371f61e770abf254c34239c3b0099ad90594507415bc81dd0a10b9692bbf2a");
  CHECK(hash_hex(pattern(1000)) == "80cdc8dd52cbb3dbaea8f383209893fa2bb52efbd5aedbb4b26dcfe307fcdc9b");
  CHECK(hash_hex(pattern(1001)) == "5d5b99d5c193d05b5a701be3a379b4e9322ea7798b7c0e4877e29ad5cab012af");
}

TEST_CASE("hex conversion", "[eth]") {
  const bytes b{0x00, 0x01, 0xab, 0xff};
  CHECK(to_hex(b) == "0x0001abff");
  CHECK(to_hex(b, false) == "0001abff");
  CHECK(to_hex(bytes{}) == "0x");
  CHECK(from_hex("0x0001ABff") == b);
  CHECK(from_hex("0X0001abff") == b);
  CHECK(from_hex("0001abff") == b);
  CHECK(from_hex("0x").empty());
  CHECK(from_hex("").empty());
  CHECK_THROWS_WITH(from_hex("0x123"), "odd number of hex digits");
  CHECK_THROWS_WITH(from_hex("0x12g4"), "invalid hex digit 'g' at position 5");
  // bad characters are named before the digit count is checked
  CHECK_THROWS_WITH(from_hex(" 0xab"), "invalid hex digit ' ' at position 1");
  CHECK_THROWS_WITH(from_hex("0xab "), "invalid hex digit ' ' at position 5");
  CHECK_THROWS_WITH(from_hex("0xabc?"), "invalid hex digit '?' at position 6");
  CHECK_THROWS_WITH(from_hex("0x\xc3\xa9"), "invalid hex digit '\\xc3' at position 3");
  CHECK_THROWS_AS(from_hex("zz"), abi_error);
}
