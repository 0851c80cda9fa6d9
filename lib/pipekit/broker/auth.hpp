#pragma once
// nsqd's AUTH, as nsq-broker implements it with --auth-http-address: the client's secret is sent
// to an auth server (nsq's auth HTTP protocol), whose answer says which topics and channels the
// connection may publish to or subscribe to, for how long.
//
//   GET http://<auth-http-address>/auth?common_name=..&remote_ip=..&secret=..&tls=true|false
//   200 {"ttl":3600,"identity":"alice","identity_url":"https://...",
//        "authorizations":[{"topic":"^orders$","channels":[".*"],"permissions":["subscribe","publish"]}]}
//
// Topic and channel patterns are regular expressions that match anywhere in the name unless
// anchored, in RE2's syntax and linear time: Go's regexp.MatchString as nsqd uses it (Go's regexp
// is RE2). A backtracking engine would let one pattern hold the broker for seconds.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace pipekit::broker {

struct auth_grant {
  std::string topic;                  // the pattern as given
  std::vector<std::string> channels;  // patterns as given
  bool publish = false;
  bool subscribe = false;
  // Compiled once per answer, when it is parsed.
  std::shared_ptr<const re2::RE2> topic_re;
  std::vector<std::shared_ptr<const re2::RE2>> channel_res;
};

struct auth_state {
  std::int64_t ttl_s = 0;
  std::string identity;
  std::string identity_url;
  std::vector<auth_grant> grants;
  // nsqd's rule: publishing (empty channel) needs "publish", subscribing "subscribe"; the topic
  // pattern must match, and one of the channel patterns must match the channel ("" for publish).
  bool allows(std::string_view topic, std::string_view channel) const;
};

// Parses and checks an auth server's answer (also inside nsq's old {"status_code","data"} envelope):
// ttl > 0, permissions only "subscribe"/"publish", every pattern compiles (else the whole answer is
// refused, as nsqd refuses it). False with `error` set.
bool parse_auth_answer(std::string_view body, auth_state& out, std::string& error);

// Where to ask: "host:port" -> ("host:port", "/auth?<query>"); a full "http://host:port/path" keeps
// its path. The query has nsqd's four parameters, sorted by name, form-encoded.
struct auth_request {
  std::string address;
  std::string target;
};
auth_request make_auth_request(std::string_view auth_http_address, std::string_view remote_ip, bool tls,
                               std::string_view common_name, std::string_view secret);

}  // namespace pipekit::broker
