#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "pipekit/nsq/connection_settings.hpp"

// nsq-tail as a library: one topic's channel from one or more brokers (given, or found through
// lookupd) to stdout, each message FINished only once its line is safe: written when stdout is a
// file or a terminal; when it is a pipe, consumed by the reader (FIONREAD) and then proven
// processed: the reader consumed later bytes in a later read, or was still there reader_grace
// later. What is not proven when the reader leaves goes back to the broker (REQ).
namespace pipekit::nsq {

enum class tail_format { body, envelope };

struct tail_options {
  std::string topic;
  std::string channel;  // empty: "tail<random digits>#ephemeral"
  std::vector<std::string> nsqd_tcp_addresses;
  std::vector<std::string> lookupd_http_addresses;
  std::chrono::milliseconds lookupd_poll_interval{60000};
  std::size_t max_in_flight = 200;  // RDY, spread across the connections
  std::uint64_t count = 0;          // -n: exit after this many messages (0: never)
  tail_format format = tail_format::body;
  bool binary = false;  // envelope bodies always base64
  std::chrono::milliseconds heartbeat_interval{30000};
  std::chrono::milliseconds msg_timeout{0};  // 0: the broker's default
  std::chrono::milliseconds connect_timeout{5000};
  // A pipe's reader that consumed a line and is still there this much later is taken to have
  // processed it (unless a later read proved it sooner).
  std::chrono::milliseconds reader_grace{1000};
  connection_settings connection;  // compression, AUTH, TLS
  int output_fd = 1;
  // Archive mode (nsq_to_file): lines to files in output_dir instead of stdout, FIN after fsync.
  std::string output_dir;
  std::string filename_format = "<TOPIC>.<HOST><REV>.<DATETIME>.log";
  std::uint64_t rotate_size = 0;                // bytes; 0: no limit
  std::chrono::milliseconds rotate_interval{0};  // 0: no limit
  bool gzip = false;
  std::chrono::milliseconds sync_interval{30000};  // fsync (then FIN) at least this often
};

struct tail_result {
  std::uint64_t received = 0;
  std::uint64_t written = 0;   // lines handed to the output
  std::uint64_t finished = 0;  // FIN sent
  std::uint64_t requeued = 0;  // REQ sent
  std::uint64_t duplicates = 0;  // of those, read by the reader first: it may have processed them
  bool output_closed = false;  // EPIPE
  bool interrupted = false;    // SIGINT/SIGTERM
};

// The channel nsq_tail would pick: "tail" + 6 random digits + "#ephemeral".
std::string ephemeral_channel_name();

// Runs until -n messages were consumed, stdout closed, or a stop signal. Throws fatal_error for
// unusable options (64) and output errors (74).
tail_result tail(const tail_options& options);

}  // namespace pipekit::nsq
