#include "pipekit/nsq/protocol.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>

#include <nlohmann/json.hpp>

namespace pipekit::nsq {

void put_u32(char* out, std::uint32_t v) noexcept {
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
}
void put_u64(char* out, std::uint64_t v) noexcept {
  put_u32(out, static_cast<std::uint32_t>(v >> 32));
  put_u32(out + 4, static_cast<std::uint32_t>(v));
}
std::uint32_t get_u32(const char* in) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(in);
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint64_t get_u64(const char* in) noexcept {
  return (std::uint64_t{get_u32(in)} << 32) | get_u32(in + 4);
}

void append_frame(std::string& out, frame_type type, std::string_view data) {
  std::size_t at = out.size();
  out.resize(at + 8 + data.size());
  char* p = out.data() + at;
  put_u32(p, static_cast<std::uint32_t>(data.size() + 4));
  put_u32(p + 4, static_cast<std::uint32_t>(type));
  if (!data.empty()) std::memcpy(p + 8, data.data(), data.size());
}

void append_message_frame(std::string& out, std::int64_t timestamp_ns, std::uint16_t attempts,
                          const message_id& id, std::string_view body) {
  std::size_t at = out.size();
  std::size_t data_len = message_header_length + body.size();
  out.resize(at + 8 + data_len);
  char* p = out.data() + at;
  put_u32(p, static_cast<std::uint32_t>(data_len + 4));
  put_u32(p + 4, static_cast<std::uint32_t>(frame_type::message));
  put_u64(p + 8, static_cast<std::uint64_t>(timestamp_ns));
  p[16] = static_cast<char>(attempts >> 8);
  p[17] = static_cast<char>(attempts);
  std::memcpy(p + 18, id.data(), msg_id_length);
  if (!body.empty()) std::memcpy(p + 8 + message_header_length, body.data(), body.size());
}

message_id make_message_id(std::uint64_t n) noexcept {
  static constexpr char digits[] = "0123456789abcdef";
  message_id id;
  for (int i = 15; i >= 0; --i) {
    id[static_cast<std::size_t>(i)] = digits[n & 0xf];
    n >>= 4;
  }
  return id;
}

bool parse_message_id(std::string_view id, std::uint64_t& n) noexcept {
  if (id.size() != msg_id_length) return false;
  std::uint64_t v = 0;
  for (char c : id) {
    unsigned d;
    if (c >= '0' && c <= '9') d = static_cast<unsigned>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<unsigned>(c - 'a' + 10);
    else return false;
    v = (v << 4) | d;
  }
  n = v;
  return true;
}

void append_command(std::string& out, std::string_view line) { out.append(line).push_back('\n'); }

void append_command(std::string& out, std::string_view line, std::string_view body) {
  out.append(line).push_back('\n');
  char len[4];
  put_u32(len, static_cast<std::uint32_t>(body.size()));
  out.append(len, 4).append(body);
}

std::ptrdiff_t parse_frame(std::string_view buf, frame& out, std::size_t max_size) {
  if (buf.size() < 4) return 0;
  std::uint32_t size = get_u32(buf.data());
  if (size < 4 || size > max_size) return -1;
  if (buf.size() < 4 + std::size_t{size}) return 0;
  out.type = static_cast<frame_type>(static_cast<std::int32_t>(get_u32(buf.data() + 4)));
  out.data = buf.substr(8, size - 4);
  return static_cast<std::ptrdiff_t>(4 + std::size_t{size});
}

bool parse_message(std::string_view data, message_view& out) {
  if (data.size() < message_header_length) return false;
  out.timestamp_ns = static_cast<std::int64_t>(get_u64(data.data()));
  out.attempts = static_cast<std::uint16_t>((static_cast<unsigned char>(data[8]) << 8) |
                                            static_cast<unsigned char>(data[9]));
  out.id = data.substr(10, msg_id_length);
  out.body = data.substr(message_header_length);
  return true;
}

std::string go_quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string q = "\"";
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': q += "\\\""; break;
      case '\\': q += "\\\\"; break;
      case '\n': q += "\\n"; break;
      case '\r': q += "\\r"; break;
      case '\t': q += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f || u >= 0x80) {
          q += "\\x";
          q += hex[u >> 4];
          q += hex[u & 0xf];
        } else {
          q += c;
        }
    }
  }
  q += '"';
  return q;
}

namespace {

constexpr std::size_t max_params = 8;

struct line_params {
  std::string_view p[max_params];
  std::size_t n = 0;  // how many there were (may exceed max_params; the rest are not kept)
};

line_params split_line(std::string_view line) {
  line_params out;
  std::size_t start = 0;
  for (;;) {
    std::size_t sp = line.find(' ', start);
    std::string_view part = line.substr(start, sp == std::string_view::npos ? std::string_view::npos : sp - start);
    if (out.n < max_params) out.p[out.n] = part;
    ++out.n;
    if (sp == std::string_view::npos) break;
    start = sp + 1;
  }
  return out;
}

// nsqd's ByteToBase10: decimal digits only (an empty string is 0). A value past int64 saturates
// at its maximum, so it is out of every range (nsqd's uint64 wraps around there instead).
bool base10(std::string_view s, std::int64_t& out) {
  std::int64_t n = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    const int d = c - '0';
    n = n > (INT64_MAX - d) / 10 ? INT64_MAX : n * 10 + d;
  }
  out = n;
  return true;
}

// A parsed number for an error text: the value, or for one that saturated the digits sent
// (without leading zeros, shortened past 24 digits).
std::string shown(std::string_view digits, std::int64_t v) {
  if (v != INT64_MAX) return std::to_string(v);
  digits.remove_prefix(std::min(digits.find_first_not_of('0'), digits.size()));
  return digits.size() > 24 ? std::string(digits.substr(0, 24)) + "..." : std::string(digits);
}

std::int32_t read_i32(const char* p) { return static_cast<std::int32_t>(get_u32(p)); }

parse_result fail(std::string code, std::string text, bool fatal = true) {
  parse_result r;
  r.status = parse_status::error;
  r.err = client_error{std::move(code), std::move(text), fatal};
  return r;
}

parse_result more(std::string code, std::string text) {
  parse_result r;
  r.status = parse_status::need_more;
  r.err = client_error{std::move(code), std::move(text), true};
  return r;
}

parse_result done(std::size_t consumed, command cmd) {
  parse_result r;
  r.status = parse_status::ok;
  r.consumed = consumed;
  r.cmd = cmd;
  return r;
}

std::string str(std::string_view v) { return std::string(v); }
std::string num(std::int64_t v) { return std::to_string(v); }

// The [size][body] of IDENTIFY and AUTH (E_BAD_BODY, checked against max_body_size first).
parse_result read_body_bounded(std::string_view buf, std::size_t pos, const parse_limits& limits,
                               const char* name, command cmd) {
  std::string n = name;
  if (buf.size() < pos + 4) return more("E_BAD_BODY", n + " failed to read body size");
  std::int32_t len = read_i32(buf.data() + pos);
  if (len > limits.max_body_size)
    return fail("E_BAD_BODY", n + " body too big " + num(len) + " > " + num(limits.max_body_size));
  if (len <= 0) return fail("E_BAD_BODY", n + " invalid body size " + num(len));
  auto ulen = static_cast<std::size_t>(len);
  if (buf.size() < pos + 4 + ulen) return more("E_BAD_BODY", n + " failed to read body");
  cmd.body = buf.substr(pos + 4, ulen);
  return done(pos + 4 + ulen, cmd);
}

// The [size][message] of PUB and DPUB (E_BAD_MESSAGE, checked against max_msg_size).
parse_result read_message_body(std::string_view buf, std::size_t pos, const parse_limits& limits,
                               const char* name, command cmd) {
  std::string n = name;
  if (buf.size() < pos + 4) return more("E_BAD_MESSAGE", n + " failed to read message body size");
  std::int32_t len = read_i32(buf.data() + pos);
  if (len <= 0) return fail("E_BAD_MESSAGE", n + " invalid message body size " + num(len));
  if (len > limits.max_msg_size)
    return fail("E_BAD_MESSAGE", n + " message too big " + num(len) + " > " + num(limits.max_msg_size));
  auto ulen = static_cast<std::size_t>(len);
  if (buf.size() < pos + 4 + ulen) return more("E_BAD_MESSAGE", n + " failed to read message body");
  cmd.body = buf.substr(pos + 4, ulen);
  return done(pos + 4 + ulen, cmd);
}

parse_result read_mpub(std::string_view buf, std::size_t pos, const parse_limits& limits, command cmd) {
  if (buf.size() < pos + 4) return more("E_BAD_BODY", "MPUB failed to read body size");
  std::int32_t len = read_i32(buf.data() + pos);
  if (len <= 0) return fail("E_BAD_BODY", "MPUB invalid body size " + num(len));
  if (len > limits.max_body_size)
    return fail("E_BAD_BODY", "MPUB body too big " + num(len) + " > " + num(limits.max_body_size));
  auto ulen = static_cast<std::size_t>(len);
  std::size_t body_start = pos + 4;
  std::size_t body_end = body_start + ulen;
  std::size_t have = buf.size() < body_end ? buf.size() : body_end;  // bytes available of the body
  bool complete = buf.size() >= body_end;
  // Walk what has arrived, so a bad count or size is reported as soon as it is seen.
  std::size_t p = body_start;
  if (have < p + 4) {
    if (complete) return fail("E_BAD_BODY", "MPUB failed to read message count");
    return more("E_BAD_BODY", "MPUB failed to read message count");
  }
  std::int32_t count = read_i32(buf.data() + p);
  // nsqd: at most (max_body_size - 4) / 5 messages (4 bytes of count, 5 of size and body at least).
  if (count <= 0 || count > (limits.max_body_size - 4) / 5)
    return fail("E_BAD_BODY", "MPUB invalid message count " + num(count));
  p += 4;
  for (std::int32_t i = 0; i < count; ++i) {
    if (have < p + 4) {
      std::string t = "MPUB failed to read message(" + num(i) + ") body size";
      if (complete) return fail("E_BAD_MESSAGE", t);
      return more("E_BAD_MESSAGE", t);
    }
    std::int32_t size = read_i32(buf.data() + p);
    if (size <= 0)
      return fail("E_BAD_MESSAGE", "MPUB invalid message(" + num(i) + ") body size " + num(size));
    if (size > limits.max_msg_size)
      return fail("E_BAD_MESSAGE", "MPUB message too big " + num(size) + " > " + num(limits.max_msg_size));
    p += 4;
    if (have < p + static_cast<std::size_t>(size)) {
      if (complete) return fail("E_BAD_MESSAGE", "MPUB failed to read message body");
      return more("E_BAD_MESSAGE", "MPUB failed to read message body");
    }
    p += static_cast<std::size_t>(size);
  }
  if (p != body_end)
    return fail("E_BAD_BODY", "MPUB body size " + num(len) + " does not match its " + num(count) + " messages");
  cmd.body = buf.substr(body_start, ulen);
  cmd.messages = static_cast<std::uint32_t>(count);
  return done(body_end, cmd);
}

parse_result parse_id(const line_params& lp, command& cmd) {
  if (lp.p[1].size() != msg_id_length) return fail("E_INVALID", "Invalid Message ID");
  cmd.id = lp.p[1];
  return {};
}

bool subscribed_or_closing(const parse_context& ctx) {
  return ctx.state == client_state::subscribed || ctx.state == client_state::closing;
}

}  // namespace

parse_result parse_command(std::string_view buf, const parse_limits& limits, const parse_context& ctx) {
  std::size_t nl = buf.find('\n');
  if (nl == std::string_view::npos) {
    if (buf.size() > limits.max_line)
      return fail("E_INVALID", "command line longer than " + num(static_cast<std::int64_t>(limits.max_line)) + " bytes");
    return parse_result{};
  }
  if (nl > limits.max_line)
    return fail("E_INVALID", "command line longer than " + num(static_cast<std::int64_t>(limits.max_line)) + " bytes");
  std::string_view line = buf.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::size_t pos = nl + 1;
  line_params lp = split_line(line);
  std::string_view name = lp.p[0];
  command cmd;

  auto topic_ok = [&](std::string_view t) { return limits.valid_topic && limits.valid_topic(t); };
  auto channel_ok = [&](std::string_view c) { return limits.valid_channel && limits.valid_channel(c); };

  if (name == "IDENTIFY") {
    if (ctx.state != client_state::init) return fail("E_INVALID", "cannot IDENTIFY in current state");
    cmd.type = command_type::identify;
    return read_body_bounded(buf, pos, limits, "IDENTIFY", cmd);
  }
  if (name == "FIN" || name == "TOUCH") {
    bool fin = name == "FIN";
    if (!subscribed_or_closing(ctx))
      return fail("E_INVALID", fin ? "cannot FIN in current state" : "cannot TOUCH in current state");
    if (lp.n < 2)
      return fail("E_INVALID", fin ? "FIN insufficient number of params" : "TOUCH insufficient number of params");
    if (auto e = parse_id(lp, cmd); e.status == parse_status::error) return e;
    cmd.type = fin ? command_type::fin : command_type::touch;
    return done(pos, cmd);
  }
  if (name == "RDY") {
    if (ctx.state == client_state::closing) {
      cmd.type = command_type::rdy;
      cmd.ignored = true;
      return done(pos, cmd);
    }
    if (ctx.state != client_state::subscribed) return fail("E_INVALID", "cannot RDY in current state");
    std::int64_t count = 1;
    if (lp.n > 1 && !base10(lp.p[1], count)) return fail("E_INVALID", "RDY could not parse count " + str(lp.p[1]));
    if (count < 0 || count > limits.max_rdy_count)
      return fail("E_INVALID", "RDY count " + shown(lp.p[1], count) + " out of range 0-" + num(limits.max_rdy_count));
    cmd.type = command_type::rdy;
    cmd.count = count;
    return done(pos, cmd);
  }
  if (name == "REQ") {
    if (!subscribed_or_closing(ctx)) return fail("E_INVALID", "cannot REQ in current state");
    if (lp.n < 3) return fail("E_INVALID", "REQ insufficient number of params");
    if (auto e = parse_id(lp, cmd); e.status == parse_status::error) return e;
    std::int64_t ms = 0;
    if (!base10(lp.p[2], ms)) return fail("E_INVALID", "REQ could not parse timeout " + str(lp.p[2]));
    // nsqd 1.1+: a timeout above --max-req-timeout is clamped to it, and the REQ goes on.
    if (ms > limits.max_req_timeout_ms) {
      ms = limits.max_req_timeout_ms;
      cmd.clamped = true;
    }
    cmd.type = command_type::req;
    cmd.timeout_ms = ms;
    return done(pos, cmd);
  }
  if (name == "PUB") {
    if (lp.n < 2) return fail("E_INVALID", "PUB insufficient number of parameters");
    if (!topic_ok(lp.p[1])) return fail("E_BAD_TOPIC", "PUB topic name " + go_quote(lp.p[1]) + " is not valid");
    cmd.type = command_type::pub;
    cmd.topic = lp.p[1];
    return read_message_body(buf, pos, limits, "PUB", cmd);
  }
  if (name == "MPUB") {
    if (lp.n < 2) return fail("E_INVALID", "MPUB insufficient number of parameters");
    if (!topic_ok(lp.p[1]))
      return fail("E_BAD_TOPIC", "E_BAD_TOPIC MPUB topic name " + go_quote(lp.p[1]) + " is not valid");
    cmd.type = command_type::mpub;
    cmd.topic = lp.p[1];
    return read_mpub(buf, pos, limits, cmd);
  }
  if (name == "DPUB") {
    if (lp.n < 3) return fail("E_INVALID", "DPUB insufficient number of parameters");
    if (!topic_ok(lp.p[1])) return fail("E_BAD_TOPIC", "DPUB topic name " + go_quote(lp.p[1]) + " is not valid");
    std::int64_t ms = 0;
    if (!base10(lp.p[2], ms)) return fail("E_INVALID", "DPUB could not parse timeout " + str(lp.p[2]));
    if (ms > limits.max_req_timeout_ms)
      return fail("E_INVALID", "DPUB timeout " + shown(lp.p[2], ms) + " out of range 0-" + num(limits.max_req_timeout_ms));
    cmd.type = command_type::dpub;
    cmd.topic = lp.p[1];
    cmd.timeout_ms = ms;
    return read_message_body(buf, pos, limits, "DPUB", cmd);
  }
  if (name == "NOP") {
    cmd.type = command_type::nop;
    return done(pos, cmd);
  }
  if (name == "SUB") {
    if (ctx.state != client_state::init) return fail("E_INVALID", "cannot SUB in current state");
    if (!ctx.heartbeats_enabled) return fail("E_INVALID", "cannot SUB with heartbeats disabled");
    if (lp.n < 3) return fail("E_INVALID", "SUB insufficient number of parameters");
    if (!topic_ok(lp.p[1])) return fail("E_BAD_TOPIC", "SUB topic name " + go_quote(lp.p[1]) + " is not valid");
    if (!channel_ok(lp.p[2]))
      return fail("E_BAD_CHANNEL", "SUB channel name " + go_quote(lp.p[2]) + " is not valid");
    cmd.type = command_type::sub;
    cmd.topic = lp.p[1];
    cmd.channel = lp.p[2];
    return done(pos, cmd);
  }
  if (name == "CLS") {
    if (ctx.state != client_state::subscribed) return fail("E_INVALID", "cannot CLS in current state");
    cmd.type = command_type::cls;
    return done(pos, cmd);
  }
  if (name == "AUTH") {
    if (ctx.state != client_state::init) return fail("E_INVALID", "cannot AUTH in current state");
    if (lp.n != 1) return fail("E_INVALID", "AUTH invalid number of parameters");
    cmd.type = command_type::auth;
    return read_body_bounded(buf, pos, limits, "AUTH", cmd);
  }
  return fail("E_INVALID", "invalid command " + str(name));
}

namespace {

bool get_int(const nlohmann::json& j, const char* key, std::int64_t& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (it->is_number_unsigned()) {
    if (it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return false;
    out = static_cast<std::int64_t>(it->get<std::uint64_t>());
    return true;
  }
  if (!it->is_number_integer()) return false;
  out = it->get<std::int64_t>();
  return true;
}
bool get_bool(const nlohmann::json& j, const char* key, bool& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_boolean()) return false;
  out = it->get<bool>();
  return true;
}
bool get_string(const nlohmann::json& j, const char* key, std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return true;
  if (!it->is_string()) return false;
  out = it->get<std::string>();
  return true;
}

}  // namespace

bool parse_identify(std::string_view body, const identify_limits& limits, identify_data& out, client_error& err) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  auto bad = [&](std::string text) {
    err = client_error{"E_BAD_BODY", std::move(text), true};
    return false;
  };
  if (j.is_discarded() || !(j.is_object() || j.is_null())) return bad("IDENTIFY failed to decode JSON body");
  identify_data d;
  std::string short_id, long_id;
  if (j.is_object()) {
    bool ok = get_string(j, "client_id", d.client_id) && get_string(j, "hostname", d.hostname) &&
              get_string(j, "user_agent", d.user_agent) && get_string(j, "short_id", short_id) &&
              get_string(j, "long_id", long_id) && get_int(j, "heartbeat_interval", d.heartbeat_interval) &&
              get_int(j, "output_buffer_size", d.output_buffer_size) &&
              get_int(j, "output_buffer_timeout", d.output_buffer_timeout) &&
              get_int(j, "msg_timeout", d.msg_timeout) && get_int(j, "sample_rate", d.sample_rate) &&
              get_int(j, "deflate_level", d.deflate_level) &&
              get_bool(j, "feature_negotiation", d.feature_negotiation) && get_bool(j, "tls_v1", d.tls_v1) &&
              get_bool(j, "deflate", d.deflate) && get_bool(j, "snappy", d.snappy);
    if (!ok) return bad("IDENTIFY failed to decode JSON body");
  }
  if (d.client_id.empty()) d.client_id = short_id;
  if (d.hostname.empty()) d.hostname = long_id;

  auto v = [](std::int64_t x) { return std::to_string(x); };
  std::int64_t hb = d.heartbeat_interval;
  if (!(hb == -1 || hb == 0 || (hb >= 1000 && hb <= limits.max_heartbeat_interval_ms)))
    return bad("IDENTIFY heartbeat interval (" + v(hb) + ") is invalid");
  // nsqd's SetOutputBuffer checks the timeout first.
  std::int64_t obt = d.output_buffer_timeout;
  if (!(obt == -1 || obt == 0 ||
        (obt >= limits.min_output_buffer_timeout_ms && obt <= limits.max_output_buffer_timeout_ms)))
    return bad("IDENTIFY output buffer timeout (" + v(obt) + ") is invalid");
  std::int64_t obs = d.output_buffer_size;
  if (!(obs == -1 || obs == 0 || (obs >= 64 && obs <= limits.max_output_buffer_size)))
    return bad("IDENTIFY output buffer size (" + v(obs) + ") is invalid");
  if (d.sample_rate < 0 || d.sample_rate > 99) return bad("IDENTIFY sample rate (" + v(d.sample_rate) + ") is invalid");
  std::int64_t mt = d.msg_timeout;
  if (!(mt == 0 || (mt >= 1000 && mt <= limits.max_msg_timeout_ms)))
    return bad("IDENTIFY msg timeout (" + v(mt) + ") is invalid");
  out = std::move(d);
  return true;
}

}  // namespace pipekit::nsq
