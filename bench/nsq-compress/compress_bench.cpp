// Stream compression of NSQ connections: snappy's framing (libsnappy + CRC-32C) against raw deflate
// (the reference: nsqd's other codec, at level 1 and at 6, nsqd's max), on NSQ message frames
// carrying JSON lines like nsq-pub's. Prints MB/s of plain bytes through encode and decode, the
// wire size, and CRC-32C with the SSE4.2 instruction against the table. Not CI.
// Usage: compress_bench [MEGABYTES]   (cmake --build build --target compress_bench)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "pipekit/io/crc32c.hpp"
#include "pipekit/nsq/compress.hpp"
#include "pipekit/nsq/protocol.hpp"

namespace nsq = pipekit::nsq;
using clock_type = std::chrono::steady_clock;

namespace {

// Message frames as the broker writes them: 16 KiB writes (its default output buffer).
std::string frames(std::size_t bytes) {
  std::string out;
  for (std::uint64_t i = 1; out.size() < bytes; ++i) {
    std::string body = "{\"n\":" + std::to_string(i) + ",\"user\":\"u" + std::to_string(i % 977) +
                       "\",\"event\":\"click\",\"pad\":\"" + std::to_string(i * 2654435761u) + "\"}";
    nsq::append_message_frame(out, static_cast<std::int64_t>(i) * 1000, 1, nsq::make_message_id(i), body);
  }
  return out;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

void run(const char* name, nsq::stream_codec codec, const std::string& plain) {
  constexpr std::size_t write_size = 16 * 1024;
  std::string wire, piece;
  wire.reserve(plain.size() + plain.size() / 4);
  auto t0 = clock_type::now();
  for (std::size_t at = 0; at < plain.size(); at += write_size) {
    piece.clear();
    codec.encoder->encode(std::string_view(plain).substr(at, write_size), piece);
    wire += piece;
  }
  const double enc = seconds_since(t0);
  auto decoder = name[0] == 's' ? nsq::make_snappy_decoder() : nsq::make_deflate_decoder();
  std::string back;
  back.reserve(plain.size());
  t0 = clock_type::now();
  for (std::size_t at = 0; at < wire.size(); at += 64 * 1024)
    if (!decoder->decode(std::string_view(wire).substr(at, 64 * 1024), back)) std::abort();
  const double dec = seconds_since(t0);
  if (back != plain) std::abort();
  const double mb = static_cast<double>(plain.size()) / 1e6;
  std::printf("%-10s encode %7.0f MB/s  decode %7.0f MB/s  wire %5.1f%% of plain\n", name, mb / enc, mb / dec,
              100.0 * static_cast<double>(wire.size()) / static_cast<double>(plain.size()));
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 64;
  const std::string plain = frames(mb << 20);
  std::printf("%zu MB of NSQ message frames (JSON bodies), written 16 KiB at a time\n", mb);
  run("deflate-6", nsq::make_deflate_codec(6), plain);
  run("deflate-1", nsq::make_deflate_codec(1), plain);
  run("snappy", nsq::make_snappy_codec(), plain);

  const double m = static_cast<double>(plain.size()) / 1e6;
  std::uint32_t sink = 0;
  auto t0 = clock_type::now();
  sink ^= pipekit::io::crc32c_table(plain);
  const double table = seconds_since(t0);
  std::printf("crc32c table     %7.0f MB/s\n", m / table);
  if (pipekit::io::crc32c_hw_available()) {
    t0 = clock_type::now();
    sink ^= pipekit::io::crc32c_hw(plain);
    const double hw = seconds_since(t0);
    std::printf("crc32c SSE4.2    %7.0f MB/s  (%.1fx the table)\n", m / hw, table / hw);
  }
  return sink == 0xdeadbeef ? 1 : 0;
}
