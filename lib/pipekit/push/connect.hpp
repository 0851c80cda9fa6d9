#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "pipekit/net/tls_options.hpp"

// `ws-push connect`: a terminal client for a push node. It logs in, prints each message it receives
// as one JSON line on stdout, and reconnects with backoff when the connection is lost.
namespace pipekit::push {

struct connect_options {
  std::string url;    // ws://host:port/path or wss://
  net::tls_client_options tls;  // wss://: root_ca_file (empty: the system's), insecure_skip_verify, min_version
  std::string token;  // the JWT to log in with
  std::uint64_t count = 0;  // -n: exit after this many messages (0: no limit)
  std::string since;        // the first login's "since"; reconnects log in with the last id seen
  std::chrono::milliseconds timeout{10000};         // connect, handshake and login
  std::chrono::milliseconds reconnect_max{30000};   // backoff cap (it starts at 500 ms)
};

// Returns the exit status: 0 after -n messages, SIGTERM, or a closed stdout; 130 on SIGINT;
// 77 when the node refuses the token (close 4001 or 4003: retrying cannot help); 69 when its TLS
// certificate does not verify; 64 for a URL it cannot use.
int connect(const connect_options& opts);

}  // namespace pipekit::push
