// libFuzzer target for lookupd's TCP command parser (lib/pipekit/lookup/protocol.cpp).
// Input: byte 0 sets the chunk size (1..256) the rest is fed in; the rest is what a client sends.
// The same bytes are also fed in one piece, and both runs must give the same commands and the
// same error. Checked too: every command has valid names, an error is "E_..." and ends the parse.
//
// clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib \
//   tests/fuzz/lookupd_tcp_fuzz.cpp lib/pipekit/lookup/protocol.cpp lib/pipekit/nsq/names.cpp -o lookupd_tcp_fuzz
// ./lookupd_tcp_fuzz tests/fuzz/corpus_lookupd

#include "pipekit/lookup/protocol.hpp"
#include "pipekit/nsq/names.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace {

using namespace pipekit::lookup;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "lookupd_tcp_fuzz: %s\n", what);
    std::abort();
  }
}

// A transcript of everything the parser produced.
std::string feed(std::string_view input, std::size_t chunk) {
  command_parser parser(4096);
  std::string log;
  bool failed = false;
  for (std::size_t pos = 0; pos < input.size() && !failed; pos += chunk) {
    parser.append(input.substr(pos, chunk));
    for (;;) {
      auto r = parser.next();
      if (std::holds_alternative<std::monostate>(r)) break;
      if (auto* e = std::get_if<protocol_error>(&r)) {
        require(e->code.starts_with("E_"), "an error code without E_");
        require(parser.failed(), "an error did not end the parse");
        require(std::holds_alternative<std::monostate>(parser.next()), "a result after an error");
        log += "error:" + e->wire() + "\n";
        failed = true;
        break;
      }
      auto& c = std::get<command>(r);
      switch (c.type) {
        case command_type::ping: log += "ping\n"; break;
        case command_type::identify:
          require(parser.identified(), "identify without identified()");
          require(!c.peer.broadcast_address.empty() && c.peer.tcp_port != 0 && c.peer.http_port != 0 &&
                      !c.peer.version.empty(), "identify with a missing field");
          log += "identify:" + c.peer.broadcast_address + "\n";
          break;
        case command_type::register_:
        case command_type::unregister:
          require(parser.identified(), "register before identify");
          require(pipekit::nsq::is_valid_topic_name(c.topic), "an invalid topic accepted");
          require(c.channel.empty() || pipekit::nsq::is_valid_channel_name(c.channel), "an invalid channel accepted");
          log += (c.type == command_type::register_ ? "register:" : "unregister:") + c.topic + "/" + c.channel + "\n";
          break;
      }
    }
  }
  return log;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  std::size_t chunk = static_cast<std::size_t>(data[0]) + 1;
  std::string_view input(reinterpret_cast<const char*>(data + 1), size - 1);
  auto chunked = feed(input, chunk);
  auto whole = feed(input, input.size() + 1);
  require(chunked == whole, "chunked and whole feeds differ");
  auto f = frame(input.substr(0, 300));
  require(f.size() == 4 + std::min<std::size_t>(input.size(), 300), "frame size");
  return 0;
}
