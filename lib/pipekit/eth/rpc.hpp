#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

// A JSON-RPC client for Ethereum nodes. Transport so far: HTTP(S) through libcurl, one
// kept-alive connection per client. (WebSocket and IPC come with issue 3's next steps.)
namespace pipekit::eth {

// The node answered with a JSON-RPC error object.
struct rpc_error : std::runtime_error {
  rpc_error(std::int64_t code_, std::string message, nlohmann::json data_)
      : std::runtime_error(std::move(message)), code(code_), data(std::move(data_)) {}
  std::int64_t code;
  nlohmann::json data;  // for reverts: the 0x-hex revert data
};

struct rpc_options {
  std::string url = "http://127.0.0.1:8545";
  std::chrono::milliseconds timeout{30000};
  int retries = 2;  // for idempotent reads only, with backoff, on transport failures
};

class rpc_client {
 public:
  // Throws fatal_error(64) for a URL it cannot use.
  explicit rpc_client(rpc_options opts);
  ~rpc_client();
  rpc_client(const rpc_client&) = delete;
  rpc_client& operator=(const rpc_client&) = delete;

  // One request; returns its "result". Throws rpc_error for a JSON-RPC error, and
  // fatal_error(69) naming the URL when the node cannot be reached or answers garbage.
  // idempotent: may be retried on a transport failure (reads), never for sends.
  nlohmann::json call(std::string_view method, nlohmann::json params, bool idempotent = true);

  const std::string& url() const { return opts_.url; }

 private:
  std::string post(const std::string& body, bool idempotent);

  rpc_options opts_;
  void* curl_ = nullptr;
  std::int64_t next_id_ = 1;
};

// Hex quantity ("0x1a") to a JSON integer (number below 2^53, else a decimal string);
// anything that is not a quantity is returned unchanged.
nlohmann::json quantity_to_json(const nlohmann::json& q);

}  // namespace pipekit::eth
