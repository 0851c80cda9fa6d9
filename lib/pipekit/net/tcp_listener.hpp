#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

// The accept loop every daemon shares: bind "host:port", hand each accepted socket to a callback.
namespace pipekit::net {

// Every daemon's listen addresses: "host:port", "[::1]:port", "localhost:0" or ":port" (every
// interface) -> an endpoint; port 0 lets the kernel pick. Host names are resolved (first address).
// Throws pipekit::option_error (kind usage, the one exit code for a bad address) when it cannot
// be read, naming `option` (the daemon's option, tcp_address: a program shows its flag) and the
// address.
boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view address, std::string_view option = "listen");

// "127.0.0.1:4160", "[::1]:4160".
std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint);

// The default of a daemon's --max-connections: the soft file descriptor limit (ulimit -n) less a
// reserve for files, listeners and HTTP (a tenth, at least 64), so clients that hold connections
// are refused before the daemon runs out of descriptors: 922 with the usual limit of 1024.
std::size_t default_max_connections();

// Refuses a connection past --max-connections: writes farewell (what the client may read, e.g. an
// error frame), ends the connection and logs the first refusal, then a summary at most every 10 s.
class connection_refuser {
 public:
  void refuse(boost::asio::ip::tcp::socket socket, std::int64_t limit, std::string_view farewell = {});
  std::uint64_t count() const noexcept { return count_; }

 private:
  std::uint64_t count_ = 0;
  std::uint64_t reported_ = 0;
  std::chrono::steady_clock::time_point reported_at_{};
};

class tcp_listener {
 public:
  using accept_handler = std::function<void(boost::asio::ip::tcp::socket)>;

  // Binds and listens at once (so port() is known on return), then accepts on io's thread.
  // Throws pipekit::option_error (see parse_listen_address; kind unavailable when the address
  // cannot be bound) naming `option` and the address.
  // Accept errors (EMFILE, ...) never end the loop: accepting pauses 100 ms and retries; the first
  // failure is logged, then a summary at most every 10 s, and a line once accepting works again.
  tcp_listener(boost::asio::io_context& io, std::string_view address, accept_handler on_accept,
               std::string_view option = "listen");
  ~tcp_listener();
  tcp_listener(const tcp_listener&) = delete;
  tcp_listener& operator=(const tcp_listener&) = delete;

  boost::asio::ip::tcp::endpoint local_endpoint() const;
  std::uint16_t port() const;
  // Stops accepting; connections already handed out are the caller's. Safe to call twice.
  void close();

  struct state;

 private:
  std::shared_ptr<state> state_;
};

}  // namespace pipekit::net
