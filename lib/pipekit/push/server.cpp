// ws-push: WebSocket sessions (Beast), the user -> connections hub, the push API (net::http_server)
// and this node's routes in Redis (push::routes). Everything runs on one io_context thread, so the
// hub and the counters take no locks.
#include "pipekit/push/server.hpp"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <deque>
#include <future>
#include <iterator>
#include <thread>
#include <map>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/container/small_vector.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/eventfd.h>
#include <unistd.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/net/tcp_listener.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/push/client_message.hpp"
#include "pipekit/push/message_reader.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::push {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using json = nlohmann::json;
// A connection is one of these: the session's code is written once for both (with_ws).
// The lowest layer is a bare socket, not beast::tcp_stream (~540 bytes and two timers per
// connection): the handshake deadline is the server's sweep's, like every other deadline.
// permessage-deflate is compiled out (false): it was never offered, and an idle connection that
// had it would hold zlib's two windows (~300 KB).
using plain_ws = websocket::stream<tcp::socket, false>;
using tls_ws = websocket::stream<beast::ssl_stream<tcp::socket>, false>;

namespace {

constexpr int max_garbage = 10;               // protocol errors a connection may make before it is closed
constexpr std::size_t max_request_head = 8192;
constexpr auto close_grace = std::chrono::seconds(2);  // for a close frame stuck behind a write

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// "https://a.example.com:8443" -> "a.example.com"; "" when it is not an origin.
std::string origin_host(std::string_view origin) {
  auto scheme = origin.find("://");
  if (scheme == std::string_view::npos) return {};
  auto rest = origin.substr(scheme + 3);
  if (!rest.empty() && rest.front() == '[') return lower(rest.substr(0, rest.find(']') + 1));
  return lower(rest.substr(0, rest.find(':')));
}
std::string host_of(std::string_view host_header) {
  if (!host_header.empty() && host_header.front() == '[') return lower(host_header.substr(0, host_header.find(']') + 1));
  return lower(host_header.substr(0, host_header.find(':')));
}

bool origin_allowed(const std::vector<std::string>& allowed, std::string_view origin, std::string_view host) {
  if (origin.empty()) return true;  // not a browser
  const std::string oh = origin_host(origin);
  if (allowed.empty()) return !oh.empty() && oh == host_of(host);
  for (const auto& a : allowed) {
    if (a.find("://") != std::string::npos) {
      if (lower(a) == lower(origin)) return true;
    } else if (a.starts_with("*.")) {
      const std::string suffix = lower(std::string_view(a).substr(1));
      if (oh.size() > suffix.size() && oh.ends_with(suffix)) return true;
    } else if (lower(a) == oh) {
      return true;
    }
  }
  return false;
}

// Printable for a log line: control characters escaped, at most 200 bytes.
std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s.substr(0, 200)) {
    if (c < 0x20 || c == 0x7f || c == '\\') out += fmt::format("\\x{:02x}", c);
    else out.push_back(static_cast<char>(c));
  }
  if (s.size() > 200) out += "...";
  return out;
}

struct counters {
  std::uint64_t connections_total = 0;
  std::uint64_t refused_connections = 0;  // over --max-connections, bad origin, bad request
  std::uint64_t logins = 0;
  std::map<std::string, std::uint64_t> auth_failures;  // by reason
  std::uint64_t messages_in = 0;       // push messages accepted by the API
  std::uint64_t messages_invalid = 0;  // lines of /push that were not a message
  std::uint64_t delivered = 0;         // queued on a connection
  std::uint64_t offline = 0;           // users a message found no connection for
  std::uint64_t dropped = 0;           // not queued: the connection was closing or too slow
  std::uint64_t slow_consumer_closes = 0;
  std::uint64_t login_timeouts = 0;
  std::uint64_t token_expired_closes = 0;
  std::uint64_t policy_closes = 0;
  std::uint64_t pong_timeouts = 0;  // dropped: no pong (nor any frame) after a ping
  std::uint64_t idle_closes = 0;    // closed: no message within --idle-timeout
  std::uint64_t tls_handshake_failures = 0;  // --tls-cert: not TLS, a refused or timed-out handshake
  std::uint64_t history_stored = 0;    // messages appended to a user's history here
  std::uint64_t history_failures = 0;  // messages that could not be stored (Redis away or refusing)
  std::uint64_t replayed = 0;          // messages sent from history at login
  std::uint64_t gaps = 0;              // logins told that history may miss messages
};

// One line of a POST /push body (or of --stdin), parsed.
struct push_line {
  std::uint64_t line_no = 0;
  nlohmann::ordered_json error_answer;  // not a message: the answer line, {"line":N,["id":..,]"error":..,"message":..}
  bool error = false;
  bool broadcast = false;
  bool stored = false;            // a router stored it already: id is its stream id
  std::vector<std::string> targets;
  std::string data;               // JSON texts; id and ref may be empty
  std::string id;
  std::string ref;
  std::vector<std::string> history_ids;  // per target, the stream id it was stored under here
  // Once delivered: what the answer line says.
  std::size_t delivered = 0, dropped = 0;
  std::string offline;  // JSON array of the targets with no connection here ("": none)
  std::string history;  // JSON object target -> stream id it was stored under here ("": none)
};

// The answer line for a line that was a message (written by hand, as nlohmann's compact dump of
// {"line":N,["id":..,]"delivered":N[,"dropped":N][,"offline":[..]][,"history":{..}]} writes it;
// id, offline and history are JSON texts already).
void append_answer(std::string& out, const push_line& l) {
  fmt::format_to(std::back_inserter(out), R"({{"line":{})", l.line_no);
  if (!l.id.empty()) out.append(R"(,"id":)").append(l.id);
  fmt::format_to(std::back_inserter(out), R"(,"delivered":{})", l.delivered);
  if (l.dropped > 0) fmt::format_to(std::back_inserter(out), R"(,"dropped":{})", l.dropped);
  if (!l.offline.empty()) out.append(R"(,"offline":)").append(l.offline);
  if (!l.history.empty()) out.append(R"(,"history":)").append(l.history);
  out += '}';
}

// The lines of one request, delivered once they are stored (or at once without history).
struct push_batch {
  std::vector<push_line> lines;
  std::size_t invalid = 0;
  bool ready = false;
  std::function<void(std::string, std::size_t)> done;
};

std::string gap_frame(std::string_view reason) {
  return nlohmann::ordered_json{{"type", "gap"}, {"reason", reason}}.dump();
}

}  // namespace

// The messages waiting for one connection, oldest first: a vector and a read index rather than a
// std::deque, whose first block (about 600 bytes) is allocated even while it is empty, and most
// connections are idle. Consumed slots are compacted away, so a queue that never drains stays small.
class send_queue {
 public:
  bool empty() const { return head_ == items_.size(); }
  const std::shared_ptr<const std::string>& front() const { return items_[head_]; }
  void push_back(std::shared_ptr<const std::string> p) { items_.push_back(std::move(p)); }
  void pop_front() {
    items_[head_++].reset();
    if (head_ == items_.size()) {
      clear();
    } else if (head_ >= 32 && head_ * 2 >= items_.size()) {
      items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
      head_ = 0;
    }
  }
  void clear() {
    items_.clear();
    head_ = 0;
    if (items_.capacity() > 16) items_.shrink_to_fit();
  }

 private:
  std::vector<std::shared_ptr<const std::string>> items_;
  std::size_t head_ = 0;
};

class session;

struct server::impl : std::enable_shared_from_this<impl> {
  asio::io_context& io;
  options opts;
  std::optional<jwt_verifier> verifier;  // one of these two verifies tokens
  std::unique_ptr<auth_service> auth;
  std::unique_ptr<net::tcp_listener> listener;
  std::shared_ptr<net::tls_context> tls;  // --tls-cert: the WebSocket listener serves wss://
  net::http_server http;
  std::unique_ptr<routes> route_table;
  std::unordered_set<session*> sessions;  // open (not yet ended)
  std::unordered_map<std::string, std::vector<session*>> users;  // logged in
  counters stats;
  bool draining = false;
  asio::steady_timer sweep_timer;  // the heartbeat and every session's deadlines

  impl(asio::io_context& ctx, options o)
      : io(ctx), opts(std::move(o)), http(ctx, http_options(opts)), sweep_timer(ctx) {}

  static net::http_server_options http_options(const options& o) {
    net::http_server_options h;
    h.body_limit = o.max_push_body;
    return h;
  }

  void start();
  void schedule_sweep();
  void sweep();
  void bind(session* s, const std::string& user);
  void unbind(session* s);
  void deliver(push_line& l);
  void push(const net::http_request& req, const net::http_responder& respond);
  push_line parse_line(std::string_view line, std::uint64_t line_no);
  void submit(std::string_view body, std::uint64_t first_line, std::function<void(std::string, std::size_t)> done);
  void drain_pushes();
  bool history_on() const { return route_table && opts.history.size > 0; }
  const std::string& prefix() const { return opts.routes->prefix; }
  std::deque<std::shared_ptr<push_batch>> push_order;  // requests in arrival order, delivered in it
  json stats_json() const;
  std::string metrics() const;
};

class session : public std::enable_shared_from_this<session> {
 public:
  session(std::shared_ptr<server::impl> srv, tcp::socket socket)
      : srv_(std::move(srv)), ws_(make_ws(*srv_, std::move(socket))) {}

  ~session() { srv_->sessions.erase(this); }

 private:
  // f(ws) on the connection's stream, whichever it is.
  template <class F>
  decltype(auto) with_ws(F&& f) {
    return std::visit(std::forward<F>(f), ws_);
  }
  tcp::socket& tcp_layer() {
    return with_ws([](auto& ws) -> tcp::socket& { return beast::get_lowest_layer(ws); });
  }

 public:
  void start() {
    srv_->sessions.insert(this);
    ++srv_->stats.connections_total;
    beast::error_code ec;
    auto ep = tcp_layer().remote_endpoint(ec);
    remote_ = ec ? std::string("?") : net::to_string(ep);
    // One deadline for the TLS handshake and the upgrade request (then Beast's for its handshake).
    set_deadline(deadline::handshake, clock::now() + srv_->opts.handshake_timeout);
    auto* tls = std::get_if<tls_ws>(&ws_);
    if (!tls) return read_request();
    tls->next_layer().async_handshake(asio::ssl::stream_base::server, [self = shared_from_this()](beast::error_code e) {
      if (!e) return self->read_request();
      if (self->closing_) return;  // closed by the node (draining) meanwhile, not the peer's failure
      // Not TLS (plain HTTP on this port, a scanner), a certificate the client refused, or too slow
      // (the sweep closed the socket: aborted): this connection ends, counted and logged; nothing
      // else is affected.
      ++self->srv_->stats.tls_handshake_failures;
      log::info("ws {}: TLS handshake failed: {}", self->remote_,
                e == asio::error::operation_aborted ? std::string("timed out (--handshake-timeout)")
                                           : net::describe_failure(std::get<tls_ws>(self->ws_).next_layer().native_handle(), e));
    });
  }

  const std::string& user() const { return user_; }

  // Queues one message. False when it was not queued (closing, or the queue overflowed and the
  // connection is being closed as a slow consumer). While the login's history is being read, live
  // messages wait behind it (sid: the stream id a message was stored under, to skip the ones the
  // history holds too).
  bool send(const std::shared_ptr<const std::string>& payload, std::optional<stream_id> sid = std::nullopt) {
    if (closing_) return false;
    if (replay_ && replay_->active) {
      auto& r = *replay_;
      if (r.held_bytes + payload->size() > srv_->opts.send_queue_bytes) {
        ++srv_->stats.slow_consumer_closes;
        log::info("ws {} user {}: slow consumer ({} bytes held during replay): closing", remote_, printable(user_), r.held_bytes);
        close(close_code::slow_consumer, "slow consumer");
        return false;
      }
      r.held_bytes += payload->size();
      r.held.emplace_back(payload, sid);
      return true;
    }
    if (queued_bytes_ + payload->size() > srv_->opts.send_queue_bytes) {
      ++srv_->stats.slow_consumer_closes;
      log::info("ws {} user {}: slow consumer ({} bytes queued): closing", remote_, printable(user_), queued_bytes_);
      close(close_code::slow_consumer, "slow consumer");
      return false;
    }
    queued_bytes_ += payload->size();
    queue_.push_back(payload);
    if (!writing_) write_next();
    return true;
  }

  using clock = std::chrono::steady_clock;

  // REQUIRES: reason is a string literal (held as a pointer until the close frame is written).
  void close(std::uint16_t code, const char* reason) {
    if (closing_) return;
    closing_ = true;
    srv_->unbind(this);
    drop_queue();
    if (!accepted_) return hard_close();
    // A close frame waits for a write in progress; a peer that does not read never lets it finish.
    set_deadline(deadline::close, clock::now() + close_grace);
    close_code_ = code;
    close_text_ = reason;
    if (!writing_) send_close();
  }

  // True when tick() has something to do at `now`: a deadline passed, a ping is due, or the
  // answer to one (or the idle limit) is overdue. Called by the server's sweep for every session,
  // so it only compares.
  bool due(clock::time_point now) const {
    if (deadline_kind_ != deadline::none && now >= deadline_) return true;
    if (!accepted_) return false;
    if (closing_ || login_pending_) return false;
    const auto& o = srv_->opts;
    if (o.idle_timeout.count() > 0 && now - last_message_ >= o.idle_timeout) return true;
    if (ping_sent_ != clock::time_point{}) return now - ping_sent_ >= o.pong_timeout;
    return now - last_frame_ >= o.ping_interval;
  }

  // The heartbeat and the deadlines, from the server's sweep (one timer for all sessions).
  void tick(clock::time_point now) {
    const auto& o = srv_->opts;
    if (deadline_kind_ != deadline::none && now >= deadline_) {
      const deadline kind = deadline_kind_;
      deadline_kind_ = deadline::none;
      if (kind == deadline::close) return hard_close();
      // The TLS handshake or the upgrade request took too long (a token with the auth service
      // waits for its answer, then has a whole handshake timeout for the rest).
      if (kind == deadline::handshake) {
        if (!login_pending_) hard_close();
        return;
      }
      if (closing_ || login_pending_) return;
      if (kind == deadline::login && user_.empty()) {
        ++srv_->stats.login_timeouts;
        return close(close_code::login_timeout, "login timeout");
      }
      if (kind == deadline::expiry) {
        ++srv_->stats.token_expired_closes;
        return close(close_code::token_expired, "token expired");
      }
    }
    if (!accepted_ || closing_ || login_pending_) return;
    if (o.idle_timeout.count() > 0 && now - last_message_ >= o.idle_timeout) {
      ++srv_->stats.idle_closes;
      log::debug("ws {} user {}: no message for {} ms: closing", remote_, printable(user_),
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - last_message_).count());
      return close(close_code::idle, "idle timeout");
    }
    if (ping_sent_ != clock::time_point{}) {
      if (now - ping_sent_ < o.pong_timeout) return;
      // No pong and no other frame: the peer (or the path to it) is gone. No close frame, which
      // would only wait behind what it does not read.
      ++srv_->stats.pong_timeouts;
      log::debug("ws {} user {}: no pong within {} ms: dropped", remote_, printable(user_), o.pong_timeout.count());
      ended();
      return hard_close();
    }
    if (now - last_frame_ < o.ping_interval) return;
    ping_sent_ = now;
    if (ping_writing_) return;  // the last ping is still not written: the peer reads nothing
    ping_writing_ = true;
    with_ws([&](auto& ws) {
      ws.async_ping({}, [self = shared_from_this()](beast::error_code) { self->ping_writing_ = false; });
    });
  }

 private:
  enum class deadline : std::uint8_t { none, handshake, login, expiry, close };
  void set_deadline(deadline kind, clock::time_point at) {
    deadline_kind_ = kind;
    deadline_ = at;
  }

  // Any frame from the client: it is alive, and the next ping waits a whole interval again.
  void heard(clock::time_point now) {
    last_frame_ = now;
    ping_sent_ = {};
  }

  // The connection is gone: nothing more is sent, and no deadline is pending.
  void ended() {
    closing_ = true;
    srv_->unbind(this);
    drop_queue();
    deadline_kind_ = deadline::none;
  }

  // Nothing more will be written: what waits is dropped, but a message being written stays
  // queued until its write completes (the write reads from it).
  void drop_queue() {
    if (replay_) replay_->held.clear();
    std::shared_ptr<const std::string> in_flight;
    if (writing_ && !queue_.empty()) in_flight = queue_.front();
    queue_.clear();
    queued_bytes_ = 0;
    if (in_flight) {
      queued_bytes_ = in_flight->size();
      queue_.push_back(std::move(in_flight));
    }
  }

  static std::variant<plain_ws, tls_ws> make_ws(server::impl& s, tcp::socket socket) {
    if (s.tls) return std::variant<plain_ws, tls_ws>(std::in_place_type<tls_ws>, std::move(socket), s.tls->native());
    return std::variant<plain_ws, tls_ws>(std::in_place_type<plain_ws>, std::move(socket));
  }

  void read_request() {
    parser_ = std::make_unique<http::request_parser<http::empty_body>>();
    parser_->header_limit(max_request_head);
    parser_->body_limit(0);
    with_ws([&](auto& ws) {
      http::async_read(ws.next_layer(), buffer_, *parser_,
                       [self = shared_from_this()](beast::error_code e, std::size_t) { self->on_request(e); });
    });
  }

  void hard_close() {
    beast::error_code ignored;
    tcp_layer().shutdown(tcp::socket::shutdown_both, ignored);
    tcp_layer().close(ignored);
  }

  void send_close() {
    writing_ = true;
    with_ws([&](auto& ws) {
      // The close frame is serialized into the operation here: the reason need not outlive the call.
      const websocket::close_reason why(static_cast<websocket::close_code>(close_code_), close_text_);
      ws.async_close(why, [self = shared_from_this()](beast::error_code) {
        self->writing_ = false;
        if (self->deadline_kind_ == deadline::close) self->deadline_kind_ = deadline::none;
      });
    });
  }

  void refuse_http(http::status status) {
    ++srv_->stats.refused_connections;
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    res->set(http::field::connection, "close");
    res->prepare_payload();
    with_ws([&](auto& ws) {
      http::async_write(ws.next_layer(), *res, [self = shared_from_this(), res](beast::error_code, std::size_t) {
        self->hard_close();
      });
    });
  }

  void on_request(beast::error_code ec) {
    if (ec) return;  // timed out, closed, or not HTTP: nothing to answer
    auto& req = parser_->get();
    auto& s = *srv_;
    const std::string_view target = req.target();
    const std::string_view path = target.substr(0, target.find('?'));
    if (path != s.opts.path) return refuse_http(http::status::not_found);
    if (!websocket::is_upgrade(req)) return refuse_http(http::status::upgrade_required);
    // RFC 6455 4.1: a client sends nothing more before the 101. Bytes that came with the request
    // are in buffer_, where the WebSocket stream never reads them (a pipelined login was lost in
    // silence, its bytes later glued to the next message): refused, so such a client hears why.
    if (buffer_.size() != 0) {
      log::info("ws {}: refused: {} bytes sent before the handshake's answer", remote_, buffer_.size());
      return refuse_http(http::status::bad_request);
    }
    if (s.draining) return refuse_http(http::status::service_unavailable);
    if (s.sessions.size() > s.opts.max_connections) {
      log::warn("ws {}: refused: {} connections (--max-connections)", remote_, s.opts.max_connections);
      return refuse_http(http::status::service_unavailable);
    }
    if (!origin_allowed(s.opts.allowed_origins, req[http::field::origin], req[http::field::host])) {
      log::info("ws {}: refused: origin {} not allowed", remote_, printable(req[http::field::origin]));
      return refuse_http(http::status::forbidden);
    }
    // A token on the upgrade request: the Authorization header, or ?token= when allowed.
    std::string token;
    const std::string_view auth = req[http::field::authorization];
    if (auth.size() > 7 && lower(auth.substr(0, 7)) == "bearer ") token = std::string(auth.substr(7));
    if (token.empty() && s.opts.allow_query_token && target.find('?') != std::string_view::npos) {
      auto q = target.substr(target.find('?') + 1);
      for (std::size_t at = 0; at <= q.size();) {
        auto amp = q.find('&', at);
        auto part = q.substr(at, amp == std::string_view::npos ? std::string_view::npos : amp - at);
        if (part.starts_with("token=")) token = std::string(part.substr(6));
        if (amp == std::string_view::npos) break;
        at = amp + 1;
      }
    }
    if (!token.empty()) return verify(token, &session::on_upgrade_verdict);
    accept();
  }

  // The verdict on a token that came with the upgrade request.
  void on_upgrade_verdict(login_verdict v) {
    if (closing_) return;
    set_deadline(deadline::handshake, clock::now() + srv_->opts.handshake_timeout);  // for the answer
    if (!v.ok()) return refuse_http(v.retry ? http::status::service_unavailable : http::status::unauthorized);
    if (srv_->draining) return refuse_http(http::status::service_unavailable);
    pending_login_ = std::move(v);
    accept();
  }

  void accept() {
    auto& s = *srv_;
    deadline_kind_ = deadline::none;  // Beast's handshake timeout covers the accept
    websocket::stream_base::timeout t{};
    t.handshake_timeout = s.opts.handshake_timeout;
    // Pings, pongs and idleness are the server's sweep's (tick()), not Beast's idle timer, which
    // ties the ping to half of one timeout.
    t.idle_timeout = websocket::stream_base::none();
    t.keep_alive_pings = false;
    with_ws([&](auto& ws) {
      ws.set_option(t);
      ws.control_callback([this](websocket::frame_type, beast::string_view) { heard(clock::now()); });
      ws.read_message_max(s.opts.max_message_size);
      ws.set_option(websocket::stream_base::decorator(
          [](websocket::response_type& res) { res.set(http::field::server, "ws-push"); }));
      ws.async_accept(parser_->get(), [self = shared_from_this()](beast::error_code e) { self->on_accept(e); });
    });
  }

  // Verifies a token and hands the verdict to `then`: at once for a JWT, later (reads paused
  // meanwhile) from the auth service. A refusal is counted by reason and logged here.
  void verify(std::string_view token, void (session::*then)(login_verdict)) {
    if (srv_->verifier) {
      auto j = srv_->verifier->verify(token, std::chrono::system_clock::now());
      login_verdict v;
      if (!j.ok()) v.refusal = to_string(j.refusal);
      v.user = std::move(j.user);
      v.expires = j.expires;
      return (this->*then)(judged(std::move(v)));
    }
    login_pending_ = true;
    srv_->auth->verify(token, [self = shared_from_this(), then](const login_verdict& v) {
      self->login_pending_ = false;
      ((*self).*then)(self->judged(v));
    });
  }

  login_verdict judged(login_verdict v) {
    if (v.ok()) return v;
    ++srv_->stats.auth_failures[std::string(v.refusal)];
    // A service failure is logged by the auth client once per burst, not once per login.
    if (v.retry) log::debug("ws {}: login refused: {}", remote_, v.refusal);
    else log::info("ws {}: login refused: {}", remote_, v.refusal);
    return v;
  }

  void on_accept(beast::error_code ec) {
    parser_.reset();  // the request is no longer needed, nor the bytes it was read into
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (ec) return;
    accepted_ = true;
    const auto now = clock::now();
    last_frame_ = last_message_ = now;
    if (srv_->draining) return close(close_code::going_away, "shutting down");
    if (pending_login_) {
      auto v = std::move(*pending_login_);
      pending_login_.reset();
      login(v);
    } else {
      set_deadline(deadline::login, now + srv_->opts.login_timeout);
    }
    read();
  }

  // Waiting for a message holds no buffer of ours: the wait reads one byte, into first_byte_
  // (Beast reads the frame into the stream's own buffer and answers pings meanwhile); the rest of
  // a longer message is read into buffer_, which is freed once the message is handled. A wait in
  // async_read(buffer_) would hold 1536 bytes of buffer_ per idle connection.
  void read() {
    reading_ = true;
    with_ws([&](auto& ws) {
      ws.async_read_some(asio::buffer(&first_byte_, 1), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
        self->on_first_byte(ec, n);
      });
    });
  }

  void on_first_byte(beast::error_code ec, std::size_t n) {
    if (ec) return on_read(ec, n);
    const bool done = with_ws([](auto& ws) { return ws.is_message_done(); });
    if (done) return on_read(ec, n);
    with_ws([&](auto& ws) {
      ws.async_read(buffer_, [self = shared_from_this(), n](beast::error_code e, std::size_t) { self->on_read(e, n); });
    });
  }

  // `first` is 1 when the message's first byte is in first_byte_, 0 for an empty message.
  void on_read(beast::error_code ec, std::size_t first) {
    // Closed by the peer, timed out, or failed (Beast answers a message over read_message_max
    // with 1009 itself): the session ends with its last handler.
    reading_ = false;
    if (ec) return ended();
    const auto now = clock::now();
    heard(now);
    last_message_ = now;
    std::string text(first, static_cast<char>(first_byte_));
    text += beast::buffers_to_string(buffer_.data());
    buffer_.clear();
    buffer_.shrink_to_fit();
    if (!closing_) on_message(text);
    // A login waiting for the auth service holds the next message back (it may need the user).
    if (!closing_ && !login_pending_ && !reading_) read();
  }

  void on_message(const std::string& text) {
    const client_message msg = parse_client_message(text);
    if (const auto* l = std::get_if<login_message>(&msg)) {
      if (user_.empty() && l->since) {
        if (!replay_) replay_ = std::make_unique<replay_state>();
        replay_->since = *l->since;
      }
      if (!l->token) {
        login_verdict v;
        v.refusal = "malformed";
        return on_login_verdict(judged(std::move(v)));
      }
      return verify(*l->token, &session::on_login_verdict);
    }
    if (user_.empty()) {
      ++srv_->stats.auth_failures["no_login"];
      return close(close_code::unauthorized, "login first");
    }
    if (std::holds_alternative<ping_message>(msg)) return reply(R"({"type":"pong"})");
    if (++garbage_ > max_garbage) {
      ++srv_->stats.policy_closes;
      return close(close_code::policy, "not the protocol");
    }
    reply(std::string(error_reply(std::get<invalid_message>(msg).error)));
  }

  // The verdict on a login message.
  void on_login_verdict(login_verdict v) {
    if (closing_) return;
    if (!v.ok()) {
      if (v.retry) return close(close_code::try_again_later, "try again later");
      return close(close_code::unauthorized, "unauthorized");
    }
    if (!user_.empty() && v.user != user_) {
      log::info("ws {}: login as {} on a connection of {}: closing", remote_, printable(v.user), printable(user_));
      return close(close_code::unauthorized, "unauthorized");
    }
    login(v);
    if (!reading_) read();  // held back while the auth service answered
  }

  void login(const login_verdict& v) {
    const bool first = user_.empty();
    user_ = v.user;
    deadline_kind_ = deadline::none;
    if (v.expires) {
      // A token's expiry closes the connection unless a fresh login comes first.
      const auto leeway = srv_->verifier ? srv_->verifier->options().leeway : std::chrono::seconds(0);
      set_deadline(deadline::expiry, clock::now() + (*v.expires - std::chrono::system_clock::now()) + leeway);
    }
    if (first) {
      ++srv_->stats.logins;
      srv_->bind(this, user_);
    }
    reply(nlohmann::ordered_json{{"type", "login_ok"}, {"user", user_}}.dump());
    if (first) replay();
  }

  // After the first login: the user's messages after "since" (or the last --replay-on-login),
  // from the history, then the live ones that came meanwhile, each once.
  void replay() {
    const std::optional<std::string> since = replay_ ? replay_->since : std::nullopt;
    if (!since && srv_->opts.replay_on_login == 0) return;
    auto gap = [&](std::string_view why) {
      ++srv_->stats.gaps;
      reply(gap_frame(why));
    };
    if (!srv_->history_on()) return since ? gap("no history on this node") : void();
    if (!srv_->route_table->ready()) return since ? gap("history unavailable") : void();
    if (since && !parse_stream_id(*since)) return gap("since is not a message id");
    if (!replay_) replay_ = std::make_unique<replay_state>();
    replay_->active = true;
    // With since: everything after it (the stream holds about --history-size).
    const std::size_t max = since ? srv_->opts.history.size * 2 + 100 : srv_->opts.replay_on_login;
    read_history(srv_->route_table->redis(), srv_->prefix(), user_, since.value_or(""), max,
                 [self = shared_from_this()](history_page page) { self->replayed(std::move(page)); });
  }

  void replayed(history_page page) {
    auto held = std::move(replay_->held);
    replay_.reset();
    if (closing_) return;
    if (!page.error.empty()) {
      log::info("ws {} user {}: history not read: {}", remote_, printable(user_), page.error);
      ++srv_->stats.gaps;
      reply(gap_frame("history unavailable"));
    } else {
      if (page.gap) {
        ++srv_->stats.gaps;
        reply(gap_frame("trimmed or expired"));
      }
      srv_->stats.replayed += page.frames.size();
      for (auto& f : page.frames)
        if (!send(std::make_shared<const std::string>(std::move(f)))) return;
    }
    const auto last = parse_stream_id(page.last_id);
    for (auto& [payload, sid] : held) {
      if (last && sid && *sid <= *last) continue;  // it was in the history
      if (!send(payload)) return;
    }
  }

  void reply(std::string text) { send(std::make_shared<const std::string>(std::move(text))); }

  void write_next() {
    if (queue_.empty()) {
      writing_ = false;
      if (closing_ && accepted_) send_close();
      return;
    }
    writing_ = true;
    with_ws([&](auto& ws) {
      ws.text(true);
      ws.async_write(asio::buffer(*queue_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) {
          self->writing_ = false;
          return self->ended();
        }
        if (!self->queue_.empty()) {
          self->queued_bytes_ -= self->queue_.front()->size();
          self->queue_.pop_front();
        }
        self->write_next();
      });
    });
  }

  std::shared_ptr<server::impl> srv_;
  std::variant<plain_ws, tls_ws> ws_;
  beast::flat_buffer buffer_;  // the upgrade request, then the rest of a message; empty while idle
  std::unique_ptr<http::request_parser<http::empty_body>> parser_;  // until the upgrade (~400 bytes inline)
  // The heartbeat's and deadlines' state, read by the server's sweep (no timer per connection).
  clock::time_point last_frame_{};    // any frame from the client: messages, pings, pongs
  clock::time_point last_message_{};  // a message (for --idle-timeout)
  clock::time_point ping_sent_{};     // the ping still unanswered; {} when none
  clock::time_point deadline_{};      // login, then the token's expiry, then the close grace
  deadline deadline_kind_ = deadline::none;
  bool ping_writing_ = false;
  bool login_pending_ = false;  // a token is with the auth service
  bool reading_ = false;        // an async_read is pending
  std::string remote_;
  std::string user_;
  std::optional<login_verdict> pending_login_;
  // The first login's "since", and the live messages held while the history is read: only for
  // the moments of a login that asks for history (most connections never hold one).
  struct replay_state {
    std::optional<std::string> since;
    std::vector<std::pair<std::shared_ptr<const std::string>, std::optional<stream_id>>> held;
    std::size_t held_bytes = 0;
    bool active = false;
  };
  std::unique_ptr<replay_state> replay_;
  send_queue queue_;
  std::size_t queued_bytes_ = 0;
  const char* close_text_ = "";  // a literal; websocket::close_reason would hold 126 bytes per session
  std::uint16_t close_code_ = 0;
  unsigned char first_byte_ = 0;
  int garbage_ = 0;
  bool accepted_ = false;
  bool writing_ = false;
  bool closing_ = false;
};

// How often the sweep runs: an eighth of the shortest interval it serves, between 10 ms and 1 s
// (so a deadline is met at most that late).
namespace {
std::chrono::milliseconds sweep_interval(const options& o) {
  auto shortest = std::min({o.ping_interval, o.pong_timeout, o.login_timeout, o.handshake_timeout});
  if (o.idle_timeout.count() > 0) shortest = std::min(shortest, o.idle_timeout);
  return std::clamp(shortest / 8, std::chrono::milliseconds(10), std::chrono::milliseconds(1000));
}
}  // namespace

void server::impl::schedule_sweep() {
  sweep_timer.expires_after(sweep_interval(opts));
  sweep_timer.async_wait([weak = weak_from_this()](beast::error_code ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->sweep();
  });
}

// One pass over every session: most have nothing due, and are only compared; those that have
// are held (a tick may close them) and ticked after the pass.
void server::impl::sweep() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<std::shared_ptr<session>> due;
  for (session* s : sessions)
    if (s->due(now)) due.push_back(s->shared_from_this());
  for (const auto& s : due) s->tick(now);
  schedule_sweep();
}

void server::impl::bind(session* s, const std::string& user) {
  auto& list = users[user];
  list.push_back(s);
  if (list.size() == 1 && route_table) route_table->add_user(user);
}

void server::impl::unbind(session* s) {
  if (s->user().empty()) return;
  auto it = users.find(s->user());
  if (it == users.end()) return;
  auto& list = it->second;
  list.erase(std::remove(list.begin(), list.end(), s), list.end());
  if (list.empty()) {
    users.erase(it);
    if (route_table) route_table->remove_user(s->user());
  }
}

// One message to every connection of its users (or of every user), each user's copy carrying the
// stream id it was stored under, when it was.
void server::impl::deliver(push_line& l) {
  ++stats.messages_in;
  std::size_t delivered = 0, dropped = 0;
  auto to_all = [&](const std::vector<session*>& list, const std::shared_ptr<const std::string>& payload,
                    std::optional<stream_id> sid) {
    // A send may close a slow consumer, which unbinds it from this very list: iterate a copy.
    const boost::container::small_vector<session*, 4> copy(list.begin(), list.end());
    for (session* s : copy) (s->send(payload, sid) ? delivered : dropped) += 1;
  };
  json offline;                   // null until a target is offline here
  nlohmann::ordered_json stored;  // null until a target was stored here
  if (l.broadcast) {
    auto payload = std::make_shared<const std::string>(message_frame(l.id, l.data, l.ref));
    std::vector<session*> all;
    for (const auto& [user, list] : users) all.insert(all.end(), list.begin(), list.end());
    to_all(all, payload, std::nullopt);
  } else {
    std::shared_ptr<const std::string> shared;  // the copy of users that were not stored here
    for (std::size_t i = 0; i < l.targets.size(); ++i) {
      const auto& u = l.targets[i];
      const std::string& hid = l.history_ids.empty() ? std::string() : l.history_ids[i];
      if (!hid.empty()) stored[u] = hid;
      auto it = users.find(u);
      if (it == users.end()) {
        offline.push_back(u);
        continue;
      }
      if (!hid.empty()) {
        auto payload = std::make_shared<const std::string>(message_frame(json(hid).dump(), l.data, l.id));
        to_all(it->second, payload, parse_stream_id(hid));
        continue;
      }
      if (!shared) shared = std::make_shared<const std::string>(message_frame(l.id, l.data, l.ref));
      std::optional<stream_id> sid;
      if (l.stored) sid = parse_stream_id(json::parse(l.id, nullptr, false).get<std::string>());
      to_all(it->second, shared, sid);
    }
  }
  stats.delivered += delivered;
  stats.dropped += dropped;
  stats.offline += offline.size();
  l.delivered = delivered;
  l.dropped = dropped;
  constexpr auto replace = nlohmann::ordered_json::error_handler_t::replace;
  if (!offline.empty()) l.offline = offline.dump(-1, ' ', false, replace);
  if (!stored.empty()) l.history = stored.dump(-1, ' ', false, replace);
}

// POST /push: one JSON message, or JSON Lines of them; the answer has one JSON line per input
// line, in order, once every message is stored (with history) and queued on its connections.
void server::impl::push(const net::http_request& req, const net::http_responder& respond) {
  if (!opts.push_token.empty() && req.authorization != "Bearer " + opts.push_token) {
    log::info("push API {}: refused: no or wrong bearer token", req.remote_address);
    return respond(net::json_error(401, "UNAUTHORIZED"));
  }
  submit(req.body, 1, [respond](std::string answers, std::size_t) {
    net::http_response res;
    res.body = std::move(answers);
    res.content_type = "application/x-ndjson";
    respond(std::move(res));
  });
}

push_line server::impl::parse_line(std::string_view line, std::uint64_t line_no) {
  push_line l;
  l.line_no = line_no;
  // The plain shape (every line push-route sends): read without a tree.
  if (auto p = read_plain_message(line, {.sorted_names = true, .node_members = true})) {
    // A stored message: one user, and the stream id as its id (a JSON string).
    const auto stored_ok = [&] {
      if (p->users.size() != 1 || p->id.empty() || p->id.front() != '"') return false;
      const auto id = json::parse(p->id, nullptr, false);
      return id.is_string() && parse_stream_id(id.get<std::string>()).has_value();
    };
    if (!p->stored || stored_ok()) {
      l.broadcast = p->broadcast;
      l.stored = p->stored;
      l.targets = std::move(p->users);
      l.data = std::move(p->data);
      l.id = std::move(p->id);
      l.ref = std::move(p->ref);
      return l;
    }
  }
  json msg;
  bool with_id = false;  // the answer says the message's id (once it is known to be an object with data)
  auto fail = [&](const char* code, std::string text) {
    ++stats.messages_invalid;
    l.error = true;
    l.error_answer = {{"line", line_no}};
    if (with_id) l.error_answer["id"] = msg["id"];
    l.error_answer["error"] = code;
    l.error_answer["message"] = std::move(text);
    return std::move(l);
  };
  msg = json::parse(line, nullptr, false);
  if (msg.is_discarded()) return fail("invalid_json", "not a JSON value");
  if (nesting_depth(line) > max_depth) return fail("invalid_message", fmt::format("JSON nested deeper than {} levels", max_depth));
  if (!msg.is_object() || !msg.contains("data"))
    return fail("invalid_message", "want an object with \"data\" and one of \"user\", \"users\", \"broadcast\"");
  with_id = msg.contains("id");
  for (const char* flag : {"broadcast", "stored"})
    if (auto f = msg.find(flag); f != msg.end() && !f->is_boolean())
      return fail("invalid_message", fmt::format("\"{}\" must be true or false", flag));
  l.broadcast = msg.value("broadcast", false);
  auto user_text = [](const json& u) -> std::string {
    if (u.is_string()) return u.get<std::string>();
    if (u.is_number_integer()) return u.dump();
    return {};
  };
  if (msg.contains("user")) l.targets.push_back(user_text(msg["user"]));
  if (msg.contains("users") && msg["users"].is_array())
    for (const auto& u : msg["users"]) l.targets.push_back(user_text(u));
  const int kinds = int(msg.contains("user")) + int(msg.contains("users")) + int(l.broadcast);
  if (kinds != 1 || std::any_of(l.targets.begin(), l.targets.end(), [](const std::string& t) { return t.empty(); }) ||
      (msg.contains("users") && !msg["users"].is_array()))
    return fail("invalid_message", "want exactly one of \"user\" (a string), \"users\" (an array of strings), \"broadcast\":true");
  try {
    l.data = msg["data"].dump();
    if (msg.contains("id")) l.id = msg["id"].dump();
    if (msg.contains("ref")) l.ref = msg["ref"].dump();
  } catch (const json::exception&) {
    return fail("invalid_message", "not valid UTF-8");
  }
  // push-route's lines: stored in the user's history already, under the stream id they carry.
  if (msg.value("stored", false)) {
    if (l.targets.size() != 1 || !msg["id"].is_string() || !parse_stream_id(msg["id"].get<std::string>()))
      return fail("invalid_message", "a stored message has one \"user\" and its stream id as \"id\"");
    l.stored = true;
  }
  return l;
}

void server::impl::submit(std::string_view body, std::uint64_t line_no,
                          std::function<void(std::string, std::size_t)> done) {
  auto b = std::make_shared<push_batch>();
  b->done = std::move(done);
  for (--line_no; !body.empty();) {
    auto nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.remove_suffix(1);
    if (line.empty()) continue;
    b->lines.push_back(parse_line(line, line_no));
    if (b->lines.back().error) ++b->invalid;
  }
  push_order.push_back(b);
  // Each user's copy is stored before it is delivered, so its stream id goes with it and a client
  // resuming with "since" gets neither a gap nor a duplicate. Redis away: delivered unstored.
  redis::commands cmds;
  if (history_on() && route_table->ready())
    for (const auto& l : b->lines) {
      if (l.error || l.broadcast || l.stored) continue;
      for (const auto& u : l.targets) append_history_commands(cmds, prefix(), u, opts.history, l.data, l.id);
    }
  if (cmds.empty()) {
    b->ready = true;
    return drain_pushes();
  }
  std::weak_ptr<impl> weak = shared_from_this();
  route_table->redis().pipeline(std::move(cmds), [weak, b](std::vector<redis::result> rs) {
    auto self = weak.lock();
    if (!self) return;
    std::size_t k = 0;
    for (auto& l : b->lines) {
      if (l.error || l.broadcast || l.stored) continue;
      l.history_ids.assign(l.targets.size(), {});
      for (std::size_t i = 0; i < l.targets.size(); ++i, k += 2) {
        const auto& r = rs[k];
        if (r.ok() && r.value.type == redis::reply::kind::string) {
          l.history_ids[i] = r.value.str;
          ++self->stats.history_stored;
        } else {
          ++self->stats.history_failures;
          log::debug("history of user {}: {}", printable(l.targets[i]), r.ok() ? r.value.str : r.error);
        }
      }
    }
    b->ready = true;
    self->drain_pushes();
  });
}

void server::impl::drain_pushes() {
  while (!push_order.empty() && push_order.front()->ready) {
    auto b = std::move(push_order.front());
    push_order.pop_front();
    std::string out;
    for (auto& l : b->lines) {
      if (l.error) {
        out += l.error_answer.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
      } else {
        deliver(l);
        append_answer(out, l);
      }
      out += '\n';
    }
    b->done(std::move(out), b->invalid);
  }
}

json server::impl::stats_json() const {
  json failures = json::object();
  for (const auto& [reason, n] : stats.auth_failures) failures[reason] = n;
  std::size_t connections = sessions.size();
  json out = {{"connections", connections},
          {"users", users.size()},
          {"connections_total", stats.connections_total},
          {"refused_connections", stats.refused_connections},
          {"logins", stats.logins},
          {"auth_failures", failures},
          {"messages_in", stats.messages_in},
          {"messages_invalid", stats.messages_invalid},
          {"delivered", stats.delivered},
          {"offline", stats.offline},
          {"dropped", stats.dropped},
          {"slow_consumer_closes", stats.slow_consumer_closes},
          {"login_timeouts", stats.login_timeouts},
          {"token_expired_closes", stats.token_expired_closes},
          {"policy_closes", stats.policy_closes},
          {"pong_timeouts", stats.pong_timeouts},
          {"idle_closes", stats.idle_closes},
          {"tls_handshake_failures", stats.tls_handshake_failures},
          {"history_stored", stats.history_stored},
          {"history_failures", stats.history_failures},
          {"replayed", stats.replayed},
          {"gaps", stats.gaps},
          {"redis", route_table ? (route_table->ready() ? "up" : "down") : "off"},
          {"draining", draining}};
  if (auth) {
    const auto a = auth->stats();
    out["auth_service"] = {{"requests", a.requests}, {"cache_hits", a.cache_hits}, {"shared", a.shared}, {"cached", a.cached}};
  }
  return out;
}

std::string server::impl::metrics() const {
  std::string out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP ws_push_{} {}\n# TYPE ws_push_{} {}\nws_push_{} {}\n", name, help, name, type, name, value);
  };
  metric("connections", "gauge", "Open WebSocket connections.", sessions.size());
  metric("users", "gauge", "Users with a logged-in connection here.", users.size());
  metric("connections_total", "counter", "Connections accepted.", stats.connections_total);
  metric("logins_total", "counter", "Successful logins.", stats.logins);
  metric("messages_in_total", "counter", "Push messages accepted.", stats.messages_in);
  metric("delivered_total", "counter", "Messages queued on a connection.", stats.delivered);
  metric("offline_total", "counter", "Users a message found no connection for.", stats.offline);
  metric("dropped_total", "counter", "Messages not queued (closing or slow connection).", stats.dropped);
  metric("history_stored_total", "counter", "Messages appended to a user's history here.", stats.history_stored);
  metric("replayed_total", "counter", "Messages sent from history at login.", stats.replayed);
  metric("gaps_total", "counter", "Logins told that history may miss messages.", stats.gaps);
  metric("slow_consumer_closes_total", "counter", "Connections closed as slow consumers.", stats.slow_consumer_closes);
  metric("pong_timeouts_total", "counter", "Connections dropped: no pong after a ping.", stats.pong_timeouts);
  metric("idle_closes_total", "counter", "Connections closed: no message within the idle timeout.", stats.idle_closes);
  metric("tls_handshake_failures_total", "counter", "TLS handshakes that failed or timed out.", stats.tls_handshake_failures);
  out += "# HELP ws_push_auth_failures_total Refused logins by reason.\n# TYPE ws_push_auth_failures_total counter\n";
  for (const auto& [reason, n] : stats.auth_failures)
    out += fmt::format("ws_push_auth_failures_total{{reason=\"{}\"}} {}\n", reason, n);
  metric("redis_up", "gauge", "1 when the route store is connected (0 also without one).",
         route_table && route_table->ready() ? 1 : 0);
  return out;
}

void server::impl::start() {
  if (opts.jwt) verifier.emplace(*opts.jwt);
  else auth = std::make_unique<auth_service>(io, *opts.auth);
  if (!opts.tls.cert_file.empty() || !opts.tls.key_file.empty()) tls = net::tls_context::server(opts.tls);  // once
  std::weak_ptr<impl> weak = shared_from_this();
  listener = std::make_unique<net::tcp_listener>(io, opts.listen, [weak](tcp::socket socket) {
    if (auto self = weak.lock()) std::make_shared<session>(self, std::move(socket))->start();
  });
  http.route_async("POST", "/push", [weak](const net::http_request& r, const net::http_responder& respond) {
    auto self = weak.lock();
    if (!self) return respond(net::json_error(503, "SHUTTING_DOWN"));
    self->push(r, respond);
  });
  http.route("GET", "/stats", [weak](const net::http_request&) {
    auto self = weak.lock();
    return self ? net::json_response(self->stats_json()) : net::json_error(503, "SHUTTING_DOWN");
  });
  http.route("GET", "/metrics", [weak](const net::http_request&) {
    net::http_response r;
    if (auto self = weak.lock()) r.body = self->metrics();
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    return r;
  });
  http.route("GET", "/healthz", [weak](const net::http_request&) {
    auto self = weak.lock();
    if (!self || self->draining) return net::json_response({{"status", "draining"}}, 503);
    // Redis down degrades routing across nodes, not this node's own delivery: still 200.
    const bool degraded = self->route_table && !self->route_table->ready();
    return net::json_response({{"status", degraded ? "degraded" : "ok"}});
  });
  http.listen(opts.push_listen, "push_listen");
  schedule_sweep();
  if (opts.routes) {
    auto r = *opts.routes;
    if (r.node_address.empty()) r.node_address = http.local_address();
    route_table = std::make_unique<routes>(io, std::move(r));
    route_table->start();
  }
}

server::server(asio::io_context& io, options opts) {
  if (opts.jwt.has_value() == opts.auth.has_value())
    fatal(exit_code::config, "token verification: want a JWT key or an auth service, exactly one");
  impl_ = std::make_shared<impl>(io, std::move(opts));
  impl_->start();
}

server::~server() {
  impl_->sweep_timer.cancel();
  if (impl_->auth) impl_->auth->cancel();  // pending logins hold their sessions
  if (impl_->listener) impl_->listener->close();
  impl_->http.stop();
  std::vector<session*> open(impl_->sessions.begin(), impl_->sessions.end());
  for (session* s : open) s->close(close_code::going_away, "shutting down");
}

std::uint16_t server::port() const { return impl_->listener->port(); }
std::uint16_t server::push_port() const { return impl_->http.port(); }
std::string server::address() const { return net::to_string(impl_->listener->local_endpoint()); }
std::string server::push_address() const { return impl_->http.local_address(); }

void server::drain(std::function<void()> done) {
  auto self = impl_;
  self->draining = true;
  self->listener->close();
  std::vector<session*> open(self->sessions.begin(), self->sessions.end());
  for (session* s : open) s->close(close_code::going_away, "shutting down");
  auto finish = [self, done = std::move(done)]() {
    auto deadline = std::make_shared<asio::steady_timer>(self->io, self->opts.drain_timeout);
    auto poll = std::make_shared<std::function<void()>>();
    *poll = [self, deadline, poll, done]() {
      if (self->sessions.empty() || deadline->expiry() <= std::chrono::steady_clock::now()) {
        self->http.stop();
        *poll = nullptr;  // breaks the cycle
        return done();
      }
      auto t = std::make_shared<asio::steady_timer>(self->io, std::chrono::milliseconds(20));
      t->async_wait([t, poll](beast::error_code) {
        if (*poll) (*poll)();
      });
    };
    (*poll)();
  };
  if (self->route_table) self->route_table->withdraw(std::move(finish));
  else finish();
}

namespace {

// --stdin: a thread reads push messages, hands them to the io thread in batches (one batch per
// read(2) of input, at most max_batch lines) and writes each batch's answers to stdout in order.
// It never blocks the io thread; it is woken through `wake` to stop, and always joined.
class input_feed {
 public:
  input_feed(asio::io_context& io, server& s, std::string path, std::function<void()> on_end)
      : io_(io), server_(s), path_(std::move(path)), on_end_(std::move(on_end)) {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) fatal(exit_code::software, "eventfd: {}", std::strerror(errno));
    thread_ = std::thread([this] { loop(); });
  }
  ~input_feed() {
    finish();
    ::close(wake_);
  }
  // Stops reading, joins the thread; the exit status the input earned (0, 65, 74, 75).
  int finish() {
    stop();
    if (thread_.joinable()) thread_.join();
    return status_;
  }
  void stop() {
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
  }

 private:
  static constexpr std::size_t max_batch = 1000;

  void loop() {
    try {
      io::line_reader in(path_, max_line);
      in.stop_on(wake_);
      io::line_writer out(STDOUT_FILENO);
      out.batch_until_flush();
      bool ok = true;
      in.on_refill([&] { ok = ok && send(out); });
      while (ok) {
        auto l = in.next();
        if (!l) break;
        if (l->too_long) {
          ok = send(out) && out.write_line(fmt::format(R"({{"line":{},"error":"too_long","message":"a line over {} bytes"}})",
                                                       l->number, max_line));
          log::warn("{}:{}: a line over {} bytes", in.source(), l->number, max_line);
          status_ = exit_code::data_error;
          continue;
        }
        if (batch_.empty()) first_ = l->number;
        // Line numbers stay right when lines are skipped: empty lines keep their place.
        while (first_ + lines_ < l->number) {
          batch_.push_back('\n');
          ++lines_;
        }
        batch_.append(l->text).push_back('\n');
        if (++lines_ >= max_batch) ok = send(out);
      }
      if (ok) send(out);
      if (in.stopped()) log::info("{}: stopped reading at line {}", in.source(), in.line_number());
    } catch (const fatal_error& e) {
      log::error("{}", e.what());
      status_ = e.code();
    }
    asio::post(io_, on_end_);
  }

  // The batch to the io thread, its answers to `out`. False when output is closed or the io
  // thread stopped before it could deliver (then the lines are named as not delivered).
  bool send(io::line_writer& out) {
    if (batch_.empty()) return out.flush();
    std::promise<std::pair<std::string, std::size_t>> done;
    auto answer = done.get_future();
    asio::post(io_, [&] {
      server_.deliver_lines(batch_, first_, [&](std::string text, std::size_t invalid) {
        done.set_value({std::move(text), invalid});
      });
    });
    while (answer.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
      if (io_.stopped()) {
        log::error("stdin: lines {} to {} not delivered: stopping", first_, first_ + lines_ - 1);
        status_ = exit_code::temp_fail;
        return false;
      }
    }
    auto [text, invalid] = answer.get();
    if (invalid > 0 && status_ == exit_code::ok) status_ = exit_code::data_error;
    batch_.clear();
    lines_ = 0;
    std::string_view rest = text;
    while (!rest.empty()) {
      auto nl = rest.find('\n');
      if (!out.write_line(rest.substr(0, nl))) return false;
      rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
    }
    return out.flush();
  }

  static constexpr std::size_t max_line = 16u << 20;
  asio::io_context& io_;
  server& server_;
  std::string path_;
  std::function<void()> on_end_;
  int wake_ = -1;
  std::thread thread_;
  std::string batch_;
  std::uint64_t first_ = 0;
  std::uint64_t lines_ = 0;
  std::atomic<int> status_{exit_code::ok};
};

}  // namespace

void server::deliver_lines(std::string_view lines, std::uint64_t first_line,
                           std::function<void(std::string, std::size_t)> done) {
  impl_->submit(lines, first_line, std::move(done));
}

int run(const options& opts) {
  asio::io_context io;
  server s(io, opts);
  log::info("WebSocket: listening on {}{}", s.address(), opts.path);
  log::info("push API: listening on {}", s.push_address());
  bool draining = false;
  auto drain = [&] {
    if (draining) return;
    draining = true;
    s.drain([&io] { io.stop(); });
  };
  std::unique_ptr<input_feed> feed;
  if (!opts.input.empty()) {
    feed = std::make_unique<input_feed>(io, s, opts.input, [&] {
      if (!draining) log::info("end of input: draining");
      drain();
    });
  }
  util::on_stop_signals(io, [&](int signo) {
    if (draining) return;
    log::info("signal {}: draining", signo);
    if (feed) feed->stop();
    drain();
  });
  io.run();
  const int status = feed ? feed->finish() : exit_code::ok;
  log::info("stopped");
  return status;
}

}  // namespace pipekit::push
