#pragma once
#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace boost::asio {
class io_context;
}

// An asynchronous HTTP/1.1 GET on an io_context (Boost.Beast underneath, kept out of this header),
// for daemons and clients that poll an HTTP API from their event loop (nsq-tail polling lookupd).
// Programs that make one blocking request use libcurl instead.
namespace pipekit::net {

struct http_get_result {
  int status = 0;     // the HTTP status; 0 when there was no answer (see error)
  std::string body;   // the response body (at most max_body bytes)
  std::string error;  // why there was no answer: "timed out", a socket error, "response too large", ...
};

struct http_get_options {
  std::chrono::milliseconds timeout{5000};  // for connect, send and receive (name lookup: the resolver's own)
  std::size_t max_body = 16u << 20;
  std::string accept;  // an Accept header, when not empty
};

// GETs `target` ("/lookup?topic=t") from `address` ("host:port", "[::1]:4161" or "http://host:port";
// port 80 when absent). `done` runs exactly once, on the io_context's thread, never inside this call.
void async_http_get(boost::asio::io_context& io, std::string_view address, std::string_view target,
                    const http_get_options& options, std::function<void(http_get_result)> done);

}  // namespace pipekit::net
