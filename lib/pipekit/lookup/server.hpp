#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "pipekit/lookup/protocol.hpp"

namespace boost::asio {
class io_context;
}

// lookupd, an nsqlookupd-compatible discovery daemon, as a library: tests start it in-process on
// port 0; cmd/lookupd only parses flags into options and calls run().
namespace pipekit::lookup {

struct options {
  std::string tcp_address = "127.0.0.1:4160";   // brokers (nsqd's --lookupd-tcp-address)
  std::string http_address = "127.0.0.1:4161";  // consumers and administration
  std::string broadcast_address;                // what IDENTIFY answers; "" is the host name
  std::chrono::milliseconds inactive_producer_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds tombstone_lifetime = std::chrono::seconds(45);
  // TCP connections served at once; more are closed at once, with a log line. -1: from the file
  // descriptor limit (net::default_max_connections); 0: no limit.
  std::int64_t max_connections = -1;
  // Not flags: a command (or the magic) once begun must be complete within command_timeout from its
  // first byte, and
  // an IDENTIFY body may be at most max_body bytes; a connection silent for longer than
  // inactive_producer_timeout is closed (brokers PING every 15 s).
  std::chrono::milliseconds command_timeout = std::chrono::seconds(10);
  std::size_t max_body = default_max_body;
};

// Both listeners are bound in the constructor (throws pipekit::fatal_error when one cannot be);
// everything then runs on io's thread. Run io on one thread.
class server {
 public:
  server(boost::asio::io_context& io, options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint16_t tcp_port() const;
  std::uint16_t http_port() const;
  std::string tcp_address() const;   // as bound: "127.0.0.1:4160"
  std::string http_address() const;
  // No connection left (after stop(): every close has run to its end).
  bool idle() const;
  // Stops listening and closes every connection (brokers' registrations go with them).
  void stop();

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// The daemon: binds, logs where it listens, serves until SIGINT or SIGTERM, returns 0.
int run(const options& opts);

}  // namespace pipekit::lookup
