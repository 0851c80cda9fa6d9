#pragma once
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

// nsqlookupd's TCP protocol ("  V1"), as brokers speak it to lookupd: the bytes a connection
// sends become commands or one fatal error. Kept free of Asio and Beast (std and nlohmann/json
// only) so the libFuzzer target builds it alone.
//
// Wire, client to lookupd: the magic "  V1", then commands as lines:
//   IDENTIFY\n[4-byte big-endian size][JSON body]     REGISTER <topic> [<channel>]\n
//   UNREGISTER <topic> [<channel>]\n                   PING\n
// lookupd to client: every answer framed as [4-byte big-endian size][data]; errors are
// "E_CODE description" (nsqlookupd's codes and texts) and every one of them closes the connection.
namespace pipekit::lookup {

// What a broker says of itself in IDENTIFY (and what /lookup and /nodes show of it).
struct peer_info {
  std::string remote_address;  // filled in by the server, not read from the body
  std::string hostname;
  std::string broadcast_address;
  std::int64_t tcp_port = 0;
  std::int64_t http_port = 0;
  std::string version;
  std::string topology_region;  // optional (nsq's topology-aware consumption); shown when set
  std::string topology_zone;
};

enum class command_type { identify, register_, unregister, ping };

struct command {
  command_type type = command_type::ping;
  std::string topic;    // register_/unregister
  std::string channel;  // register_/unregister: "" for the topic itself
  peer_info peer;       // identify
};

// A fatal error; wire() is what is sent (framed) before the connection is closed.
struct protocol_error {
  std::string code;         // "E_INVALID", "E_BAD_BODY", "E_BAD_TOPIC", "E_BAD_CHANNEL", "E_BAD_PROTOCOL"
  std::string description;  // "invalid command FOO"; empty for E_BAD_PROTOCOL
  std::string wire() const { return description.empty() ? code : code + " " + description; }
};

constexpr std::size_t default_max_body = 64u << 10;  // IDENTIFY bodies are ~200 bytes
constexpr std::size_t max_line = 1024;               // a valid command line is < 150 bytes
constexpr std::string_view magic_v1 = "  V1";

// One connection's parser: append what was read, then take commands with next() until it says
// more bytes are needed. It tracks IDENTIFY itself (REGISTER before it, or a second one, is an
// error, as in nsqlookupd). After an error it is finished: next() returns nothing.
class command_parser {
 public:
  using result = std::variant<std::monostate, command, protocol_error>;  // monostate: need more bytes

  explicit command_parser(std::size_t max_body = default_max_body) : max_body_(max_body) {}

  void append(std::string_view bytes) { buf_.append(bytes); }
  result next();

  // Bytes of an unfinished command (or magic) are waiting: a peer that stops here is stalling.
  bool mid_command() const noexcept { return !failed_ && (pos_ < buf_.size() || in_identify_); }
  bool identified() const noexcept { return identified_; }
  bool failed() const noexcept { return failed_; }

 private:
  result fail(std::string code, std::string description);
  result on_line(std::string_view line);
  result on_identify_body(std::string_view body);

  std::string buf_;
  std::size_t pos_ = 0;  // bytes of buf_ already consumed
  std::size_t max_body_;
  bool magic_done_ = false;
  bool identified_ = false;
  bool failed_ = false;
  bool in_identify_ = false;                // IDENTIFY line read, body size next
  std::optional<std::size_t> body_size_;   // size read, body next
};

// [4-byte big-endian size][data]
std::string frame(std::string_view data);

}  // namespace pipekit::lookup
