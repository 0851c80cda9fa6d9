#include "pipekit/push/client_message.hpp"

#include <nlohmann/json.hpp>

namespace pipekit::push {

namespace {

std::optional<std::string> string_member(const nlohmann::json& msg, const char* key) {
  auto it = msg.find(key);
  if (it == msg.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

}  // namespace

client_message parse_client_message(std::string_view text) {
  const auto msg = nlohmann::json::parse(text, nullptr, false);
  if (msg.is_discarded()) return invalid_message{invalid_message::reason::invalid_json};
  const auto type = msg.is_object() ? string_member(msg, "type") : std::nullopt;
  if (type == "login") return login_message{string_member(msg, "token"), string_member(msg, "since")};
  if (type == "ping") return ping_message{};
  return invalid_message{invalid_message::reason::unknown_type};
}

std::string_view error_reply(invalid_message::reason r) {
  switch (r) {
    case invalid_message::reason::invalid_json: return R"({"type":"error","error":"invalid_json"})";
    case invalid_message::reason::unknown_type: break;
  }
  return R"({"type":"error","error":"unknown_type"})";
}

}  // namespace pipekit::push
