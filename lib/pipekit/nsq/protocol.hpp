#pragma once
// The NSQ TCP protocol V2 wire codec: frames, messages and commands, with nsqd's error codes and
// texts. No I/O and no dependencies beyond the standard library (and nlohmann/json for IDENTIFY),
// so the command parser can be fuzzed alone (tests/fuzz/nsq_command_fuzz.cpp).
//
// Frames (broker -> client):  [size u32 BE][type i32 BE][data], size counts type + data.
// Message frame data:         [timestamp ns i64 BE][attempts u16 BE][16-byte id][body].
// Commands (client -> broker): "NAME param ...\n", followed for IDENTIFY, AUTH, PUB, DPUB and MPUB by
// [size i32 BE][body]; an MPUB body is [count i32 BE] then count times [size i32 BE][message].
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace pipekit::nsq {

// The NSQ release whose nsqd and nsqlookupd pipekit's broker and lookupd answer as (their "version").
inline constexpr std::string_view nsq_version = "1.3.0";
inline constexpr std::string_view magic_v2 = "  V2";
inline constexpr std::size_t msg_id_length = 16;
inline constexpr std::size_t message_header_length = 8 + 2 + msg_id_length;  // before the body
inline constexpr std::string_view heartbeat_body = "_heartbeat_";

enum class frame_type : std::int32_t { response = 0, error = 1, message = 2 };

using message_id = std::array<char, msg_id_length>;

// --- encoding -------------------------------------------------------------------------------

void put_u32(char* out, std::uint32_t v) noexcept;
void put_u64(char* out, std::uint64_t v) noexcept;
std::uint32_t get_u32(const char* in) noexcept;
std::uint64_t get_u64(const char* in) noexcept;

// Appends one frame to out.
void append_frame(std::string& out, frame_type type, std::string_view data);
// Appends one message frame (the body copied once, no temporaries).
void append_message_frame(std::string& out, std::int64_t timestamp_ns, std::uint16_t attempts,
                          const message_id& id, std::string_view body);

// The id a broker gives its n-th message: n as 16 lowercase hex digits (as nsqd's GUIDs look).
message_id make_message_id(std::uint64_t n) noexcept;
// The inverse; false when id is not 16 hex digits.
bool parse_message_id(std::string_view id, std::uint64_t& n) noexcept;

// Client side, for tests and load clients: "NAME p1 p2\n" and, when body is given, its size and body.
void append_command(std::string& out, std::string_view line);
void append_command(std::string& out, std::string_view line, std::string_view body);
// Appends an MPUB for topic with the given message bodies.
template <class Range>
void append_mpub(std::string& out, std::string_view topic, const Range& bodies) {
  std::size_t total = 4;
  for (const auto& b : bodies) total += 4 + std::string_view(b).size();
  out.append("MPUB ").append(topic).push_back('\n');
  char len[4];
  put_u32(len, static_cast<std::uint32_t>(total));
  out.append(len, 4);
  put_u32(len, static_cast<std::uint32_t>(std::size(bodies)));
  out.append(len, 4);
  for (const auto& b : bodies) {
    std::string_view v(b);
    put_u32(len, static_cast<std::uint32_t>(v.size()));
    out.append(len, 4).append(v);
  }
}

// --- decoding frames (client side) ----------------------------------------------------------

struct frame {
  frame_type type = frame_type::response;
  std::string_view data;
};
// Parses one frame at the start of buf. Returns the bytes it takes (0: incomplete; -1: malformed,
// a size below 4 or above max_size).
std::ptrdiff_t parse_frame(std::string_view buf, frame& out, std::size_t max_size = 64u << 20);

struct message_view {
  std::int64_t timestamp_ns = 0;
  std::uint16_t attempts = 0;
  std::string_view id;
  std::string_view body;
};
// False when data is shorter than a message header.
bool parse_message(std::string_view data, message_view& out);

// --- commands (broker side) -----------------------------------------------------------------

enum class command_type : std::uint8_t { identify, auth, sub, pub, mpub, dpub, rdy, fin, req, touch, cls, nop };
enum class client_state : std::uint8_t { init, subscribed, closing };

// An error nsqd would send: "<code> <text>" in an error frame; fatal ones close the connection.
struct client_error {
  std::string code;
  std::string text;
  bool fatal = true;
  std::string wire() const { return code + " " + text; }
  bool empty() const noexcept { return code.empty(); }
};

using name_validator = bool (*)(std::string_view) noexcept;

struct parse_limits {
  std::int64_t max_msg_size = 1024 * 1024;
  std::int64_t max_body_size = 5 * 1024 * 1024;
  std::int64_t max_rdy_count = 2500;
  std::int64_t max_req_timeout_ms = 60 * 60 * 1000;
  std::size_t max_line = 4096;  // a longer command line is an error (nsqd's reader fails at 16 KiB)
  name_validator valid_topic = nullptr;    // required
  name_validator valid_channel = nullptr;  // required
};

// What the parser needs to know about the connection (nsqd checks state before parameters).
struct parse_context {
  client_state state = client_state::init;
  bool heartbeats_enabled = true;
};

struct command {
  command_type type = command_type::nop;
  std::string_view topic;    // SUB, PUB, MPUB, DPUB
  std::string_view channel;  // SUB
  std::string_view id;       // FIN, REQ, TOUCH: 16 bytes
  std::int64_t count = 0;    // RDY
  std::int64_t timeout_ms = 0;  // REQ, DPUB
  bool clamped = false;         // REQ: the timeout asked for was above max_req_timeout_ms (nsqd clamps)
  std::uint32_t messages = 0;   // MPUB: how many (the body is validated)
  bool ignored = false;         // RDY after CLS: nsqd ignores it
  std::string_view body;        // IDENTIFY, AUTH, PUB, DPUB: the body; MPUB: the whole MPUB body
};

enum class parse_status { ok, need_more, error };

struct parse_result {
  parse_status status = parse_status::need_more;
  std::size_t consumed = 0;  // ok: bytes the command took
  command cmd;
  // error: the error to send. need_more: the error nsqd would send if the input ended (or stalled)
  // here, or empty when no command has started (nsqd then closes without one).
  client_error err;
};

// Parses the first command in buf. Views in the result point into buf.
parse_result parse_command(std::string_view buf, const parse_limits& limits, const parse_context& ctx);

// Calls fn(body) for each message of an MPUB body that parse_command accepted.
template <class Fn>
void for_each_mpub_message(std::string_view body, Fn&& fn) {
  std::uint32_t n = get_u32(body.data());
  std::size_t pos = 4;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::uint32_t len = get_u32(body.data() + pos);
    fn(body.substr(pos + 4, len));
    pos += 4 + len;
  }
}

// IDENTIFY: every key nsqd reads, its ranges applied (0 = the broker's default, -1 = disabled).
struct identify_limits {
  std::int64_t max_heartbeat_interval_ms = 60000;
  std::int64_t max_output_buffer_size = 64 * 1024;
  std::int64_t min_output_buffer_timeout_ms = 25;  // nsqd's --min-output-buffer-timeout
  std::int64_t max_output_buffer_timeout_ms = 30000;
  std::int64_t max_msg_timeout_ms = 15 * 60 * 1000;
};
struct identify_data {
  std::string client_id;
  std::string hostname;
  std::string user_agent;
  std::int64_t heartbeat_interval = 0;
  std::int64_t output_buffer_size = 0;
  std::int64_t output_buffer_timeout = 0;
  std::int64_t msg_timeout = 0;
  std::int64_t sample_rate = 0;
  std::int64_t deflate_level = 0;
  bool feature_negotiation = false;
  bool tls_v1 = false;
  bool deflate = false;
  bool snappy = false;
};
// Decodes and range-checks an IDENTIFY body; on failure err holds nsqd's E_BAD_BODY error.
bool parse_identify(std::string_view body, const identify_limits& limits, identify_data& out, client_error& err);

// Go's %q for the names nsqd quotes in its errors.
std::string go_quote(std::string_view s);

}  // namespace pipekit::nsq
