#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

// Asynchronous HTTP/1.1 GET and POST on an io_context (Boost.Beast underneath, kept out of this
// header), for daemons and clients that call an HTTP API from their event loop (nsq-tail polling
// lookupd, ws-push asking an auth service). One connection per request ("Connection: close"),
// plain http:// only. Programs that make blocking requests use net::http_session
// (http_session.hpp) instead.
namespace pipekit::net {

struct http_get_result {
  int status = 0;     // the HTTP status; 0 when there was no answer (see error)
  std::string body;   // the response body (at most max_body bytes)
  std::string error;  // why there was no answer: "timed out", a socket error, "response too large", ...
};
using http_result = http_get_result;

struct http_get_options {
  // The whole exchange (name lookup, connect, send, receive) ends within this: "timed out".
  std::chrono::milliseconds timeout{5000};
  std::size_t max_body = 16u << 20;  // a longer answer is "response too large", however it is framed
  std::string accept;                // an Accept header, when not empty
  std::string authorization;         // an Authorization header, when not empty
};
using http_options = http_get_options;

// GETs `target` ("/lookup?topic=t") from `address` ("host:port", "[::1]:4161" or "http://host:port";
// port 80 when absent). `done` runs exactly once, on the io_context's thread, never inside this call.
void async_http_get(boost::asio::io_context& io, std::string_view address, std::string_view target,
                    const http_get_options& options, std::function<void(http_get_result)> done);

// POSTs `body` (with Content-Type `content_type`) to `target` at `address`, as async_http_get.
void async_http_post(boost::asio::io_context& io, std::string_view address, std::string_view target,
                     std::string body, std::string_view content_type, const http_options& options,
                     std::function<void(http_result)> done);

}  // namespace pipekit::net
