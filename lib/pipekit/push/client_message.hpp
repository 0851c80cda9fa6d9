#pragma once
#include <optional>
#include <string>
#include <string_view>
#include <variant>

// What a ws-push client may send (docs/push-protocol.md), read from one text message. Free of
// Asio and Beast: the fuzz target builds it alone.
namespace pipekit::push {

// {"type":"login","token":"...","since":"..."}. `token` is nullopt when it is missing or not a
// string (the login is then refused as malformed). `since`, a message id to resume after, is
// read for the history still to come (docs/push-protocol.md, "Not yet"): nothing uses it today.
struct login_message {
  std::optional<std::string> token;
  std::optional<std::string> since;
};

// {"type":"ping"}, answered {"type":"pong"}.
struct ping_message {};

// Anything else; `error` is what the answer's "error" says.
struct invalid_message {
  enum class reason { invalid_json, unknown_type };
  reason error;
};

using client_message = std::variant<login_message, ping_message, invalid_message>;

// Reads one message as the node does: a JSON object whose string "type" is "login" or "ping";
// other members are ignored. Never throws.
client_message parse_client_message(std::string_view text);

// The answer to an invalid message: {"type":"error","error":"invalid_json"|"unknown_type"}.
std::string_view error_reply(invalid_message::reason r);

}  // namespace pipekit::push
