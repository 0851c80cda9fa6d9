#include "pipekit/nsq/auth.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/util/parse.hpp"

namespace pipekit::nsq {
namespace {

using json = nlohmann::json;

bool compile(const std::string& pattern, std::regex& re, std::string& error) {
  try {
    re = std::regex(pattern, std::regex::ECMAScript | std::regex::optimize);
    return true;
  } catch (const std::regex_error& e) {
    error = fmt::format("unable to compile pattern \"{}\": {}", pattern, e.what());
    return false;
  }
}

}  // namespace

bool auth_state::allows(std::string_view topic, std::string_view channel) const {
  const std::string t(topic), c(channel);
  for (const auto& g : grants) {
    if (!(channel.empty() ? g.publish : g.subscribe)) continue;
    if (!std::regex_search(t, g.topic_re)) continue;
    for (const auto& re : g.channel_res)
      if (std::regex_search(c, re)) return true;
  }
  return false;
}

bool parse_auth_answer(std::string_view body, auth_state& out, std::string& error) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object() && j.contains("status_code") && j.contains("data")) j = j["data"];
  if (!j.is_object()) {
    error = "the answer is not a JSON object";
    return false;
  }
  auth_state s;
  try {
    s.ttl_s = j.value("ttl", std::int64_t{0});
    s.identity = j.value("identity", std::string());
    s.identity_url = j.value("identity_url", std::string());
    const json& list = j.contains("authorizations") && !j["authorizations"].is_null() ? j["authorizations"] : json::array();
    if (!list.is_array()) {
      error = "\"authorizations\" is not an array";
      return false;
    }
    for (const auto& a : list) {
      auth_grant g;
      g.topic = a.value("topic", std::string());
      if (a.contains("channels") && !a["channels"].is_null()) g.channels = a["channels"].get<std::vector<std::string>>();
      std::vector<std::string> perms;
      if (a.contains("permissions") && !a["permissions"].is_null()) perms = a["permissions"].get<std::vector<std::string>>();
      for (const auto& p : perms) {
        if (p == "publish") g.publish = true;
        else if (p == "subscribe") g.subscribe = true;
        else {
          error = fmt::format("unknown permission {}", p);
          return false;
        }
      }
      if (!compile(g.topic, g.topic_re, error)) return false;
      for (const auto& c : g.channels) {
        g.channel_res.emplace_back();
        if (!compile(c, g.channel_res.back(), error)) return false;
      }
      s.grants.push_back(std::move(g));
    }
  } catch (const json::exception& e) {
    error = fmt::format("malformed answer: {}", e.what());
    return false;
  }
  if (s.ttl_s <= 0) {
    error = fmt::format("invalid TTL {} (must be >0)", s.ttl_s);
    return false;
  }
  out = std::move(s);
  return true;
}

auth_request make_auth_request(std::string_view address, std::string_view remote_ip, bool tls,
                               std::string_view common_name, std::string_view secret) {
  auth_request r;
  std::string path = "/auth";
  if (auto scheme = address.find("://"); scheme != std::string_view::npos) {
    std::string_view rest = address.substr(scheme + 3);
    auto slash = rest.find('/');
    r.address = std::string(rest.substr(0, slash));
    path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  } else {
    r.address = std::string(address);
  }
  r.target = fmt::format("{}{}common_name={}&remote_ip={}&secret={}&tls={}", path,
                         path.find('?') == std::string::npos ? '?' : '&', util::url_escape(common_name),
                         util::url_escape(remote_ip), util::url_escape(secret), tls ? "true" : "false");
  return r;
}

}  // namespace pipekit::nsq
