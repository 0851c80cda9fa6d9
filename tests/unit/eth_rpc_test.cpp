// eth::rpc_client against a real anvil, over HTTP, WebSocket and IPC: single calls, batches,
// errors, subscriptions, and what happens when the node stops answering.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/rpc.hpp"
#include "support/peers.hpp"

namespace pt = pipekit::test;
namespace eth = pipekit::eth;
using nlohmann::json;
using namespace std::chrono_literals;

namespace {

pt::anvil_node& node() {
  static pt::anvil_node n([] {
    pt::anvil_node::options o;
    o.ipc = true;
    return o;
  }());
  return n;
}

std::vector<std::string> urls() {
  auto& n = node();
  return {n.url(), "ws://127.0.0.1:" + std::to_string(n.port()), n.ipc_path().string(),
          "ipc://" + n.ipc_path().string()};
}

// Every thread of pid is in state T (stopped), as /proc shows it.
bool all_threads_stopped(pid_t pid) {
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& t : std::filesystem::directory_iterator(tasks)) {
    std::ifstream stat(t.path() / "stat");
    std::string line;
    std::getline(stat, line);
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || line.compare(paren, 3, ") T") != 0) return false;
  }
  return true;
}

eth::rpc_client client(const std::string& url, std::chrono::milliseconds timeout = 10s) {
  eth::rpc_options o;
  o.url = url;
  o.timeout = timeout;
  return eth::rpc_client(o);
}

}  // namespace

TEST_CASE("rpc_client: calls, errors and batches over http, ws and ipc", "[anvil]") {
  for (const auto& url : urls()) {
    INFO(url);
    auto c = client(url);
    CHECK(c.call("eth_chainId", json::array()) == "0x7a69");
    // The connection is reused: a second call on the same client.
    CHECK(c.call("eth_accounts", json::array())[0] == node().dev_account());

    try {
      c.call("eth_getBalance", json::array({"not an address", "latest"}));
      FAIL("no rpc_error");
    } catch (const eth::rpc_error& e) {
      CHECK(e.code == -32602);
    }

    std::vector<eth::rpc_request> reqs = {
        {"eth_chainId", json::array()},
        {"eth_nope", json::array()},
        {"eth_getBalance", json::array({node().dev_account(), "latest"})},
    };
    auto replies = c.batch(reqs);
    REQUIRE(replies.size() == 3);
    CHECK(replies[0].ok());
    CHECK(replies[0].result == "0x7a69");
    REQUIRE_FALSE(replies[1].ok());
    CHECK(replies[1].error->code < 0);  // method not found (anvil: -32601 over HTTP, -32602 on streams)
    CHECK(replies[2].ok());
    CHECK(replies[2].result.is_string());
    CHECK(c.batch({}).empty());
  }
}

TEST_CASE("rpc_client: a batch of 1000 answers in request order", "[anvil]") {
  for (const auto& url : urls()) {
    INFO(url);
    auto c = client(url);
    std::vector<eth::rpc_request> reqs;
    for (int i = 0; i < 1000; ++i) reqs.push_back({"eth_getBlockByNumber", json::array({i % 2 ? "latest" : "earliest", false})});
    auto replies = c.batch(reqs);
    REQUIRE(replies.size() == 1000);
    for (int i = 0; i < 1000; ++i) {
      REQUIRE(replies[i].ok());
      if (i % 2 == 0) REQUIRE(replies[i].result["number"] == "0x0");
    }
  }
}

TEST_CASE("rpc_client: subscriptions over ws and ipc; http says it has none", "[anvil]") {
  CHECK_FALSE(client(node().url()).supports_subscriptions());
  for (const auto& url : {urls()[1], urls()[2]}) {
    INFO(url);
    auto c = client(url);
    REQUIRE(c.supports_subscriptions());
    std::string id = c.subscribe(json::array({"newHeads"}));
    CHECK(id.starts_with("0x"));
    // Nothing yet: the wait times out and the stream stays usable.
    CHECK_FALSE(c.next_notification(100ms).has_value());
    auto start = c.call("eth_blockNumber", json::array());
    node().rpc("anvil_mine", json::array({"0x2"}));
    std::vector<json> heads;
    while (heads.size() < 2) {
      auto n = c.next_notification(10s);
      REQUIRE(n.has_value());
      heads.push_back(*n);
    }
    CHECK(std::stoull(heads[1]["number"].get<std::string>(), nullptr, 16) ==
          std::stoull(start.get<std::string>(), nullptr, 16) + 2);
    // Requests still work between notifications, and notifications that arrive during a
    // request are kept for later.
    node().rpc("anvil_mine", json::array({"0x1"}));
    CHECK(c.call("eth_chainId", json::array()) == "0x7a69");
    auto n = c.next_notification(10s);
    REQUIRE(n.has_value());
    CHECK((*n)["number"].is_string());
  }
}

TEST_CASE("rpc_client: a node that stops answering is a transport error, and the client recovers", "[anvil]") {
  for (const auto& url : urls()) {
    INFO(url);
    auto c = client(url, 300ms);
    CHECK(c.call("eth_chainId", json::array()) == "0x7a69");
    REQUIRE(::kill(node().pid(), SIGSTOP) == 0);
    // kill() returns before every thread of the node has stopped: wait until they all have.
    pt::wait_until([] { return all_threads_stopped(node().pid()); }, 10s, "anvil's threads to stop after SIGSTOP");
    std::optional<pipekit::eth::error_kind> kind;
    std::string what;
    try {
      auto r = c.call("eth_blockNumber", json::array());
      what = "answered " + r.dump();
    } catch (const pipekit::eth::error& e) {
      kind = e.kind();
      what = e.what();
    }
    REQUIRE(::kill(node().pid(), SIGCONT) == 0);
    CAPTURE(what);
    CHECK(kind == pipekit::eth::error_kind::transport);
    CHECK(what.find(url) != std::string::npos);
    CHECK(what.find("timed out") != std::string::npos);
    // The same client reconnects and carries on.
    CHECK(c.call("eth_chainId", json::array()) == "0x7a69");
  }
}

TEST_CASE("rpc_client: refused connections and bad URLs", "[anvil]") {
  auto port = pt::free_port();
  for (std::string url : {"http://127.0.0.1:" + std::to_string(port), "ws://127.0.0.1:" + std::to_string(port),
                          std::string("/nonexistent/pipekit.ipc")}) {
    INFO(url);
    auto c = client(url);
    try {
      c.call("eth_chainId", json::array());
      FAIL("no error");
    } catch (const pipekit::eth::error& e) {
      CHECK(e.kind() == pipekit::eth::error_kind::transport);
      CHECK(std::string(e.what()).find(url) != std::string::npos);
    }
  }
  try {
    client("ftp://127.0.0.1/");
    FAIL("no error");
  } catch (const pipekit::eth::error& e) {
    CHECK(e.kind() == pipekit::eth::error_kind::invalid_url);
  }
}

TEST_CASE("rpc_client: notifications nobody reads are bounded; the oldest go (a stand-in node floods them)", "[rpc]") {
  // A stand-in node (tests/tools/eth_rpc_standin.mjs): anvil cannot be made to send 3000
  // notifications between a request and its answer.
  pt::child_process standin("node", {(pt::node_modules_dir().parent_path() / "tools" / "eth_rpc_standin.mjs").string(),
                                     "--flood", "3000"});
  std::string port;
  pt::wait_until([&] {
    std::ifstream f(standin.stdout_path());
    return std::getline(f, port) && !port.empty();
  }, 30s, "the stand-in node's port", standin);
  eth::rpc_options o;
  o.url = "ws://127.0.0.1:" + port;
  o.timeout = 20s;
  o.max_queued_notifications = 100;
  eth::rpc_client c(o);
  CHECK(c.subscribe(json::array({"newHeads"})) == "0x1");
  CHECK(c.call("eth_blockNumber", json::array()) == "0x1");  // after 3000 notifications
  auto first = c.next_notification(0ms);
  REQUIRE(first);
  CHECK((*first)["number"] == "0xb54");  // 3000 - 100: the newest 100 were kept
  int held = 1;
  while (c.next_notification(0ms)) ++held;
  CHECK(held == 100);
}
