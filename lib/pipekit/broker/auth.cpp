#include "pipekit/broker/auth.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <re2/re2.h>

#include "pipekit/util/parse.hpp"

namespace pipekit::broker {
namespace {

using json = nlohmann::json;

// RE2's defaults are Go's regexp syntax (UTF-8, Perl classes, leftmost-first); errors are ours to
// report, not RE2's to print.
std::shared_ptr<const re2::RE2> compile(const std::string& pattern, std::string& error) {
  re2::RE2::Options options;
  options.set_log_errors(false);
  auto re = std::make_shared<const re2::RE2>(pattern, options);
  if (re->ok()) return re;
  error = fmt::format("unable to compile pattern \"{}\": {}", pattern, re->error());
  return nullptr;
}

}  // namespace

bool auth_state::allows(std::string_view topic, std::string_view channel) const {
  for (const auto& g : grants) {
    if (!(channel.empty() ? g.publish : g.subscribe)) continue;
    if (!re2::RE2::PartialMatch(topic, *g.topic_re)) continue;
    for (const auto& re : g.channel_res)
      if (re2::RE2::PartialMatch(channel, *re)) return true;
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
      if (!(g.topic_re = compile(g.topic, error))) return false;
      for (const auto& c : g.channels) {
        g.channel_res.push_back(compile(c, error));
        if (!g.channel_res.back()) return false;
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

}  // namespace pipekit::broker
