// Prints the chain id of the node at ETH_RPC_URL, as a decimal number: the installed library
// (headers, libpipekit.a and what it links) without generated bindings.
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "pipekit/eth/rpc.hpp"

int main() {
  const char* url = std::getenv("ETH_RPC_URL");
  if (url == nullptr || *url == '\0') {
    std::fputs("chainid: ETH_RPC_URL is not set\n", stderr);
    return 64;
  }
  try {
    pipekit::eth::rpc_client client({.url = url});
    const auto id = client.call("eth_chainId", nlohmann::json::array());
    std::printf("%llu\n", std::stoull(id.get<std::string>(), nullptr, 16));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chainid: %s\n", e.what());
    return 1;
  }
}
