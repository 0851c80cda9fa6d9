// libFuzzer target for the NSQ V2 command parser (lib/pipekit/nsq/protocol.cpp).
// Input: byte 0 picks the connection state and heartbeat setting; the rest is the byte stream a client
// sent. Every command is parsed in turn as a broker would; an accepted IDENTIFY body is decoded and
// an accepted MPUB body walked. Errors are expected outcomes; crashes, out-of-bounds reads, a result
// that consumes nothing or more than it was given, or an MPUB walk that leaves its body are findings.
//
//   make -f Makefile.dist fuzz       (builds with the NSQ_FUZZ_SOURCES list, runs with corpus_nsq)
#include "pipekit/nsq/protocol.hpp"

#include <cstdio>
#include <cstdlib>

namespace {

bool valid_name(std::string_view s) noexcept {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
          c == '-' || c == '#'))
      return false;
  return true;
}

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "finding: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  if (size == 0) return 0;
  using namespace pipekit::nsq;
  parse_limits limits;
  limits.max_msg_size = 1024;
  limits.max_body_size = 4096;
  limits.max_line = 256;
  limits.valid_topic = valid_name;
  limits.valid_channel = valid_name;
  parse_context ctx;
  ctx.state = static_cast<client_state>(data[0] % 3);
  ctx.heartbeats_enabled = (data[0] & 0x80) == 0;
  std::string_view buf(reinterpret_cast<const char*>(data + 1), size - 1);
  while (!buf.empty()) {
    parse_result r = parse_command(buf, limits, ctx);
    if (r.status != parse_status::ok) break;
    if (r.consumed == 0 || r.consumed > buf.size()) finding("consumed out of range");
    const command& c = r.cmd;
    if (c.type == command_type::identify) {
      identify_data d;
      client_error e;
      parse_identify(c.body, identify_limits{}, d, e);
    } else if (c.type == command_type::mpub) {
      std::size_t total = 0, n = 0;
      for_each_mpub_message(c.body, [&](std::string_view m) {
        if (m.data() < c.body.data() || m.data() + m.size() > c.body.data() + c.body.size()) finding("mpub walk");
        total += m.size();
        ++n;
      });
      if (n != c.messages || total > c.body.size()) finding("mpub count");
    } else if (c.type == command_type::sub) {
      ctx.state = client_state::subscribed;
    } else if (c.type == command_type::cls) {
      ctx.state = client_state::closing;
    }
    buf.remove_prefix(r.consumed);
  }
  return 0;
}
