#pragma once
#include <chrono>
#include <cstddef>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

// An asynchronous Redis client on an io_context, for daemons that must never block their event
// loop on Redis (ws-push's routes, push-route's look-ups). hiredis parses the replies (its reader);
// commands are written in the protocol's request form (RESP arrays of bulk strings, as hiredis's
// redisFormatCommandArgv writes them, without its printf pass and its allocation per command); the
// socket, the deadlines and the reconnecting are Asio's, so no Redis call ever blocks and every
// wait has a deadline.
//
// Threading: a client lives on one io_context; every member is called on that io_context's thread,
// and every callback runs there, never inside the call that queued it.
namespace pipekit::redis {

// One reply, as Redis sent it.
struct reply {
  enum class kind : unsigned char { nil, string, status, error, integer, array };
  kind type = kind::nil;
  long long integer = 0;
  std::string str;             // string, status and error replies
  std::vector<reply> elements; // array replies

  bool is_error() const { return type == kind::error; }
};

// What a command came to: a reply, or why there is none (error not empty: "unavailable",
// "timed out", "connection lost", "protocol error: ...", "stopped"). An error *reply* from
// Redis (WRONGTYPE ...) is a reply of kind error with an empty `error` here.
struct result {
  std::string error;
  reply value;

  bool ok() const { return error.empty(); }
};

// Commands for client::pipeline(), written in the protocol's form as they are added: a batch of
// thousands of commands is one buffer, not a vector of strings each.
class commands {
 public:
  // REQUIRES: args is not empty (Redis answers nothing to an empty array: every later reply of
  // the connection would go to the command before it).
  void add(std::initializer_list<std::string_view> args);
  void add(const std::vector<std::string>& args);
  std::size_t size() const { return ends_.size(); }
  bool empty() const { return ends_.empty(); }
  // The bytes sent for the commands added so far.
  std::string_view resp() const { return resp_; }

 private:
  friend class client;
  std::string resp_;
  std::vector<std::size_t> ends_;  // where each command ends in resp_
};

struct options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  std::string username;  // ACL user (Redis 6+); empty: AUTH with the password alone
  std::string password;  // empty: no AUTH
  int db = 0;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds command_timeout{2000};  // a reply later than this fails the connection
  std::chrono::milliseconds reconnect_min{100};     // backoff between attempts, doubling to
  std::chrono::milliseconds reconnect_max{5000};    // this bound
  std::size_t max_reply_size = 64u << 20;  // bytes buffered for one unfinished reply
  long long max_reply_elements = 1 << 20;  // array elements in one reply, nested ones included
  std::size_t max_pending = 100000;        // commands awaiting replies; more fail "overloaded"
};

// redis://[[user]:password@]host[:port][/db]. Throws std::invalid_argument naming what is wrong.
options parse_url(std::string_view url);
// The URL without its password (for logs).
std::string describe(const options& opts);

class client {
 public:
  using callback = std::function<void(result)>;
  using state_callback = std::function<void(bool up)>;

  client(boost::asio::io_context& io, options opts);
  ~client();  // stop(), without calling the on_state callback (what it uses may be gone already)
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  // Called with true each time a connection is ready (after AUTH and SELECT), with false once
  // when a ready connection is lost. Set before start().
  void on_state(state_callback cb);
  // Connects, and keeps reconnecting with backoff until stop().
  void start();
  // Fails every pending command with "stopped" and closes. Safe to call twice.
  void stop();
  bool ready() const;

  // Sends one command (arguments as Redis takes them, binary-safe). `done` runs once: with the
  // reply, or at once with "unavailable" when no connection is ready (the caller decides whether
  // to retry; nothing is queued while Redis is away), or with an error when the connection fails.
  void command(std::vector<std::string> args, callback done);
  // Sends several commands in one write; `done` gets one result per command, in order.
  void pipeline(std::vector<std::vector<std::string>> cmds,
                std::function<void(std::vector<result>)> done);
  // The same for commands written as they were added; cheaper for big batches.
  void pipeline(commands cmds, std::function<void(std::vector<result>)> done);

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace pipekit::redis
