#pragma once
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "pipekit/redis/client.hpp"

namespace boost::asio {
class io_context;
}

// Where users are connected, kept in Redis for push-route: ws-push nodes write, push-route reads.
//
// Key layout (one key per user, with the user id as a hash tag, so Redis Cluster keeps each
// user's keys on one shard):
//   <prefix>user:{<user>}:nodes   sorted set: member = node id, score = expiry (ms since the
//                                 epoch); the key itself expires with the last entry's TTL
//   <prefix>node:<node id>        string: the node's push address ("127.0.0.1:8081"), with a TTL
//   <prefix>nodes                 sorted set: member = node id, score = expiry (live nodes, for broadcast)
// A route is live while its score is in the future; a node that dies leaves entries that expire.
namespace pipekit::push {

std::string user_nodes_key(std::string_view prefix, std::string_view user);
void append_user_nodes_key(std::string& out, std::string_view prefix, std::string_view user);  // the same, appended
std::string node_key(std::string_view prefix, std::string_view node_id);
std::string nodes_key(std::string_view prefix);

struct routes_options {
  redis::options redis;
  std::string prefix = "pipekit:";
  std::string node_id;       // unique per node
  std::string node_address;  // what push-route calls: this node's push listener
  std::chrono::milliseconds ttl{30000};  // refreshed every ttl/3
};

// This node's routes: users are added on their first connection here and removed on their last;
// every entry is refreshed in one pipelined round trip every ttl/3, and all of them again when
// Redis comes back after an outage. Redis being away never blocks or fails a caller: the state
// shows in ready() and is logged once per outage. Runs on the io_context's thread.
class routes {
 public:
  routes(boost::asio::io_context& io, routes_options opts);
  ~routes();
  routes(const routes&) = delete;
  routes& operator=(const routes&) = delete;

  void start();
  void add_user(const std::string& user);
  void remove_user(const std::string& user);
  // Removes this node's entries (every user's and the node's own), then stops the client;
  // `done` runs once that is answered, failed, or after the client's command deadline.
  void withdraw(std::function<void()> done);
  bool ready() const;  // connected to Redis
  // The node's Redis connection, for other keys of this node's (the message history).
  redis::client& redis();
  std::size_t users() const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

}  // namespace pipekit::push
