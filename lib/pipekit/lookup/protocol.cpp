#include "pipekit/lookup/protocol.hpp"

#include <limits>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/nsq/names.hpp"

namespace pipekit::lookup {
namespace {

bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

// Go's strings.TrimSpace (ASCII part) and strings.Split(s, " "): empty fields are kept.
std::vector<std::string_view> split_params(std::string_view line) {
  while (!line.empty() && is_space(line.front())) line.remove_prefix(1);
  while (!line.empty() && is_space(line.back())) line.remove_suffix(1);
  std::vector<std::string_view> params;
  for (;;) {
    auto sp = line.find(' ');
    params.push_back(line.substr(0, sp));
    if (sp == std::string_view::npos) break;
    line.remove_prefix(sp + 1);
  }
  return params;
}

bool equals_lower(std::string_view key, std::string_view name) {
  if (key.size() != name.size()) return false;
  for (std::size_t i = 0; i < key.size(); ++i) {
    char c = key[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != name[i]) return false;
  }
  return true;
}

// encoding/json into nsqlookupd's PeerInfo: keys matched case-insensitively, unknown keys and
// nulls ignored, a value of the wrong type (or a non-integer port) is an error.
bool decode_peer(const nlohmann::json& j, peer_info& peer) {
  if (j.is_null()) return true;
  if (!j.is_object()) return false;
  bool ok = true;
  auto take_string = [&](const nlohmann::json& v, std::string& out) {
    if (v.is_null()) return;
    if (!v.is_string()) ok = false;
    else out = v.get<std::string>();
  };
  auto take_int = [&](const nlohmann::json& v, std::int64_t& out) {
    if (v.is_null()) return;
    if (v.is_number_integer() && !v.is_number_unsigned()) out = v.get<std::int64_t>();
    else if (v.is_number_unsigned() && v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      out = static_cast<std::int64_t>(v.get<std::uint64_t>());
    else ok = false;
  };
  for (const auto& [key, value] : j.items()) {
    if (equals_lower(key, "hostname")) take_string(value, peer.hostname);
    else if (equals_lower(key, "broadcast_address")) take_string(value, peer.broadcast_address);
    else if (equals_lower(key, "version")) take_string(value, peer.version);
    else if (equals_lower(key, "topology_region")) take_string(value, peer.topology_region);
    else if (equals_lower(key, "topology_zone")) take_string(value, peer.topology_zone);
    else if (equals_lower(key, "tcp_port")) take_int(value, peer.tcp_port);
    else if (equals_lower(key, "http_port")) take_int(value, peer.http_port);
  }
  return ok;
}

}  // namespace

std::string frame(std::string_view data) {
  auto n = static_cast<std::uint32_t>(data.size());
  std::string out;
  out.reserve(4 + data.size());
  out.push_back(static_cast<char>((n >> 24) & 0xff));
  out.push_back(static_cast<char>((n >> 16) & 0xff));
  out.push_back(static_cast<char>((n >> 8) & 0xff));
  out.push_back(static_cast<char>(n & 0xff));
  out.append(data);
  return out;
}

command_parser::result command_parser::fail(std::string code, std::string description) {
  failed_ = true;
  buf_.clear();
  pos_ = 0;
  return protocol_error{std::move(code), std::move(description)};
}

command_parser::result command_parser::next() {
  if (failed_) return {};
  // Compact what was consumed before it piles up.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  std::string_view rest = std::string_view(buf_).substr(pos_);
  if (!magic_done_) {
    if (rest.size() < magic_v1.size()) return {};
    if (rest.substr(0, magic_v1.size()) != magic_v1) return fail("E_BAD_PROTOCOL", "");
    magic_done_ = true;
    pos_ += magic_v1.size();
    return next();
  }
  if (in_identify_) {
    if (!body_size_) {
      if (rest.size() < 4) return {};
      auto b = [&](std::size_t i) { return static_cast<std::uint32_t>(static_cast<unsigned char>(rest[i])); };
      std::uint32_t raw = b(0) << 24 | b(1) << 16 | b(2) << 8 | b(3);
      auto size = static_cast<std::int32_t>(raw);
      if (size < 0 || static_cast<std::size_t>(size) > max_body_)
        return fail("E_BAD_BODY", "IDENTIFY invalid body size " + std::to_string(size));
      body_size_ = static_cast<std::size_t>(size);
      pos_ += 4;
      rest.remove_prefix(4);
    }
    if (rest.size() < *body_size_) return {};
    std::string_view body = rest.substr(0, *body_size_);
    pos_ += *body_size_;
    in_identify_ = false;
    body_size_.reset();
    return on_identify_body(body);
  }
  auto nl = rest.find('\n');
  if (nl == std::string_view::npos) {
    if (rest.size() > max_line) return fail("E_INVALID", "command line too long");
    return {};
  }
  if (nl > max_line) return fail("E_INVALID", "command line too long");
  pos_ += nl + 1;
  return on_line(rest.substr(0, nl));
}

command_parser::result command_parser::on_line(std::string_view line) {
  auto params = split_params(line);
  std::string_view name = params[0];
  if (name == "PING") return command{command_type::ping, {}, {}, {}};
  if (name == "IDENTIFY") {
    if (identified_) return fail("E_INVALID", "cannot IDENTIFY again");
    in_identify_ = true;
    return next();
  }
  if (name != "REGISTER" && name != "UNREGISTER") return fail("E_INVALID", "invalid command " + std::string(name));
  if (!identified_) return fail("E_INVALID", "client must IDENTIFY");
  if (params.size() < 2) return fail("E_INVALID", std::string(name) + " insufficient number of params");
  std::string_view topic = params[1];
  std::string_view channel = params.size() >= 3 ? params[2] : std::string_view();
  if (!nsq::is_valid_topic_name(topic))
    return fail("E_BAD_TOPIC", std::string(name) + " topic name '" + std::string(topic) + "' is not valid");
  if (!channel.empty() && !nsq::is_valid_channel_name(channel))
    return fail("E_BAD_CHANNEL", std::string(name) + " channel name '" + std::string(channel) + "' is not valid");
  return command{name == "REGISTER" ? command_type::register_ : command_type::unregister, std::string(topic),
                 std::string(channel), {}};
}

command_parser::result command_parser::on_identify_body(std::string_view body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  command c;
  c.type = command_type::identify;
  if (j.is_discarded() || !decode_peer(j, c.peer)) return fail("E_BAD_BODY", "IDENTIFY failed to decode JSON body");
  if (c.peer.broadcast_address.empty() || c.peer.tcp_port == 0 || c.peer.http_port == 0 || c.peer.version.empty())
    return fail("E_BAD_BODY", "IDENTIFY missing fields");
  identified_ = true;
  return c;
}

}  // namespace pipekit::lookup
