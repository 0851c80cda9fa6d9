#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "pipekit/eth/error.hpp"

// A JSON-RPC 2.0 client for Ethereum nodes, one connection per client, over
//   http:// https://   net::http_session (Beast), the connection kept alive between requests;
//   ws:// wss://       Boost.Beast WebSocket (TLS with the system's CA store);
//   a socket path      geth's IPC endpoint (a Unix stream socket), also written ipc:///path.
// The same interface for all three: single requests, batches, and (ws/ipc) subscriptions.
// Not thread-safe: one client per thread.
namespace pipekit::eth {

// The node answered with a JSON-RPC error object.
struct rpc_error : std::runtime_error {
  rpc_error(std::int64_t code_, std::string message, nlohmann::json data_)
      : std::runtime_error(std::move(message)), code(code_), data(std::move(data_)) {}
  std::int64_t code;
  nlohmann::json data;  // for reverts: the 0x-hex revert data
};

constexpr std::size_t default_max_response = 256u << 20;
constexpr std::size_t default_max_queued_notifications = 4096;

struct rpc_options {
  std::string url = "http://127.0.0.1:8545";
  std::chrono::milliseconds timeout{30000};  // of one exchange: connect, send, answer
  int retries = 2;  // for idempotent reads only, with backoff, on transport failures
  // Largest answer (or notification) taken from the node, bytes, on every transport; a larger one
  // ends the exchange: error(response_too_large) naming the bound.
  std::size_t max_response = default_max_response;
  // Subscription notifications held while nobody reads them (ws, ipc); beyond, the oldest are
  // dropped, counted and logged.
  std::size_t max_queued_notifications = default_max_queued_notifications;
};

struct rpc_request {
  std::string method;
  nlohmann::json params = nlohmann::json::array();
};

// One answer of a batch: a result, or the node's error for that request.
struct rpc_reply {
  nlohmann::json result;
  std::optional<rpc_error> error;
  bool ok() const { return !error.has_value(); }
};

class rpc_transport;

class rpc_client {
 public:
  // Throws error(invalid_url) for a URL it cannot use. Connects lazily, on the first request.
  explicit rpc_client(rpc_options opts);
  ~rpc_client();
  rpc_client(rpc_client&&) noexcept;
  rpc_client& operator=(rpc_client&&) noexcept;

  // One request; returns its "result". Throws rpc_error for a JSON-RPC error, and error naming
  // the URL when the node cannot be reached (transport) or answers garbage (response,
  // response_too_large): see error.hpp.
  // idempotent: may be retried on a transport failure (reads), never for sends.
  nlohmann::json call(std::string_view method, nlohmann::json params, bool idempotent = true);

  // A JSON-RPC batch: one exchange, answers in request order (matched by id, whatever order
  // the node used). A node error for one request is in its reply; transport failures as call().
  std::vector<rpc_reply> batch(std::span<const rpc_request> requests, bool idempotent = true);

  // ws:// and ipc:// only (else error(invalid_argument)): eth_subscribe with these params (e.g. ["newHeads"]); returns the
  // subscription id. next_notification() waits up to `wait` for the next "eth_subscription"
  // message and returns its params.result, or nullopt on timeout.
  bool supports_subscriptions() const;
  std::string subscribe(nlohmann::json params);
  std::optional<nlohmann::json> next_notification(std::chrono::milliseconds wait);

  const std::string& url() const { return opts_.url; }
  const rpc_options& options() const { return opts_; }

 private:
  std::string exchange(const std::string& body, std::string_view what, bool idempotent);

  rpc_options opts_;
  std::unique_ptr<rpc_transport> transport_;
  std::int64_t next_id_ = 1;
};

// Hex quantity ("0x1a") to a JSON integer (number below 2^53, else a decimal string);
// anything that is not a quantity is returned unchanged.
nlohmann::json quantity_to_json(const nlohmann::json& q);

}  // namespace pipekit::eth
