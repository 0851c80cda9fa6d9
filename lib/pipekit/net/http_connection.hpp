#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "pipekit/net/http_client.hpp"  // http_result

namespace boost::asio {
class io_context;
}

// One kept-alive HTTP/1.1 connection to one server, for daemons that send a stream of requests to
// the same peer from their event loop (push-route POSTing batches to a ws-push node). Beast
// underneath, kept out of this header.
//
// One request at a time per connection (the caller keeps several connections for concurrency).
// The connection is opened on the first request, kept while the server keeps it, and reopened
// for the next request when the server closed it or it sat idle longer than reuse_idle (so a
// request never races a server's keep-alive timeout). A request is never retried here: whether
// a failed POST had reached the server is the caller's question.
//
// Threading: every member is called on the io_context's thread; callbacks run there, never
// inside the call that made the request.
namespace pipekit::net {

struct http_connection_options {
  std::chrono::milliseconds timeout{5000};      // connect, send and receive of one request
  std::chrono::milliseconds reuse_idle{2000};   // an idle connection older than this is reopened
  std::size_t max_body = 64u << 20;             // the largest answer taken
  std::string authorization;                    // an Authorization header's value, when not empty
};

class http_connection {
 public:
  // address: "host:port", "[::1]:8081" or "http://host:port".
  http_connection(boost::asio::io_context& io, std::string address, http_connection_options opts);
  ~http_connection();  // close()
  http_connection(const http_connection&) = delete;
  http_connection& operator=(const http_connection&) = delete;

  // REQUIRES: !busy(). `done` runs exactly once.
  void post(std::string target, std::string body, std::string content_type, std::function<void(http_result)> done);
  bool busy() const;
  // Closes the socket; a request in flight fails with "closed".
  void close();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace pipekit::net
