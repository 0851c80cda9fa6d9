// The seed's CallDemo example in C++: deploys CallDemo to the node at ETH_RPC_URL, signed with
// the key in ETH_PRIVATE_KEY, and calls its getter through the bindings abigen-cpp generated
// (calldemo.hpp). Prints the contract's address, then get()'s value, 2020, as the last line.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include <pipekit/eth/contract.hpp>
#include <pipekit/eth/keystore.hpp>

#include "calldemo.hpp"

int main() {
  namespace eth = pipekit::eth;
  const char* url = std::getenv("ETH_RPC_URL");
  if (url == nullptr || *url == '\0') {
    std::fputs("calldemo: set ETH_RPC_URL to the node's URL (e.g. http://127.0.0.1:8545)\n", stderr);
    return 64;
  }
  try {
    eth::rpc_client client({.url = url});
    const eth::signer me = eth::local_signer(eth::load_key_env("ETH_PRIVATE_KEY"));
    const calldemo::CallDemo demo = calldemo::CallDemo::deploy(client, me);
    std::printf("CallDemo deployed at %s\n", demo.addr().hex().c_str());
    const eth::uint256 value = demo.get();
    std::printf("%s\n", value.str().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "calldemo: %s\n", e.what());
    return 1;
  }
}
