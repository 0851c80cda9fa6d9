#pragma once
// Inside rpc_client: how one JSON-RPC exchange travels. Not part of the public interface.
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "pipekit/eth/rpc.hpp"

namespace pipekit::eth {

// The exchange failed on the way (refused, reset, timed out, garbled): the client may retry
// an idempotent request on a fresh connection. The message names what failed, not the URL.
struct transport_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The TLS handshake failed on OpenSSL's verdict: a certificate that does not verify or is not
// the host's, an alert from the server, a server that does not speak TLS. Not retried (it would
// fail again).
struct tls_refused : transport_error {
  using transport_error::transport_error;
};

// The answer is larger than rpc_options::max_response: not retried (it would be again).
struct response_too_large : transport_error {
  using transport_error::transport_error;
};

class rpc_transport {
 public:
  virtual ~rpc_transport() = default;
  // Sends one request or batch and returns the answer's text. Throws transport_error.
  virtual std::string exchange(const std::string& body) = 0;
  // Streams (ws, ipc) carry subscription notifications between answers.
  virtual bool streams() const { return false; }
  // The next notification's text, waiting up to `wait`; nullopt when none came.
  virtual std::optional<std::string> next_notification(std::chrono::milliseconds /*wait*/) { return std::nullopt; }
  // Drops the connection after a failure; the next exchange reconnects.
  virtual void reset() {}
};

std::unique_ptr<rpc_transport> make_http_transport(const rpc_options& opts);    // rpc.cpp
std::unique_ptr<rpc_transport> make_stream_transport(const rpc_options& opts);  // rpc_stream.cpp: ws, wss, ipc

}  // namespace pipekit::eth
