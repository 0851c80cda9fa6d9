#pragma once
#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "pipekit/push/history.hpp"
#include "pipekit/redis/client.hpp"

// push-route, as a library: reads push messages as JSON Lines, looks each user's live ws-push
// nodes up in Redis (the key layout of routes.hpp) and forwards the messages to those nodes'
// POST /push in batches; what it could not deliver comes out as JSON records with a reason.
// cmd/push-route parses flags into router_options and calls run_router().
namespace pipekit::push {

struct router_options {
  std::vector<std::string> inputs{"-"};  // files of JSON Lines, "-" for stdin, read in order
  redis::options redis;
  std::string prefix = "pipekit:";
  // Where a message's parts are. Empty pointers: the push message shape
  // {"user"|"users"|"broadcast", "data", "id"}. With user_pointer: the user is there (a string or
  // an integer) and data is data_pointer's value, or the whole line when that is empty.
  std::string user_pointer;
  std::string data_pointer;
  std::string id_pointer;
  bool user_lower = false;       // --user-case lower: user ids lower-cased (Ethereum addresses)
  std::size_t concurrency = 1;   // requests in flight per node; 1 keeps each user's messages in order
  std::size_t batch_max = 500;   // messages in one request to a node
  std::chrono::milliseconds timeout{5000};   // one request to a node
  std::size_t max_pending = 10000;           // messages read ahead and not yet finished
  std::string push_token;                    // sent as "Authorization: Bearer" to the nodes
  history_options history;                   // each user's messages appended to their stream first
  std::string undelivered = "-";             // where undelivered records go ("-": stdout)
  std::string delivered;                     // where delivered records go ("": nowhere)
  bool stats = false;                        // a summary on stderr at exit (always on SIGUSR1)
};

// Runs until the end of input (or SIGINT/SIGTERM: stops reading, finishes what is in flight,
// reports the rest as undelivered). Returns 0, 65 when an input line was not a push message
// (each one reported), 74 when undelivered records could not be written.
int run_router(const router_options& opts);

}  // namespace pipekit::push
