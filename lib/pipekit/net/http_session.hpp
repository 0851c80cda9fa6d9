#pragma once
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

// A blocking HTTP/1.1 client for one origin, http://host[:port] or https://host[:port] (Boost.Beast
// underneath, kept out of this header; TLS with OpenSSL, the system's CA store, SNI and the host
// name checked). The connection is kept alive between requests and opened again, once, when the
// server closed it meanwhile. A request is bounded as a whole (connect, TLS, send, the answer's
// last byte) by its timeout; the name lookup by the resolver's own. A user and password in the
// URL are sent as Basic authorization.
// Not done (libcurl, used before, did): proxies (http_proxy, HTTPS_PROXY, NO_PROXY are not read),
// redirects, compressed answers, HTTP/2, .netrc.
// Not thread-safe: one session per thread. For requests from an event loop see http_client.hpp.
namespace pipekit::net {

struct http_answer {
  int status = 0;
  std::string body;
};

// No answer came; the text says what failed ("connecting: Connection refused", "timed out
// after 500 ms"), not the URL.
struct http_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// The answer's body is larger than max_body (refused at the header when the length is announced).
struct http_body_too_large : http_error {
  using http_error::http_error;
};

struct http_session_options {
  std::chrono::milliseconds timeout{30000};        // of one request
  std::chrono::milliseconds connect_timeout{0};    // of connect and TLS handshake within it; 0: no bound of its own
  std::size_t max_body = 256u << 20;
};

class http_session {
 public:
  // url: http(s)://[user:password@]host[:port][/path[?query]]; throws std::invalid_argument.
  explicit http_session(std::string_view url, http_session_options options = {});
  ~http_session();
  http_session(const http_session&) = delete;
  http_session& operator=(const http_session&) = delete;

  // POSTs body to target ("/pub?topic=t"; empty: the URL's own path and query) and returns the
  // answer, whatever its status. timeout: this request's bound instead of the session's.
  // Throws http_error (http_body_too_large).
  http_answer post(std::string_view target, std::string_view content_type, std::string_view body,
                     std::optional<std::chrono::milliseconds> timeout = std::nullopt);

  // Drops the connection; the next request opens a new one.
  void close();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace pipekit::net
