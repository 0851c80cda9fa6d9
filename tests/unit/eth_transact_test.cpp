// eth::submit / wait_for_receipt / check_receipt (transact.hpp) against a real anvil, without a
// command line: what generated bindings call. Errors come out as eth::error kinds.
#include <chrono>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/transact.hpp"
#include "support/peers.hpp"

namespace pt = pipekit::test;
namespace eth = pipekit::eth;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

eth::signer dev_signer(const pt::anvil_node& n, std::size_t i = 0) {
  eth::signer s;
  s.key.emplace(eth::private_key::from_hex(n.private_keys().at(i)));
  s.from = eth::to_hex(s.key->addr());
  return s;
}

eth::tx_request transfer_to(const std::string& to) {
  eth::tx_request r;
  r.what = "transfer to " + to;
  r.to = eth::parse_address(to);
  return r;
}

template <class F>
eth::error_kind kind_of(F&& f) {
  try {
    f();
  } catch (const eth::error& e) {
    return e.kind();
  }
  FAIL("no eth::error");
  return eth::error_kind::internal;
}

}  // namespace

TEST_CASE("transact: a signed transfer is sent, mined and checked; the wrong chain is refused", "[anvil]") {
  pt::anvil_node n;
  eth::rpc_client c({.url = n.url()});
  const std::string to = n.accounts().at(1);
  const json before = n.rpc("eth_getBalance", json::array({to, "latest"}));

  eth::tx_options o;
  o.value = eth::u256::of(12345);
  SECTION("EIP-1559, local key") {
    json receipt = eth::send_and_wait(c, transfer_to(to), dev_signer(n), o);
    CHECK(receipt["status"] == "0x1");
    CHECK(n.rpc("eth_getBalance", json::array({to, "latest"})) != before);
  }
  SECTION("legacy, the node signs, two confirmations") {
    o.legacy = true;
    eth::signer node_signs;
    node_signs.from = n.dev_account();
    std::string hash = eth::submit(c, transfer_to(to), node_signs, o);
    n.rpc("anvil_mine", json::array({2}));
    json receipt = eth::wait_for_receipt(c, hash, {.confirmations = 2, .timeout = 10s});
    CHECK(receipt["transactionHash"] == hash);
    CHECK_FALSE(eth::failed(receipt));
  }
  SECTION("the wrong chain: nothing sent") {
    o.chain = n.chain_id() + 1;
    CHECK(kind_of([&] { eth::submit(c, transfer_to(to), dev_signer(n), o); }) == eth::error_kind::wrong_chain);
    CHECK(n.rpc("eth_getBalance", json::array({to, "latest"})) == before);
  }
}

TEST_CASE("transact: no receipt in time is a timeout naming the hash", "[anvil]") {
  pt::anvil_node n;
  eth::rpc_client c({.url = n.url()});
  const std::string unknown = "0x" + std::string(64, 'a');
  try {
    eth::wait_for_receipt(c, unknown, {.confirmations = 1, .timeout = 200ms});
    FAIL("no error");
  } catch (const eth::error& e) {
    CHECK(e.kind() == eth::error_kind::timeout);
    CHECK(e.subject() == unknown);
    CHECK_THAT(e.what(), Catch::Contains("no receipt within 200ms"));
  }
}
