#pragma once
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pipekit/net/tls_options.hpp"
#include "pipekit/push/auth_service.hpp"
#include "pipekit/push/history.hpp"
#include "pipekit/push/jwt.hpp"
#include "pipekit/push/routes.hpp"

namespace boost::asio {
class io_context;
}

// ws-push, a WebSocket push node, as a library: tests start it in-process on port 0; cmd/ws-push
// parses flags into options and calls run(). The wire protocol is docs/push-protocol.md.
namespace pipekit::push {

// Close codes sent to clients (docs/push-protocol.md).
namespace close_code {
constexpr std::uint16_t going_away = 1001;       // the node shuts down
constexpr std::uint16_t policy = 1008;           // repeated messages that are not the protocol
constexpr std::uint16_t too_big = 1009;          // a message over --max-message-size
constexpr std::uint16_t try_again_later = 1013;  // the auth service gave no answer: not the token's fault
constexpr std::uint16_t unauthorized = 4001;     // the token was refused (the log says why)
constexpr std::uint16_t login_timeout = 4002;    // no login within --login-timeout
constexpr std::uint16_t token_expired = 4003;    // the token expired and no fresh login came
constexpr std::uint16_t idle = 4004;             // no message within --idle-timeout
constexpr std::uint16_t slow_consumer = 4008;    // the send queue overflowed
}  // namespace close_code

struct options {
  std::string listen = "127.0.0.1:8080";       // WebSocket clients
  std::string path = "/ws";
  net::tls_server_options tls;                 // cert_file and key_file set: the listener serves wss://
  std::string push_listen = "127.0.0.1:8081";  // POST /push, /stats, /metrics, /healthz
  std::vector<std::string> allowed_origins;    // exact or "*.example.com"; empty: same host only
  bool allow_query_token = false;              // ?token= on the upgrade URL
  std::size_t max_connections = 10000;
  std::chrono::milliseconds handshake_timeout{10000};
  std::chrono::milliseconds login_timeout{10000};
  std::chrono::milliseconds ping_interval{25000};  // a ping after this long without a frame
  std::chrono::milliseconds pong_timeout{10000};   // dropped when no frame follows a ping this long
  std::chrono::milliseconds idle_timeout{0};       // closed (4004) after this long without a message; 0 off
  std::size_t max_message_size = 4096;             // what a client may send in one message
  std::size_t send_queue_bytes = 1u << 20;         // queued for one connection; more = slow consumer
  std::size_t max_push_body = 16u << 20;           // one POST /push body
  std::string push_token;                          // when set, /push wants "Authorization: Bearer" with it
  std::optional<jwt_options> jwt;                  // how tokens are verified: a JWT key,
  std::optional<auth_service_options> auth;        // or an auth service (exactly one)
  std::optional<routes_options> routes;            // Redis routes; none: a single node
  history_options history;                         // with routes: each user's messages kept in Redis
  std::size_t replay_on_login = 0;                 // a login without "since" first gets the last N
  std::chrono::milliseconds drain_timeout{5000};
  std::string input;  // --stdin: "-" (or a file) of push messages, answers on stdout; "" none
};

class server {
 public:
  // Binds both listeners (throws pipekit::fatal_error when one cannot be) and, with routes,
  // starts the Redis client. Everything runs on io's thread: run io on one thread.
  server(boost::asio::io_context& io, options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint16_t port() const;       // the WebSocket listener
  std::uint16_t push_port() const;  // the push API
  std::string address() const;
  std::string push_address() const;

  // Stops accepting, withdraws this node's routes from Redis, closes every client with 1001;
  // `done` runs when every connection is gone or the drain timeout passed.
  void drain(std::function<void()> done);

  // Delivers JSON Lines of push messages as POST /push does (storing them in the users' history
  // first, when there is one) and hands `done` the answers (one line each, "line" counted from
  // first_line) and the number of lines that were not messages. Messages are delivered in the
  // order of the calls. REQUIRES: called on the io_context's thread; `done` runs there later.
  void deliver_lines(std::string_view lines, std::uint64_t first_line,
                     std::function<void(std::string answers, std::size_t invalid)> done);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// The daemon: binds, serves until SIGINT or SIGTERM, drains, returns 0.
int run(const options& opts);

}  // namespace pipekit::push
