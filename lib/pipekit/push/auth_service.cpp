#include "pipekit/push/auth_service.hpp"

#include <algorithm>
#include <deque>
#include <list>
#include <new>
#include <stdexcept>
#include <unordered_map>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>
#include <openssl/evp.h>

#include "pipekit/log/log.hpp"
#include "pipekit/net/http_client.hpp"
#include "pipekit/push/jwt.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::push {

namespace asio = boost::asio;
using steady = std::chrono::steady_clock;
using callback = std::function<void(const login_verdict&)>;

namespace {

constexpr std::size_t max_token_size = 8192;  // as a JWT's (jwt_verifier::max_token_size)
constexpr auto burst_relog = std::chrono::seconds(60);  // a burst of one cause is logged again after this

// The cache's and the pending map's key: never the token itself.
std::string token_key(std::string_view token) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (EVP_Digest(token.data(), token.size(), md, &n, EVP_sha256(), nullptr) != 1) throw std::bad_alloc();
  return std::string(reinterpret_cast<const char*>(md), n);
}

login_verdict refusal(std::string_view reason, bool retry = false) {
  login_verdict v;
  v.refusal = reason;
  v.retry = retry;
  return v;
}

}  // namespace

struct auth_service::impl : std::enable_shared_from_this<impl> {
  asio::io_context& io;
  auth_service_options opts;
  std::string address;  // host:port
  std::string target;   // path?query
  std::string shown;    // for the log: the URL without its query

  struct entry {
    login_verdict verdict;
    steady::time_point until;
    std::list<std::string>::iterator lru;
  };
  std::unordered_map<std::string, entry> cache;
  std::list<std::string> lru;  // most recently used first
  std::unordered_map<std::string, std::vector<callback>> pending;  // by key: waiting for one verdict
  struct waiting_request {
    std::string key;
    std::string body;  // the request's, which holds the token
    steady::time_point deadline;
  };
  std::deque<waiting_request> waiting;  // for a request slot, oldest (earliest deadline) first
  std::size_t in_flight = 0;
  asio::steady_timer waiting_timer;
  counters stats;

  // The failure burst being logged: its cause, when it was last logged, failures since.
  std::string burst_cause;
  steady::time_point burst_logged{};
  std::uint64_t burst_more = 0;

  impl(asio::io_context& ctx, auth_service_options o) : io(ctx), opts(std::move(o)), waiting_timer(ctx) {}

  void verify(std::string_view token, callback done);
  void send(std::string key, std::string body, steady::time_point deadline);
  void on_answer(const std::string& key, const net::http_result& r);
  login_verdict judge(const net::http_result& r, std::chrono::milliseconds& keep);
  void complete(const std::string& key, const login_verdict& v);
  void pump();
  void arm_waiting_timer();
  void expire_waiting();
  void remember(const std::string& key, const login_verdict& v, std::chrono::milliseconds keep);
  void service_failed(const std::string& cause);
  void service_answered();
};

void auth_service::impl::verify(std::string_view token, callback done) {
  std::string body;  // {"token":...}, which a token that is not UTF-8 (from a header) cannot be
  if (!token.empty() && token.size() <= max_token_size) {
    try {
      body = nlohmann::json{{"token", std::string(token)}}.dump();
    } catch (const nlohmann::json::exception&) {
      body.clear();
    }
  }
  if (body.empty()) {
    asio::post(io, [done = std::move(done)] { done(refusal(auth_reason::malformed)); });
    return;
  }
  std::string key = token_key(token);
  const auto now = steady::now();
  if (auto it = cache.find(key); it != cache.end()) {
    if (now < it->second.until) {
      ++stats.cache_hits;
      lru.splice(lru.begin(), lru, it->second.lru);
      asio::post(io, [done = std::move(done), v = it->second.verdict] { done(v); });
      return;
    }
    lru.erase(it->second.lru);
    cache.erase(it);
  }
  if (auto it = pending.find(key); it != pending.end()) {
    ++stats.shared;
    it->second.push_back(std::move(done));
    return;
  }
  pending[key].push_back(std::move(done));
  const auto deadline = now + opts.timeout;
  if (in_flight < opts.max_in_flight) return send(std::move(key), std::move(body), deadline);
  if (waiting.size() >= opts.max_waiting) {
    service_failed(fmt::format("{} logins waiting for an answer already: refusing more", waiting.size()));
    return complete(key, refusal(auth_reason::busy, true));
  }
  waiting.push_back({std::move(key), std::move(body), deadline});
  if (waiting.size() == 1) arm_waiting_timer();
}

void auth_service::impl::send(std::string key, std::string body, steady::time_point deadline) {
  ++in_flight;
  ++stats.requests;
  net::http_options o;
  o.timeout = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()),
                       std::chrono::milliseconds(1));
  o.max_body = opts.max_answer;
  o.accept = "application/json";
  if (!opts.secret.empty()) o.authorization = "Bearer " + opts.secret;
  net::async_http_post(io, address, target, std::move(body), "application/json", o,
                       [weak = weak_from_this(), key = std::move(key)](net::http_result r) {
                         if (auto self = weak.lock()) self->on_answer(key, r);
                       });
}

void auth_service::impl::on_answer(const std::string& key, const net::http_result& r) {
  --in_flight;
  std::chrono::milliseconds keep{0};
  const login_verdict v = judge(r, keep);
  if (keep.count() > 0) remember(key, v, keep);
  complete(key, v);
  pump();
}

// The verdict an answer carries, and how long it may be cached (0: not at all).
login_verdict auth_service::impl::judge(const net::http_result& r, std::chrono::milliseconds& keep) {
  keep = std::chrono::milliseconds(0);
  if (r.status == 0) {
    service_failed(r.error);
    if (r.error == "timed out") return refusal(auth_reason::timeout, true);
    if (r.error == "response too large") return refusal(auth_reason::too_large, true);
    return refusal(auth_reason::unavailable, true);
  }
  if (r.status == 401 || r.status == 403) {
    service_answered();
    keep = std::min(opts.refusal_ttl, opts.cache_ttl);
    return refusal(auth_reason::refused);
  }
  if (r.status != 200) {
    service_failed(fmt::format("answered {}", r.status));
    return refusal(auth_reason::error_status, r.status >= 500);
  }
  auto answer = nlohmann::json::parse(r.body, nullptr, false);
  if (answer.is_discarded() || !answer.is_object()) {
    service_failed("answered 200 without a JSON object");
    return refusal(auth_reason::bad_answer);
  }
  login_verdict v;
  auto user = answer.find("user");
  if (user != answer.end() && user->is_string()) v.user = user->get<std::string>();
  else if (user != answer.end() && user->is_number_integer()) v.user = user->dump();
  if (!valid_user_id(v.user)) {
    service_failed("answered 200 without a usable \"user\" (a string or an integer, 1 to 256 bytes, printable)");
    return refusal(auth_reason::no_user);
  }
  const auto now = std::chrono::system_clock::now();
  if (auto exp = answer.find("exp"); exp != answer.end()) {
    if (!exp->is_number() || exp->get<double>() < 0 || exp->get<double>() > 253402300799.0) {  // year 9999
      service_failed("answered 200 with an \"exp\" that is not seconds since the epoch");
      return refusal(auth_reason::bad_answer);
    }
    v.expires = std::chrono::system_clock::time_point{std::chrono::seconds{static_cast<long long>(exp->get<double>())}};
    if (*v.expires <= now) {
      service_answered();
      return refusal(auth_reason::expired);
    }
  }
  service_answered();
  keep = opts.cache_ttl;
  if (v.expires)
    keep = std::min(keep, std::chrono::duration_cast<std::chrono::milliseconds>(*v.expires - now));
  return v;
}

void auth_service::impl::complete(const std::string& key, const login_verdict& v) {
  auto it = pending.find(key);
  if (it == pending.end()) return;
  std::vector<callback> calls = std::move(it->second);
  pending.erase(it);
  asio::post(io, [calls = std::move(calls), v]() {
    for (const auto& c : calls) c(v);
  });
}

// Frees slots go to the oldest waiting logins still within their deadline.
void auth_service::impl::pump() {
  const auto now = steady::now();
  while (in_flight < opts.max_in_flight && !waiting.empty()) {
    waiting_request w = std::move(waiting.front());
    waiting.pop_front();
    if (now >= w.deadline) {
      service_failed("no answer in time: too many logins at once");
      complete(w.key, refusal(auth_reason::timeout, true));
    } else {
      send(std::move(w.key), std::move(w.body), w.deadline);
    }
  }
  arm_waiting_timer();
}

// One timer for the whole queue: deadlines are in queue order, so it waits for the front's.
void auth_service::impl::arm_waiting_timer() {
  if (waiting.empty()) {
    waiting_timer.cancel();
    return;
  }
  waiting_timer.expires_at(waiting.front().deadline);
  waiting_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->expire_waiting();
  });
}

void auth_service::impl::expire_waiting() {
  const auto now = steady::now();
  bool any = false;
  while (!waiting.empty() && now >= waiting.front().deadline) {
    complete(waiting.front().key, refusal(auth_reason::timeout, true));
    waiting.pop_front();
    any = true;
  }
  if (any) service_failed("no answer in time: too many logins at once");
  arm_waiting_timer();
}

void auth_service::impl::remember(const std::string& key, const login_verdict& v, std::chrono::milliseconds keep) {
  if (opts.cache_entries == 0) return;
  if (auto it = cache.find(key); it != cache.end()) {
    lru.erase(it->second.lru);
    cache.erase(it);
  }
  while (cache.size() >= opts.cache_entries) {
    cache.erase(lru.back());
    lru.pop_back();
  }
  lru.push_front(key);
  cache.emplace(key, entry{v, steady::now() + keep, lru.begin()});
}

// Logged once per burst of one cause (again after a minute, with the count), never per login.
void auth_service::impl::service_failed(const std::string& cause) {
  const auto now = steady::now();
  if (cause == burst_cause && now - burst_logged < burst_relog) {
    ++burst_more;
    return;
  }
  if (burst_more > 0) log::warn("auth service {}: {} more failures: {}", shown, burst_more, burst_cause);
  log::warn("auth service {}: {}; logins are refused meanwhile", shown, cause);
  burst_cause = cause;
  burst_logged = now;
  burst_more = 0;
}

void auth_service::impl::service_answered() {
  if (burst_cause.empty()) return;
  log::info("auth service {}: answering again ({} more failures after the last logged: {})", shown, burst_more, burst_cause);
  burst_cause.clear();
  burst_more = 0;
}

namespace {
util::url checked_url(const std::string& text) {
  util::url u = util::parse_url(text);
  if (u.scheme != "http")
    throw std::invalid_argument(fmt::format("{}: only http:// URLs (put a TLS proxy on loopback in front of an https service)",
                                            u.scheme));
  if (!u.user.empty() || !u.password.empty())
    throw std::invalid_argument("a user or password in the URL (the service's credential goes in a file or the environment)");
  if (u.host.empty()) throw std::invalid_argument("no host");
  return u;
}
}  // namespace

void auth_service::check(const auth_service_options& opts) { checked_url(opts.url); }

auth_service::auth_service(asio::io_context& io, auth_service_options opts) {
  const util::url u = checked_url(opts.url);
  impl_ = std::make_shared<impl>(io, std::move(opts));
  impl_->address = util::host_port{u.host, u.port}.to_string();
  impl_->target = u.target();
  impl_->shown = "http://" + impl_->address + u.path;
}

auth_service::~auth_service() { cancel(); }

void auth_service::verify(std::string_view token, std::function<void(const login_verdict&)> done) {
  impl_->verify(token, std::move(done));
}

void auth_service::cancel() {
  impl_->pending.clear();
  impl_->waiting.clear();
  impl_->waiting_timer.cancel();
}

auth_service::counters auth_service::stats() const {
  counters c = impl_->stats;
  c.cached = impl_->cache.size();
  return c;
}

}  // namespace pipekit::push
