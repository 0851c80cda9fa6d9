#include "pipekit/eth/rpc_response.hpp"

#include <fmt/format.h>

#include "pipekit/eth/hex.hpp"
#include "pipekit/json/parse.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

enum class shape { any, data, quantity, hash, record_or_null, array, string };

shape shape_of(std::string_view method) {
  static constexpr std::pair<std::string_view, shape> table[] = {
      {"eth_call", shape::data},
      {"eth_chainId", shape::quantity},
      {"eth_blockNumber", shape::quantity},
      {"eth_getBalance", shape::quantity},
      {"eth_getTransactionCount", shape::quantity},
      {"eth_estimateGas", shape::quantity},
      {"eth_gasPrice", shape::quantity},
      {"eth_maxPriorityFeePerGas", shape::quantity},
      {"eth_sendTransaction", shape::hash},
      {"eth_sendRawTransaction", shape::hash},
      {"eth_getTransactionReceipt", shape::record_or_null},
      {"eth_getTransactionByHash", shape::record_or_null},
      {"eth_getBlockByNumber", shape::record_or_null},
      {"eth_getBlockByHash", shape::record_or_null},
      {"eth_getLogs", shape::array},
      {"eth_subscribe", shape::string},
  };
  for (const auto& [name, s] : table)
    if (name == method) return s;
  return shape::any;
}

bool is_hex_string(const json& v, std::size_t min_digits, std::size_t max_digits) {
  if (!v.is_string()) return false;
  std::string_view s = v.get_ref<const std::string&>();
  if (!s.starts_with("0x")) return false;
  s.remove_prefix(2);
  return s.size() >= min_digits && s.size() <= max_digits && find_non_hex(s) == std::string_view::npos;
}

[[noreturn]] void misbehaves(std::string_view method, std::string_view what) {
  throw node_error(fmt::format("answer to {}: {}", method, what));
}

rpc_error error_of(const json& e) {
  std::int64_t code = e.is_object() && e.contains("code") && e["code"].is_number_integer() ? e["code"].get<std::int64_t>() : 0;
  std::string message = e.is_object() && e.contains("message") && e["message"].is_string()
                            ? e["message"].get<std::string>()
                            : shown(e);
  return rpc_error(code, std::move(message), e.is_object() ? e.value("data", json()) : json());
}

}  // namespace

std::string shown(const json& v, std::size_t max_chars) {
  std::string text = v.dump(-1, ' ', true, json::error_handler_t::replace);
  if (text.size() <= max_chars) return text;
  std::size_t size = text.size();
  text.resize(max_chars);
  return fmt::format("{}... ({} bytes)", text, size);
}

std::optional<std::string> check_result(std::string_view method, const json& result) {
  switch (shape_of(method)) {
    case shape::any:
      return std::nullopt;
    case shape::data:
      if (is_hex_string(result, 0, std::string::npos) && result.get_ref<const std::string&>().size() % 2 == 0) return std::nullopt;
      return "not 0x-hex data";
    case shape::quantity:
      if (is_hex_string(result, 1, 64)) return std::nullopt;
      return "not a 0x-hex quantity of at most 256 bits";
    case shape::hash:
      if (is_hex_string(result, 64, 64)) return std::nullopt;
      return "not a 32-byte 0x-hex hash";
    case shape::record_or_null:
      if (result.is_object() || result.is_null()) return std::nullopt;
      return "neither an object nor null";
    case shape::array:
      if (result.is_array()) return std::nullopt;
      return "not an array";
    case shape::string:
      if (result.is_string()) return std::nullopt;
      return "not a string";
  }
  return std::nullopt;
}

json parse_answer(std::string_view text, std::int64_t id, std::string_view method) {
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok()) misbehaves(method, fmt::format("not JSON: {}", parsed.error));
  json& answer = parsed.value;
  if (!answer.is_object()) misbehaves(method, fmt::format("not a JSON-RPC answer: {}", shown(answer)));
  auto e = answer.find("error");
  const bool is_error = e != answer.end() && !e->is_null();
  // An error may come with a null id (the node could not read the request's); a result never.
  auto i = answer.find("id");
  if (i == answer.end() || !(*i == json(id) || (is_error && i->is_null())))
    misbehaves(method, fmt::format("the id is {}, not {}", i == answer.end() ? "missing" : shown(*i, 80), id));
  if (is_error) throw error_of(*e);
  auto r = answer.find("result");
  if (r == answer.end()) misbehaves(method, "neither result nor error");
  if (auto wrong = check_result(method, *r)) misbehaves(method, fmt::format("{} is {}", shown(*r), *wrong));
  return std::move(*r);
}

std::vector<rpc_reply> parse_batch_answer(std::string_view text, std::int64_t first_id, std::span<const rpc_request> requests) {
  std::vector<rpc_reply> replies(requests.size());
  const std::string what = fmt::format("a batch of {}", requests.size());
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok()) misbehaves(what, fmt::format("not JSON: {}", parsed.error));
  json& answers = parsed.value;
  // A node that refuses the whole batch answers with one error object.
  if (answers.is_object() && answers.contains("error") && !answers["error"].is_null()) throw error_of(answers["error"]);
  if (!answers.is_array()) misbehaves(what, fmt::format("not an array: {}", shown(answers)));
  std::vector<bool> seen(requests.size(), false);
  for (auto& a : answers) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer()) continue;
    const std::int64_t n = a["id"].get<std::int64_t>();
    // Unsigned subtraction: ids far from first_id wrap to a large index instead of overflowing.
    const std::uint64_t index = static_cast<std::uint64_t>(n) - static_cast<std::uint64_t>(first_id);
    if (index >= requests.size() || seen[index]) continue;
    seen[index] = true;
    auto& r = replies[index];
    const std::string& method = requests[index].method;
    if (auto e = a.find("error"); e != a.end() && !e->is_null()) {
      r.error = error_of(*e);
    } else if (auto res = a.find("result"); res == a.end()) {
      r.error = rpc_error(-32603, "the node's answer has neither result nor error", json());
    } else if (auto wrong = check_result(method, *res)) {
      r.error = rpc_error(-32603, fmt::format("the node returned {} for {}: {}", shown(*res), method, *wrong), json());
    } else {
      r.result = std::move(*res);
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i)
    if (!seen[i]) replies[i].error = rpc_error(-32603, fmt::format("the node sent no answer to {}", requests[i].method), json());
  return replies;
}

bool is_notification(std::string_view text) {
  // Cheap first: only a message naming eth_subscription can be one.
  if (text.find("eth_subscription") == std::string_view::npos) return false;
  auto j = json::parse(text, nullptr, false);
  return j.is_object() && j.contains("method") && !j.contains("id");
}

json parse_notification(std::string_view text) {
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok()) throw node_error(fmt::format("malformed notification: {}", parsed.error));
  if (!parsed.value.is_object()) throw node_error(fmt::format("malformed notification: {}", shown(parsed.value)));
  auto p = parsed.value.find("params");
  if (p == parsed.value.end() || !p->is_object() || !p->contains("result"))
    throw node_error(fmt::format("notification without params.result: {}", shown(parsed.value)));
  return std::move((*p)["result"]);
}

std::optional<std::string> json_stream_splitter::next() {
  for (; pos_ < buf_.size(); ++pos_) {
    char c = buf_[pos_];
    if (depth_ == 0) {
      if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
      if (c != '{' && c != '[')
        throw transport_error(fmt::format("the node sent a byte 0x{:02x} that starts no JSON-RPC message", static_cast<unsigned char>(c)));
      start_ = pos_;
      depth_ = 1;
      continue;
    }
    if (in_string_) {
      if (escape_) escape_ = false;
      else if (c == '\\') escape_ = true;
      else if (c == '"') in_string_ = false;
      continue;
    }
    if (c == '"') in_string_ = true;
    else if (c == '{' || c == '[') ++depth_;
    else if ((c == '}' || c == ']') && --depth_ == 0) {
      std::string message = buf_.substr(start_, pos_ + 1 - start_);
      buf_.erase(0, pos_ + 1);
      pos_ = 0;
      return message;
    }
  }
  if (depth_ > 0 && pos_ - start_ > max_message_)
    throw response_too_large(fmt::format("the answer is larger than {} bytes", max_message_));
  if (depth_ == 0) buf_.clear(), pos_ = 0;
  return std::nullopt;
}

}  // namespace pipekit::eth
