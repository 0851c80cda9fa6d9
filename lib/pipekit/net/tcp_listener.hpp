#pragma once
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
// Throws pipekit::fatal_error (exit_code::usage, the one exit code for a bad address) when it
// cannot be read; the message starts with name (the flag) and the address.
boost::asio::ip::tcp::endpoint parse_listen_address(std::string_view address,
                                                    std::string_view name = "listen address");

// "127.0.0.1:4160", "[::1]:4160".
std::string to_string(const boost::asio::ip::tcp::endpoint& endpoint);

class tcp_listener {
 public:
  using accept_handler = std::function<void(boost::asio::ip::tcp::socket)>;

  // Binds and listens at once (so port() is known on return), then accepts on io's thread.
  // Throws pipekit::fatal_error (see parse_listen_address; exit_code::unavailable when the address
  // cannot be bound), its message starting with name (the flag) and the address.
  // Accept errors (EMFILE, ...) never end the loop: accepting pauses 100 ms and retries; the first
  // failure is logged, then a summary at most every 10 s, and a line once accepting works again.
  tcp_listener(boost::asio::io_context& io, std::string_view address, accept_handler on_accept,
               std::string_view name = "listen address");
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
