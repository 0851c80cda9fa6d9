#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "pipekit/nsq/protocol.hpp"

using namespace pipekit::nsq;

namespace {
bool valid(std::string_view s) noexcept { return !s.empty() && s.size() <= 64 && s.find('/') == std::string_view::npos; }

parse_limits limits() {
  parse_limits l;
  l.valid_topic = valid;
  l.valid_channel = valid;
  return l;
}

std::string be32(std::uint32_t v) {
  char b[4];
  put_u32(b, v);
  return std::string(b, 4);
}

// The input is kept (the result's views point into it) until the next call.
parse_result parse(const std::string& s, client_state state = client_state::init, bool hb = true) {
  static std::string kept;
  kept = s;
  return parse_command(kept, limits(), parse_context{state, hb});
}
}  // namespace

TEST_CASE("nsq frames and messages encode and decode", "[nsq]") {
  std::string out;
  append_frame(out, frame_type::response, "OK");
  REQUIRE(out == std::string("\0\0\0\x06\0\0\0\0OK", 10));
  auto id = make_message_id(0xabc);
  append_message_frame(out, 1234567890123, 3, id, "hello");
  frame f;
  auto n = parse_frame(out, f);
  REQUIRE(n == 10);
  CHECK(f.type == frame_type::response);
  CHECK(f.data == "OK");
  auto m = parse_frame(std::string_view(out).substr(10), f);
  REQUIRE(m == static_cast<std::ptrdiff_t>(8 + 26 + 5));
  CHECK(f.type == frame_type::message);
  message_view mv;
  REQUIRE(parse_message(f.data, mv));
  CHECK(mv.timestamp_ns == 1234567890123);
  CHECK(mv.attempts == 3);
  CHECK(mv.id == "0000000000000abc");
  CHECK(mv.body == "hello");
  std::uint64_t back = 0;
  CHECK(parse_message_id(mv.id, back));
  CHECK(back == 0xabc);
  CHECK_FALSE(parse_message_id("000000000000zzzz", back));
  CHECK(parse_frame(std::string_view(out).substr(0, 9), f) == 0);
  CHECK(parse_frame(std::string("\0\0\0\x02\0\0", 6), f) == -1);
}

TEST_CASE("nsq commands parse with nsqd's error codes, texts and fatality", "[nsq]") {
  SECTION("PUB") {
    auto r = parse("PUB t\n" + be32(5) + "hello");
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.cmd.type == command_type::pub);
    CHECK(r.cmd.topic == "t");
    CHECK(r.cmd.body == "hello");
    CHECK(r.consumed == 6 + 4 + 5);
    auto partial = parse("PUB t\n" + be32(5) + "he");
    CHECK(partial.status == parse_status::need_more);
    CHECK(partial.err.wire() == "E_BAD_MESSAGE PUB failed to read message body");
    CHECK(parse("PUB t\n\0\0").err.wire() == "E_BAD_MESSAGE PUB failed to read message body size");
    CHECK(parse("PUB t\n" + be32(0)).err.wire() == "E_BAD_MESSAGE PUB invalid message body size 0");
    CHECK(parse("PUB t\n" + be32(2000000)).err.wire() == "E_BAD_MESSAGE PUB message too big 2000000 > 1048576");
    CHECK(parse("PUB a/b\n").err.wire() == "E_BAD_TOPIC PUB topic name \"a/b\" is not valid");
    CHECK(parse("PUB\n").err.wire() == "E_INVALID PUB insufficient number of parameters");
    CHECK(parse("PUB t").status == parse_status::need_more);
    CHECK(parse("PUB t").err.empty());
  }
  SECTION("MPUB") {
    std::string m;
    append_mpub(m, "t", std::vector<std::string>{"a", "bc"});
    auto r = parse(m);
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.cmd.messages == 2);
    std::vector<std::string> got;
    for_each_mpub_message(r.cmd.body, [&](std::string_view b) { got.emplace_back(b); });
    CHECK(got == std::vector<std::string>{"a", "bc"});
    CHECK(parse("MPUB t\n" + be32(4) + be32(0)).err.wire() == "E_BAD_BODY MPUB invalid message count 0");
    CHECK(parse("MPUB t\n" + be32(0)).err.wire() == "E_BAD_BODY MPUB invalid body size 0");
    CHECK(parse("MPUB t\n" + be32(9000000)).err.wire() == "E_BAD_BODY MPUB body too big 9000000 > 5242880");
    CHECK(parse("MPUB t\n" + be32(12) + be32(1) + be32(0)).err.wire() ==
          "E_BAD_MESSAGE MPUB invalid message(0) body size 0");
    auto stall = parse("MPUB t\n" + be32(100) + be32(2) + be32(1) + "a");
    CHECK(stall.status == parse_status::need_more);
    CHECK(stall.err.wire() == "E_BAD_MESSAGE MPUB failed to read message(1) body size");
    CHECK(parse("MPUB a/b\n").err.wire() == "E_BAD_TOPIC E_BAD_TOPIC MPUB topic name \"a/b\" is not valid");
  }
  SECTION("DPUB") {
    auto r = parse("DPUB t 1500\n" + be32(1) + "x");
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.cmd.timeout_ms == 1500);
    CHECK(parse("DPUB t x\n").err.wire() == "E_INVALID DPUB could not parse timeout x");
    CHECK(parse("DPUB t 3600001\n").err.wire() == "E_INVALID DPUB timeout 3600001 out of range 0-3600000");
    CHECK(parse("DPUB t\n").err.wire() == "E_INVALID DPUB insufficient number of parameters");
  }
  SECTION("IDENTIFY and SUB check state first") {
    auto r = parse("IDENTIFY\n" + be32(2) + "{}");
    REQUIRE(r.status == parse_status::ok);
    CHECK(r.cmd.body == "{}");
    CHECK(parse("IDENTIFY\n", client_state::subscribed).err.wire() == "E_INVALID cannot IDENTIFY in current state");
    CHECK(parse("IDENTIFY\n" + be32(6000000)).err.wire() == "E_BAD_BODY IDENTIFY body too big 6000000 > 5242880");
    CHECK(parse("SUB t c\n", client_state::subscribed).err.wire() == "E_INVALID cannot SUB in current state");
    CHECK(parse("SUB t c\n", client_state::init, false).err.wire() == "E_INVALID cannot SUB with heartbeats disabled");
    CHECK(parse("SUB t\n").err.wire() == "E_INVALID SUB insufficient number of parameters");
    CHECK(parse("SUB t c/d\n").err.wire() == "E_BAD_CHANNEL SUB channel name \"c/d\" is not valid");
    auto sub = parse("SUB t c\r\n");
    REQUIRE(sub.status == parse_status::ok);
    CHECK(sub.cmd.channel == "c");
  }
  SECTION("RDY, FIN, REQ, TOUCH, CLS") {
    auto s = client_state::subscribed;
    CHECK(parse("RDY 10\n", s).cmd.count == 10);
    CHECK(parse("RDY\n", s).cmd.count == 1);
    CHECK(parse("RDY 2501\n", s).err.wire() == "E_INVALID RDY count 2501 out of range 0-2500");
    CHECK(parse("RDY -1\n", s).err.wire() == "E_INVALID RDY could not parse count -1");
    CHECK(parse("RDY 1\n").err.wire() == "E_INVALID cannot RDY in current state");
    CHECK(parse("RDY 5\n", client_state::closing).cmd.ignored);
    CHECK(parse("FIN 0123456789abcdef\n", s).cmd.id == "0123456789abcdef");
    CHECK(parse("FIN 12\n", s).err.wire() == "E_INVALID Invalid Message ID");
    CHECK(parse("FIN\n", s).err.wire() == "E_INVALID FIN insufficient number of params");
    CHECK(parse("FIN 0123456789abcdef\n").err.wire() == "E_INVALID cannot FIN in current state");
    CHECK(parse("REQ 0123456789abcdef 10\n", s).cmd.timeout_ms == 10);
    // nsqd 1.1+ clamps a REQ timeout above --max-req-timeout and goes on (no error).
    auto clamped = parse("REQ 0123456789abcdef 3600001\n", s);
    REQUIRE(clamped.status == parse_status::ok);
    CHECK(clamped.cmd.timeout_ms == 3600000);
    CHECK(clamped.cmd.clamped);
    CHECK_FALSE(parse("REQ 0123456789abcdef 3600000\n", s).cmd.clamped);
    CHECK(parse("REQ 0123456789abcdef -5\n", s).err.wire() == "E_INVALID REQ could not parse timeout -5");
    CHECK(parse("REQ 0123456789abcdef\n", s).err.wire() == "E_INVALID REQ insufficient number of params");
    CHECK(parse("TOUCH 0123456789abcdef\n", client_state::closing).cmd.type == command_type::touch);
    CHECK(parse("CLS\n", s).cmd.type == command_type::cls);
    CHECK(parse("CLS\n").err.wire() == "E_INVALID cannot CLS in current state");
    CHECK(parse("NOP\n").cmd.type == command_type::nop);
  }
  SECTION("garbage") {
    auto r = parse("HELLO\n");
    CHECK(r.err.wire() == "E_INVALID invalid command HELLO");
    CHECK(r.err.fatal);
    CHECK(parse(std::string(5000, 'x')).status == parse_status::error);
    CHECK(parse("AUTH\n" + be32(3) + "abc").cmd.type == command_type::auth);
  }
}

TEST_CASE("nsq command numbers are read whole: past int64 is out of range, never wrapped", "[nsq]") {
  // A parser that wraps (or saturates in 64 unsigned bits and casts) read 10^19 as negative: the
  // DPUB was accepted and delivered at once.
  CHECK(parse("DPUB t 10000000000000000000\n").err.wire() ==
        "E_INVALID DPUB timeout 10000000000000000000 out of range 0-3600000");
  CHECK(parse("DPUB t 18446744073709551617\n").err.wire() ==
        "E_INVALID DPUB timeout 18446744073709551617 out of range 0-3600000");
  CHECK(parse("DPUB t 9223372036854775807\n").err.wire() ==
        "E_INVALID DPUB timeout 9223372036854775807 out of range 0-3600000");
  // 300 digits are shown shortened.
  CHECK(parse("DPUB t " + std::string(300, '9') + "\n").err.wire() ==
        "E_INVALID DPUB timeout " + std::string(24, '9') + "... out of range 0-3600000");
  CHECK(parse("DPUB t 0003600000\n" + be32(1) + "x").cmd.timeout_ms == 3600000);
  auto s = client_state::subscribed;
  CHECK(parse("RDY 18446744073709551616\n", s).err.wire() ==
        "E_INVALID RDY count 18446744073709551616 out of range 0-2500");
  CHECK(parse("RDY 9223372036854775808\n", s).err.wire() ==
        "E_INVALID RDY count 9223372036854775808 out of range 0-2500");
  auto req = parse("REQ 0123456789abcdef 100000000000000000000\n", s);
  REQUIRE(req.status == parse_status::ok);
  CHECK(req.cmd.timeout_ms == 3600000);
  // nsqd's MPUB count bound: (max_body_size - 4) / 5.
  CHECK(parse("MPUB t\n" + be32(8) + be32(1048576) + be32(1)).err.wire() ==
        "E_BAD_BODY MPUB invalid message count 1048576");
}

TEST_CASE("nsq IDENTIFY bodies are decoded and range-checked as nsqd does", "[nsq]") {
  identify_data d;
  client_error e;
  REQUIRE(parse_identify(R"({"client_id":"c","hostname":"h","user_agent":"ua/1","heartbeat_interval":1000,
    "output_buffer_size":64,"output_buffer_timeout":25,"msg_timeout":2000,"sample_rate":50,"feature_negotiation":true,
    "unknown":[1]})", identify_limits{}, d, e));
  CHECK(d.client_id == "c");
  CHECK(d.heartbeat_interval == 1000);
  CHECK(d.feature_negotiation);
  CHECK(d.sample_rate == 50);
  auto err = [&](const char* body) {
    identify_data x;
    client_error ce;
    CHECK_FALSE(parse_identify(body, identify_limits{}, x, ce));
    return ce.wire();
  };
  CHECK(err(R"({"heartbeat_interval":999})") == "E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid");
  CHECK(err(R"({"heartbeat_interval":60001})") == "E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid");
  CHECK(err(R"({"output_buffer_size":63})") == "E_BAD_BODY IDENTIFY output buffer size (63) is invalid");
  CHECK(err(R"({"output_buffer_timeout":30001})") == "E_BAD_BODY IDENTIFY output buffer timeout (30001) is invalid");
  // nsqd: at least --min-output-buffer-timeout (25ms), and the timeout is checked before the size.
  CHECK(err(R"({"output_buffer_timeout":10})") == "E_BAD_BODY IDENTIFY output buffer timeout (10) is invalid");
  CHECK(err(R"({"output_buffer_timeout":10,"output_buffer_size":63})") ==
        "E_BAD_BODY IDENTIFY output buffer timeout (10) is invalid");
  CHECK(err(R"({"sample_rate":100})") == "E_BAD_BODY IDENTIFY sample rate (100) is invalid");
  CHECK(err(R"({"msg_timeout":999})") == "E_BAD_BODY IDENTIFY msg timeout (999) is invalid");
  CHECK(err(R"({"heartbeat_interval":"x"})") == "E_BAD_BODY IDENTIFY failed to decode JSON body");
  CHECK(err("not json") == "E_BAD_BODY IDENTIFY failed to decode JSON body");
  identify_data y;
  CHECK(parse_identify(R"({"heartbeat_interval":-1,"output_buffer_size":-1,"output_buffer_timeout":-1,"short_id":"s"})",
                       identify_limits{}, y, e));
  CHECK(y.heartbeat_interval == -1);
  CHECK(y.client_id == "s");
}
