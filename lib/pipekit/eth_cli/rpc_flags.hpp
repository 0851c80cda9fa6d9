#pragma once
// --rpc-url (env ETH_RPC_URL, as cast), --rpc-timeout and --max-response-size: the flag group every
// program that talks to a node adds (foundry's RpcOpts), so --rpc-url means the same everywhere.
#include <optional>
#include <string>

#include "pipekit/eth/rpc.hpp"

namespace CLI {
class App;
}

namespace pipekit::eth_cli {

struct rpc_flags {
  std::optional<std::string> url;  // --rpc-url, else $ETH_RPC_URL, else http://127.0.0.1:8545
  std::string timeout = "30s";
  std::string max_response = "256MiB";

  // After parsing: the client's options. fatal_error(64) for a bad --rpc-timeout or
  // --max-response-size.
  eth::rpc_options options() const;
  // A client on options(); a URL it cannot use is fatal_error(64) naming --rpc-url.
  eth::rpc_client connect() const;
};

void add_rpc_flags(CLI::App* sub, rpc_flags& f);

}  // namespace pipekit::eth_cli
