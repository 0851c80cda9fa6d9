#pragma once
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "pipekit/nsq/connection_settings.hpp"

// nsq-pub as a library: lines in, messages published to one or more brokers, every line either
// acknowledged (OK from its broker) or reported as a reject with its reason.
namespace pipekit::nsq {

enum class publish_mode { round_robin, failover, all };

struct publish_options {
  std::vector<std::string> inputs;       // files; "-" is stdin; empty: stdin
  std::optional<std::string> message;    // one message instead of the inputs
  std::string topic;                     // required unless topic_pointer is set
  std::string topic_pointer;             // JSON Pointer to the topic in each line
  std::string body_pointer;              // JSON Pointer to the part to publish
  std::vector<std::string> nsqd_tcp_addresses{"127.0.0.1:4150"};
  std::vector<std::string> nsqd_http_addresses;  // nsqd's HTTP API (/mpub?binary=true, /pub): one
                                                 // request at a time each, on a kept-alive connection
  publish_mode mode = publish_mode::round_robin;
  std::size_t batch_size = 200;                    // messages per MPUB
  std::chrono::milliseconds batch_timeout{50};     // a partial batch waits at most this long
  std::size_t in_flight = 8;                       // commands awaiting an answer, per connection
  std::optional<std::chrono::milliseconds> defer;  // DPUB with this delay
  double rate = 0;                                 // messages per second; 0: unlimited
  bool raw = false;                                // publish lines as they are (no JSON check)
  std::string rejects_path;                        // JSON Lines of rejects; empty: log only
  std::chrono::milliseconds retry_timeout{30000};  // give up on a message after this long
  std::chrono::milliseconds connect_timeout{5000};
  connection_settings connection;                  // compression, AUTH, TLS (TCP connections)
  bool stats = false;                              // counts and rate on stderr at the end
  bool progress = false;                           // a progress line on stderr every second
};

struct publish_result {
  std::uint64_t lines = 0;      // read, empty ones included
  std::uint64_t empty = 0;      // skipped
  std::uint64_t published = 0;  // acknowledged by their broker(s)
  std::uint64_t rejected = 0;   // reported with a reason
  std::uint64_t refused = 0;    // of them, for want of permission: AUTH refused or not granted
  bool broker_reached = false;  // some broker answered IDENTIFY
  bool interrupted = false;     // SIGINT/SIGTERM
  int signal = 0;               // a second one, which ended the run at once: its number
  double seconds = 0;
};

// Runs to the end of the input (or a stop signal, after which what was read is still published
// or rejected). Throws fatal_error for unusable options or inputs (64, 66) and read errors (74).
publish_result publish(const publish_options& options);

// The exit status a result calls for: 128 + N after a second signal N; 0; 77 when lines were rejected for want of permission
// (AUTH); else 65 when lines were rejected; 69 when no broker was ever reached and something
// had to be published.
int exit_status(const publish_result& result);

}  // namespace pipekit::nsq
