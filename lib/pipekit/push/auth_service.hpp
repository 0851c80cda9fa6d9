#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

// ws-push's --auth-url: tokens verified by an HTTP auth service instead of locally. The wire
// contract (docs/push-protocol.md, man ws-push): POST <url> with the body {"token":"..."} and,
// when a secret is configured, "Authorization: Bearer <secret>" (the service's own credential,
// never the user's token); 200 with {"user":"42"} (and an optional "exp", seconds since the
// epoch) accepts, anything else refuses.
//
// Asynchronous on the caller's io_context, never blocking it: at most max_in_flight requests at
// once, the rest wait in order (at most max_waiting; beyond, refused at once as busy), and every
// verdict comes within `timeout` of the call. Answers are cached by the SHA-256 of the token
// (raw tokens are never map keys and never logged), in a bounded LRU; concurrent calls with one
// token share one request. A failing service is logged once per burst of one cause.
namespace pipekit::push {

// What a login's token came to, from a JWT or from the auth service.
struct login_verdict {
  std::string_view refusal;  // "" when accepted; else the reason counted in /stats (a literal)
  bool retry = false;        // refused for want of an answer, not for the token (close 1013, HTTP 503)
  std::string user;
  std::optional<std::chrono::system_clock::time_point> expires;  // a connection must log in again before it

  bool ok() const { return refusal.empty(); }
};

struct auth_service_options {
  std::string url;                                // http://host[:port]/path[?query]
  std::string secret;                             // sent as "Authorization: Bearer" when not empty
  std::chrono::milliseconds timeout{3000};        // from the login to its verdict
  std::chrono::milliseconds cache_ttl{30000};     // an acceptance kept this long (0: no cache)
  std::chrono::milliseconds refusal_ttl{5000};    // a 401/403 kept this long (at most cache_ttl)
  std::size_t cache_entries = 65536;              // beyond, the least recently used goes
  std::size_t max_in_flight = 64;                 // requests at once
  std::size_t max_waiting = 10000;                // distinct tokens waiting for a request slot
  std::size_t max_answer = 64u << 10;             // a longer answer is refused (auth_too_large)
};

// The reasons a verdict may carry (as in /stats auth_failures), besides the JWT ones.
namespace auth_reason {
constexpr std::string_view malformed = "malformed";                // empty or over 8 KiB: not sent
constexpr std::string_view refused = "auth_refused";               // 401 or 403
constexpr std::string_view error_status = "auth_error_status";     // another status (5xx: retry)
constexpr std::string_view bad_answer = "auth_bad_answer";         // 200, but not a JSON object, or a bad "exp"
constexpr std::string_view no_user = "no_user";                    // 200 without a valid "user"
constexpr std::string_view expired = "expired";                    // 200 with an "exp" already past
constexpr std::string_view unavailable = "auth_unavailable";       // no connection, or it broke (retry)
constexpr std::string_view timeout = "auth_timeout";               // no answer within the timeout (retry)
constexpr std::string_view too_large = "auth_too_large";           // an answer over max_answer (retry)
constexpr std::string_view busy = "auth_busy";                     // too many logins waiting (retry)
}  // namespace auth_reason

class auth_service {
 public:
  // Throws std::invalid_argument for a URL that is not http://host[:port]/... without userinfo.
  auth_service(boost::asio::io_context& io, auth_service_options opts);
  static void check(const auth_service_options& opts);  // throws as the constructor does
  ~auth_service();
  auth_service(const auth_service&) = delete;
  auth_service& operator=(const auth_service&) = delete;

  // `done` runs exactly once, on the io_context's thread, never inside this call (unless cancel()
  // or the destructor drops it first).
  void verify(std::string_view token, std::function<void(const login_verdict&)> done);

  // Drops every pending `done` uncalled (a server shutting down breaks its reference cycles).
  void cancel();

  struct counters {
    std::uint64_t requests = 0;    // HTTP requests made
    std::uint64_t cache_hits = 0;  // verdicts from the cache
    std::uint64_t shared = 0;      // calls that joined a request already made for their token
    std::size_t cached = 0;        // entries in the cache now
  };
  counters stats() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace pipekit::push
