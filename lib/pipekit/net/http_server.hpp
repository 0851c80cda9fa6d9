#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace boost::asio {
class io_context;
}

// A small HTTP/1.1 server for the daemons' APIs (Boost.Beast underneath, kept out of this header):
// keep-alive, a request body limit, a read timeout, and a route table of method + path -> handler.
// Handlers run on the io_context's thread (synchronous ones answer at once, asynchronous ones when
// they call back); run that io_context on one thread.
namespace pipekit::net {

struct http_request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // percent-decoded, without the query: "/lookup"
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order, '+' read as a space
  std::string body;
  std::string content_type;
  std::string authorization;   // the Authorization header, as sent
  std::string remote_address;  // "127.0.0.1:53422"

  // The first value of a query parameter, or nullptr when it is absent.
  const std::string* param(std::string_view name) const noexcept;
};

struct http_response {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers
  bool without_server_headers = false;  // leave out http_server_options::headers (nsqd's plain-text /ping)
};

// 200 (or status) with a compact JSON body and "application/json; charset=utf-8".
http_response json_response(const nlohmann::json& body, int status = 200);
// The same, keys in insertion order (to match a peer's struct field order).
http_response ordered_json_response(const nlohmann::ordered_json& body, int status = 200);
// nsq's error shape: {"message":"CODE"} with the given status, e.g. (400, "MISSING_ARG_TOPIC").
http_response json_error(int status, std::string_view code);

using http_handler = std::function<http_response(const http_request&)>;
// An answer given later: `respond` must be called exactly once, on the io_context's thread (the
// connection waits for it, and stop() lets it finish).
using http_responder = std::function<void(http_response)>;
using http_async_handler = std::function<void(const http_request&, http_responder respond)>;

struct http_server_options {
  std::size_t body_limit = 1u << 20;                      // larger bodies get 413 and a close
  std::chrono::milliseconds read_timeout{30'000};         // a request (or an idle keep-alive) must arrive within it
  std::vector<std::pair<std::string, std::string>> headers;  // added to every response
  // The answer to a body over body_limit, by request path (unset: 413 {"message":"BODY_TOO_LARGE"}).
  std::function<http_response(std::string_view path)> body_too_large;
};

class http_server {
 public:
  explicit http_server(boost::asio::io_context& io, http_server_options options = {});
  ~http_server();
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Adds a route. Unknown paths answer 404 {"message":"NOT_FOUND"}, a known path with another
  // method 405 {"message":"METHOD_NOT_ALLOWED"} (as nsqd and nsqlookupd do). A handler that
  // throws answers 500 {"message":"INTERNAL_ERROR"}.
  void route(std::string method, std::string path, http_handler handler);
  // A route whose handler answers later (e.g. after a database round trip). A handler that throws
  // before answering answers 500.
  void route_async(std::string method, std::string path, http_async_handler handler);
  // A route for every path under prefix (e.g. "/config/" for nsqd's "/config/:opt") that has no
  // route of its own; the longest matching prefix wins.
  void route_prefix(std::string method, std::string prefix, http_handler handler);

  // Binds "host:port" (":port" is every interface; port 0 lets the kernel pick) and starts
  // accepting. Throws pipekit::option_error as tcp_listener does, naming `option` (http_address).
  void listen(std::string_view address, std::string_view option = "listen");
  std::uint16_t port() const;
  std::string local_address() const;  // "127.0.0.1:4161"
  std::size_t connections() const;    // open connections

  // Graceful stop: no new connections; idle connections close now, a response being written
  // is finished first. Safe to call twice.
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace pipekit::net
