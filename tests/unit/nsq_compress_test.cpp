#include <catch2/catch.hpp>

#include <snappy.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "pipekit/io/crc32c.hpp"
#include "pipekit/nsq/compress.hpp"

namespace nsq = pipekit::nsq;

namespace {

std::string random_bytes(std::size_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

std::string compressible(std::size_t n) {
  std::string s;
  s.reserve(n + 64);
  for (std::size_t i = 0; s.size() < n; ++i) s += "{\"line\":" + std::to_string(i) + ",\"text\":\"hello nsq\"}\n";
  s.resize(n);
  return s;
}

// Feeds the decoder in pieces whose sizes come from `split`.
template <class Split>
std::string decode_in_pieces(nsq::stream_decoder& d, std::string_view wire, Split split) {
  std::string out;
  while (!wire.empty()) {
    const std::size_t n = std::min(split(), wire.size());
    REQUIRE(d.decode(wire.substr(0, n), out));
    wire.remove_prefix(n);
  }
  return out;
}

std::string chunk(unsigned char type, std::string_view body) {
  std::string c(4, '\0');
  c[0] = static_cast<char>(type);
  c[1] = static_cast<char>(body.size() & 0xff);
  c[2] = static_cast<char>((body.size() >> 8) & 0xff);
  c[3] = static_cast<char>((body.size() >> 16) & 0xff);
  return c.append(body);
}

std::string le32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[static_cast<std::size_t>(i)] = static_cast<char>((v >> (8 * i)) & 0xff);
  return s;
}

std::string snappy_wire(std::string_view plain) {
  std::string wire;
  nsq::make_snappy_encoder()->encode(plain, wire);
  return wire;
}

}  // namespace

TEST_CASE("snappy framing round trips any size, decoded across any read boundaries", "[nsq][compress]") {
  std::mt19937 rng(7);
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{65535}, std::size_t{65536}, std::size_t{65537},
                           std::size_t{1} << 20}) {
    for (bool random : {true, false}) {
      INFO("size " << size << (random ? " random" : " compressible"));
      const std::string plain = random ? random_bytes(size, static_cast<std::uint32_t>(size)) : compressible(size);
      const std::string wire = snappy_wire(plain);
      REQUIRE(wire.substr(0, 10) == nsq::snappy_frame::identifier_chunk);
      // Chunks: at most 64 KiB of input each.
      const std::size_t chunks = (size + nsq::snappy_frame::max_block - 1) / nsq::snappy_frame::max_block;
      if (!random && size > 1000) CHECK(wire.size() < plain.size() / 2);
      if (random) CHECK(wire.size() == 10 + plain.size() + 8 * chunks);  // stored: snappy does not help

      std::string out;
      REQUIRE(nsq::make_snappy_decoder()->decode(wire, out));
      REQUIRE(out == plain);

      auto d1 = nsq::make_snappy_decoder();
      if (size <= 65537) REQUIRE(decode_in_pieces(*d1, wire, [] { return std::size_t{1}; }) == plain);
      auto d2 = nsq::make_snappy_decoder();
      REQUIRE(decode_in_pieces(*d2, wire, [&] { return std::size_t{1} + rng() % 9000; }) == plain);
    }
  }
}

TEST_CASE("snappy encoder output is a stream: many calls, one decoder", "[nsq][compress]") {
  auto e = nsq::make_snappy_encoder();
  auto d = nsq::make_snappy_decoder();
  std::string all, got;
  std::mt19937 rng(3);
  for (int i = 0; i < 200; ++i) {
    std::string piece = (i % 2) ? compressible(rng() % 100000) : random_bytes(rng() % 3000, static_cast<std::uint32_t>(i));
    std::string wire;
    e->encode(piece, wire);
    all += piece;
    // Everything given so far decodes now (flushed).
    REQUIRE(d->decode(wire, got));
    REQUIRE(got.size() == all.size());
  }
  REQUIRE(got == all);
  // libsnappy's own decoder reads our compressed chunks.
  std::string wire = snappy_wire(compressible(50000));
  REQUIRE(static_cast<unsigned char>(wire[10]) == nsq::snappy_frame::compressed);
  std::string block;
  REQUIRE(snappy::Uncompress(wire.data() + 18, wire.size() - 18, &block));
  REQUIRE(block == compressible(50000));
}

TEST_CASE("snappy decoder reads hand-built chunks and skips what the format says to skip", "[nsq][compress]") {
  const std::string id(nsq::snappy_frame::identifier_chunk);
  const std::string a = "hello, ", b = "snappy world";
  std::string compressed_b;
  snappy::Compress(b.data(), b.size(), &compressed_b);
  std::string wire = id + chunk(0x01, le32(pipekit::io::crc32c_mask(pipekit::io::crc32c(a))) + a) +
                     chunk(0xfe, std::string(100, '\0')) +             // padding
                     chunk(0x80, "skippable") + chunk(0xfd, "") +      // skippable, even empty
                     id +                                               // a repeated identifier (concatenated streams)
                     chunk(0x00, le32(pipekit::io::crc32c_mask(pipekit::io::crc32c(b))) + compressed_b);
  for (std::size_t step : {std::size_t{1}, std::size_t{3}, wire.size()}) {
    auto d = nsq::make_snappy_decoder();
    REQUIRE(decode_in_pieces(*d, wire, [&] { return step; }) == a + b);
  }
}

TEST_CASE("snappy decoder reports corrupt streams", "[nsq][compress]") {
  const std::string plain = compressible(100000);
  const std::string wire = snappy_wire(plain);
  auto fails = [](std::string_view bad, std::string_view why) {
    auto d = nsq::make_snappy_decoder();
    std::string out;
    bool ok = true;
    for (std::size_t i = 0; i < bad.size() && ok; i += 1000) ok = d->decode(bad.substr(i, 1000), out);
    REQUIRE_FALSE(ok);
    CHECK_THAT(d->error(), Catch::Contains(std::string(why)));
    // It stays failed.
    CHECK_FALSE(d->decode(snappy_wire("x"), out));
  };
  SECTION("a wrong CRC") {
    std::string bad = wire;
    bad[14] = static_cast<char>(bad[14] ^ 0x01);  // the first chunk's checksum
    fails(bad, "checksum mismatch");
  }
  SECTION("a wrong CRC on a stored chunk") {
    std::string bad = snappy_wire(random_bytes(5000, 1));
    bad[bad.size() - 1] = static_cast<char>(bad.back() ^ 0x40);
    fails(bad, "checksum mismatch");
  }
  SECTION("corrupt compressed data") {
    std::string bad = wire;
    for (std::size_t i = 18; i < 60; ++i) bad[i] = '\xff';
    fails(bad, "corrupt snappy compressed chunk");
  }
  SECTION("an unknown unskippable chunk") {
    fails(std::string(nsq::snappy_frame::identifier_chunk) + chunk(0x02, "abcd"), "unskippable");
    fails(std::string(nsq::snappy_frame::identifier_chunk) + chunk(0x7f, ""), "unskippable");
  }
  SECTION("no stream identifier first") { fails(wire.substr(10), "stream identifier"); }
  SECTION("a bad stream identifier") {
    std::string bad = wire;
    bad[4] = 'S';
    fails(bad, "stream identifier");
  }
  SECTION("a chunk longer than the format allows") {
    std::string big = chunk(0x01, le32(0) + std::string(65537, 'a'));
    fails(std::string(nsq::snappy_frame::identifier_chunk) + big, "length");
  }
  SECTION("a chunk shorter than its checksum") {
    fails(std::string(nsq::snappy_frame::identifier_chunk) + chunk(0x00, "abc"), "length");
  }
}

TEST_CASE("deflate streams round trip through the shared module", "[nsq][compress]") {
  auto e = nsq::make_deflate_encoder(6);
  auto d = nsq::make_deflate_decoder();
  std::mt19937 rng(11);
  std::string all, got;
  for (std::size_t size : {std::size_t{0}, std::size_t{1}, std::size_t{65536}, std::size_t{1} << 20}) {
    for (bool random : {true, false}) {
      const std::string plain = random ? random_bytes(size, 5) : compressible(size);
      std::string wire;
      e->encode(plain, wire);
      all += plain;
      // Sync-flushed: all of it decodes now, in any split.
      while (!wire.empty()) {
        const std::size_t n = std::min<std::size_t>(1 + rng() % 5000, wire.size());
        REQUIRE(d->decode(std::string_view(wire).substr(0, n), got));
        wire.erase(0, n);
      }
      REQUIRE(got.size() == all.size());
    }
  }
  REQUIRE(got == all);
  std::string tail;
  e->finish(tail);
  REQUIRE(d->decode(tail, got));
  REQUIRE(got == all);
  // Garbage is an error.
  auto d2 = nsq::make_deflate_decoder();
  std::string out;
  CHECK_FALSE(d2->decode(std::string(64, '\xff'), out));
  CHECK_THAT(d2->error(), Catch::Contains("bad deflate stream"));
}

TEST_CASE("stream codecs are built per kind", "[nsq][compress]") {
  auto s = nsq::make_snappy_codec();
  CHECK(s.kind == nsq::compression::snappy);
  CHECK(static_cast<bool>(s));
  auto z = nsq::make_deflate_codec(1);
  CHECK(z.kind == nsq::compression::deflate);
  nsq::stream_codec none;
  CHECK_FALSE(static_cast<bool>(none));
}

TEST_CASE("decoders give a bounded amount per call and keep the rest", "[nsq][compress]") {
  // 60 MiB of NOP lines deflate to about 60 KiB: a bomb for a daemon that decodes all at once.
  std::string plain;
  for (int i = 0; i < 60 * 1024 * 1024 / 4; ++i) plain += "NOP\n";
  auto e = nsq::make_deflate_encoder(9);
  std::string wire;
  e->encode(plain, wire);
  REQUIRE(wire.size() < 200 * 1024);
  auto d = nsq::make_deflate_decoder();
  std::string out;
  REQUIRE(d->decode(wire, out, 256 * 1024));
  CHECK(out.size() <= 256 * 1024);
  CHECK(d->has_pending());
  std::size_t calls = 1;
  while (d->has_pending()) {
    const std::size_t before = out.size();
    REQUIRE(d->decode({}, out, 256 * 1024));
    REQUIRE(out.size() - before <= 256 * 1024);
    ++calls;
  }
  CHECK(calls >= 240);
  CHECK(out == plain);

  // Snappy: chunks of <= 64 KiB, one more at most past the bound.
  std::string zeros(4u << 20, '\0'), swire, sout;
  auto se = nsq::make_snappy_encoder();
  se->encode(zeros, swire);
  auto sd = nsq::make_snappy_decoder();
  REQUIRE(sd->decode(swire, sout, 64 * 1024));
  CHECK(sout.size() <= 128 * 1024);
  while (sd->has_pending()) {
    const std::size_t before = sout.size();
    REQUIRE(sd->decode({}, sout, 64 * 1024));
    REQUIRE(sout.size() - before <= 128 * 1024);
  }
  CHECK(sout == zeros);
}
