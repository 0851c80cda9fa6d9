// http_server: one Beast session per connection, reading a request, calling its route's handler
// and writing the answer, until the peer closes, a timeout, an error or stop().
#include "pipekit/net/http_server.hpp"

#include <map>
#include <optional>
#include <unordered_map>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/log/log.hpp"
#include "pipekit/net/tcp_listener.hpp"

namespace pipekit::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

const std::string* http_request::param(std::string_view name) const noexcept {
  for (const auto& [key, value] : query)
    if (key == name) return &value;
  return nullptr;
}

http_response json_response(const nlohmann::json& body, int status) {
  http_response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.content_type = "application/json; charset=utf-8";
  return r;
}

http_response ordered_json_response(const nlohmann::ordered_json& body, int status) {
  http_response r;
  r.status = status;
  r.body = body.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
  r.content_type = "application/json; charset=utf-8";
  return r;
}

http_response json_error(int status, std::string_view code) {
  return json_response(nlohmann::json{{"message", code}}, status);
}

namespace {
constexpr std::size_t max_header_bytes = 16u << 10;
class session;
}  // namespace

struct http_server::impl {
  impl(asio::io_context& io_, http_server_options opts) : io(io_), options(std::move(opts)) {}
  asio::io_context& io;
  http_server_options options;
  std::map<std::string, std::vector<std::pair<std::string, http_async_handler>>, std::less<>> routes;  // path -> methods
  std::map<std::string, std::vector<std::pair<std::string, http_async_handler>>, std::less<>> prefix_routes;
  std::unique_ptr<tcp_listener> listener;
  std::unordered_map<session*, std::weak_ptr<session>> sessions;
  bool stopped = false;

  // Answers through respond, now or later.
  void dispatch(const http_request& request, const http_responder& respond) const;
  static http_async_handler now(http_handler h) {
    return [h = std::move(h)](const http_request& r, const http_responder& respond) { respond(h(r)); };
  }
};

namespace {

class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket socket, std::shared_ptr<http_server::impl> server)
      : stream_(std::move(socket)), server_(std::move(server)) {
    error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = to_string(remote);
  }
  ~session() { server_->sessions.erase(this); }

  void start() {
    server_->sessions.emplace(this, weak_from_this());
    read();
  }

  // From stop(): an idle connection closes now, one writing closes after its answer.
  void stop() {
    stopping_ = true;
    if (!writing_) close();
  }

 private:
  void read() {
    parser_.emplace();
    parser_->body_limit(server_->options.body_limit);
    parser_->header_limit(max_header_bytes);
    stream_.expires_after(server_->options.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](const error_code& ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(const error_code& ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || stopping_) return close();
    if (ec == beast::error::timeout) {
      log::debug("http {}: read timeout", remote_);
      return close();
    }
    if (ec == http::error::body_limit) {
      http_response r = json_error(413, "BODY_TOO_LARGE");
      // The request line is in (the limit is checked at Content-Length, or later in the body).
      if (server_->options.body_too_large) {
        auto target = boost::urls::parse_origin_form(parser_->get().target());
        if (target) r = server_->options.body_too_large(std::string(target->path()));
      }
      return answer(std::move(r), false);
    }
    if (ec == http::error::header_limit) return answer(json_error(431, "HEADERS_TOO_LARGE"), false);
    if (ec && ec.category() == make_error_code(http::error::body_limit).category()) {
      log::debug("http {}: bad request: {}", remote_, ec.message());
      return answer(json_error(400, "BAD_REQUEST"), false);
    }
    if (ec) {
      log::debug("http {}: read: {}", remote_, ec.message());
      return close();
    }
    auto& req = parser_->get();
    http_request request;
    request.method = std::string(req.method_string());
    request.content_type = std::string(req[http::field::content_type]);
    request.authorization = std::string(req[http::field::authorization]);
    request.remote_address = remote_;
    request.body = std::move(req.body());
    auto parsed = boost::urls::parse_origin_form(req.target());
    if (!parsed) return answer(json_error(400, "INVALID_REQUEST"), req.keep_alive());
    request.path = parsed->path();
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;
    for (auto param : parsed->params(opts)) request.query.emplace_back(param.key, param.value);
    // The connection reads nothing more until the handler answered (one request at a time).
    writing_ = true;
    server_->dispatch(request, [self = shared_from_this(), keep_alive = req.keep_alive()](http_response r) {
      self->answer(std::move(r), keep_alive);
    });
  }

  void answer(http_response r, bool keep_alive) {
    res_ = {};
    res_.version(parser_ && parser_->is_header_done() ? parser_->get().version() : 11);
    res_.result(static_cast<unsigned>(r.status));
    res_.set(http::field::content_type, r.content_type);
    if (!r.without_server_headers)
      for (const auto& [name, value] : server_->options.headers) res_.set(name, value);
    for (const auto& [name, value] : r.headers) res_.set(name, value);
    res_.body() = std::move(r.body);
    res_.keep_alive(keep_alive && !stopping_);
    res_.prepare_payload();
    writing_ = true;
    stream_.expires_after(server_->options.read_timeout);
    http::async_write(stream_, res_, [self = shared_from_this()](const error_code& ec, std::size_t) {
      self->writing_ = false;
      if (ec) {
        log::debug("http {}: write: {}", self->remote_, ec.message());
        return self->close();
      }
      if (!self->res_.keep_alive() || self->stopping_) return self->close();
      self->read();
    });
  }

  void close() {
    error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  std::shared_ptr<http_server::impl> server_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> res_;
  std::string remote_;
  bool writing_ = false;
  bool stopping_ = false;
};

}  // namespace

void http_server::impl::dispatch(const http_request& request, const http_responder& respond) const {
  auto it = routes.find(request.path);
  if (it == routes.end()) {
    // The longest prefix route under which the path falls.
    it = prefix_routes.end();
    for (auto p = prefix_routes.begin(); p != prefix_routes.end(); ++p)
      if (request.path.starts_with(p->first) && (it == prefix_routes.end() || p->first.size() > it->first.size()))
        it = p;
    if (it == prefix_routes.end()) return respond(json_error(404, "NOT_FOUND"));
  }
  for (const auto& [method, handler] : it->second) {
    if (method != request.method) continue;
    auto answered = std::make_shared<bool>(false);
    try {
      return handler(request, [answered, respond](http_response r) {
        if (std::exchange(*answered, true)) return;
        respond(std::move(r));
      });
    } catch (const std::exception& e) {
      log::error("http {} {}: {}", request.method, request.path, e.what());
      if (!*answered) {
        *answered = true;
        respond(json_error(500, "INTERNAL_ERROR"));
      }
      return;
    }
  }
  respond(json_error(405, "METHOD_NOT_ALLOWED"));
}

http_server::http_server(asio::io_context& io, http_server_options options)
    : impl_(std::make_shared<impl>(io, std::move(options))) {}

http_server::~http_server() { stop(); }

void http_server::route(std::string method, std::string path, http_handler handler) {
  impl_->routes[std::move(path)].emplace_back(std::move(method), impl::now(std::move(handler)));
}

void http_server::route_async(std::string method, std::string path, http_async_handler handler) {
  impl_->routes[std::move(path)].emplace_back(std::move(method), std::move(handler));
}

void http_server::route_prefix(std::string method, std::string prefix, http_handler handler) {
  impl_->prefix_routes[std::move(prefix)].emplace_back(std::move(method), impl::now(std::move(handler)));
}

void http_server::listen(std::string_view address, std::string_view option) {
  std::weak_ptr<impl> weak = impl_;
  impl_->listener = std::make_unique<tcp_listener>(impl_->io, address, [weak](tcp::socket socket) {
    auto server = weak.lock();
    if (!server || server->stopped) return;
    std::make_shared<session>(std::move(socket), std::move(server))->start();
  }, option);
}

std::uint16_t http_server::port() const { return impl_->listener ? impl_->listener->port() : 0; }

std::string http_server::local_address() const {
  return impl_->listener ? to_string(impl_->listener->local_endpoint()) : std::string();
}

std::size_t http_server::connections() const { return impl_->sessions.size(); }

void http_server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->listener) impl_->listener->close();
  std::vector<std::shared_ptr<session>> live;
  for (auto& [ptr, weak] : impl_->sessions)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  for (auto& s : live) s->stop();
}

}  // namespace pipekit::net
