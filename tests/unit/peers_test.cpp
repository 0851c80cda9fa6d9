// The peer fixtures themselves: each starts a real process, is talked to for real, and leaves
// nothing behind (no process, no listener, no directory).
#include "support/peers.hpp"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

namespace pt = pipekit::test;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

bool process_gone(pid_t pid) { return ::kill(pid, 0) == -1 && errno == ESRCH; }

// Gone, or a zombie that only its (new) parent can reap.
bool not_running(pid_t pid) {
  if (process_gone(pid)) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const auto paren = line.rfind(')');
  return line.empty() || (paren != std::string::npos && line.compare(paren, 3, ") Z") == 0);
}

// One command on a fresh hiredis connection; returns the reply as text (status, string, integer,
// or an array of strings joined by newlines).
std::string redis_command(const pt::redis_server& srv, const char* fmt, const char* a = nullptr,
                          const char* b = nullptr) {
  redisContext* ctx = redisConnectWithTimeout(srv.host().c_str(), srv.port(), timeval{2, 0});
  REQUIRE(ctx != nullptr);
  INFO("hiredis: " << ctx->errstr);
  REQUIRE(ctx->err == 0);
  auto* reply = static_cast<redisReply*>(redisCommand(ctx, fmt, a, b));
  REQUIRE(reply != nullptr);
  std::string out;
  if (reply->type == REDIS_REPLY_INTEGER)
    out = std::to_string(reply->integer);
  else if (reply->type == REDIS_REPLY_NIL)
    out = "(nil)";
  else if (reply->type == REDIS_REPLY_ARRAY)
    for (std::size_t i = 0; i < reply->elements; ++i)
      out.append(reply->element[i]->str, reply->element[i]->len).append(i + 1 < reply->elements ? "\n" : "");
  else if (reply->str != nullptr)
    out.assign(reply->str, reply->len);
  freeReplyObject(reply);
  redisFree(ctx);
  return out;
}

}  // namespace

TEST_CASE("free_port returns a bindable loopback port", "[peers]") {
  const auto a = pt::free_port();
  CHECK(a > 0);
  CHECK(pt::port_is_free(a));
}

TEST_CASE("temp_dir is created and removed", "[peers]") {
  fs::path p;
  {
    pt::temp_dir d("pipekit-peers-test");
    p = d.path();
    REQUIRE(fs::is_directory(p));
    std::ofstream(p / "f.txt") << "x";
    fs::create_directories(p / "a" / "b");
  }
  CHECK_FALSE(fs::exists(p));
}

TEST_CASE("child_process captures output, passes env, and is stopped by its destructor", "[peers]") {
  pid_t pid = -1;
  fs::path dir;
  {
    pt::child_process::options opts;
    opts.env = {"PIPEKIT_PEERS_TEST=hello"};
    pt::child_process child("/bin/sh", {"-c", "echo out:$PIPEKIT_PEERS_TEST; echo err >&2; exec sleep 60"}, opts);
    pid = child.pid();
    dir = child.dir();
    REQUIRE(pid > 0);
    CHECK(::getpgid(pid) == pid);  // leader of its own process group
    pt::wait_until([&] { return child.stderr_tail().find("err") != std::string::npos; }, 5s, "stderr line", child);
    pt::wait_until([&] { return child.stdout_tail() == "out:hello\n"; }, 5s, "stdout line", child);
    CHECK(child.running());
  }
  CHECK(process_gone(pid));
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("child_process SIGKILLs a child that ignores SIGTERM, and its whole group", "[peers]") {
  pid_t pid = -1;
  pid_t grandchild = -1;
  {
    pt::child_process::options opts;
    opts.stop_deadline = 300ms;
    // The shell ignores TERM and starts a grandchild in the same group that ignores it too.
    pt::child_process child("/bin/sh", {"-c", "trap '' TERM; sh -c \"trap '' TERM; echo \\$\\$; exec sleep 60\" & wait"},
                            opts);
    pid = child.pid();
    pt::wait_until([&] { return !child.stdout_tail().empty() && child.stdout_tail().back() == '\n'; }, 5s,
                   "grandchild pid", child);
    grandchild = std::stoi(child.stdout_tail());
    REQUIRE(::getpgid(grandchild) == pid);
  }
  CHECK(process_gone(pid));
  // The grandchild was re-parented (to init or a subreaper); once SIGKILLed it is gone or a zombie
  // waiting for its new parent, never still running.
  pt::wait_until([&] { return not_running(grandchild); }, 5s, "grandchild to die");
}

TEST_CASE("wait_until reports what it waited for and the child's stderr", "[peers]") {
  SECTION("deadline") {
    pt::child_process child("/bin/sh", {"-c", "echo something-went-wrong >&2; exec sleep 60"});
    pt::wait_until([&] { return !child.stderr_tail().empty(); }, 5s, "stderr", child);
    try {
      pt::wait_until([] { return false; }, 50ms, "the impossible", child);
      FAIL("wait_until did not throw");
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("timed out after 50 ms waiting for the impossible") != std::string::npos);
      CHECK(msg.find("something-went-wrong") != std::string::npos);
    }
  }
  SECTION("child exits first") {
    pt::child_process child("/bin/sh", {"-c", "echo dying >&2; exit 3"});
    try {
      pt::wait_until([] { return false; }, 10s, "a port", child);
      FAIL("wait_until did not throw");
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      CHECK(msg.find("waiting for a port") != std::string::npos);
      CHECK(msg.find("exited with status 3") != std::string::npos);
      CHECK(msg.find("dying") != std::string::npos);
    }
  }
}

TEST_CASE("redis_server starts, answers SET/GET, and leaves nothing behind", "[redis]") {
  pid_t pid = -1;
  std::uint16_t port = 0;
  fs::path dir;
  {
    pt::redis_server srv;
    pid = srv.pid();
    port = srv.port();
    dir = srv.process().dir();
    CHECK(srv.url() == "redis://127.0.0.1:" + std::to_string(port));
    CHECK_FALSE(pt::port_is_free(port));
    CHECK(redis_command(srv, "SET %s %s", "pipekit:key", "value 1") == "OK");
    CHECK(redis_command(srv, "GET %s", "pipekit:key") == "value 1");
    CHECK(redis_command(srv, "GET %s", "pipekit:missing") == "(nil)");
    // No persistence configured.
    CHECK(redis_command(srv, "CONFIG GET %s", "appendonly") == "appendonly\nno");
    CHECK(redis_command(srv, "CONFIG GET %s", "save") == "save\n");
  }
  CHECK(process_gone(pid));
  CHECK(pt::port_is_free(port));
  CHECK_FALSE(fs::exists(dir));
}

TEST_CASE("two redis_servers run side by side on different ports", "[redis]") {
  pt::redis_server a;
  pt::redis_server b;
  CHECK(a.port() != b.port());
  CHECK(redis_command(a, "SET %s %s", "k", "a") == "OK");
  CHECK(redis_command(b, "GET %s", "k") == "(nil)");
}

TEST_CASE("anvil_node starts, answers JSON-RPC, and leaves nothing behind", "[anvil]") {
  pid_t pid = -1;
  std::uint16_t port = 0;
  fs::path ipc;
  {
    pt::anvil_node::options opts;
    opts.ipc = true;
    pt::anvil_node node(opts);
    pid = node.pid();
    port = node.port();
    ipc = node.ipc_path();
    CHECK(node.url() == "http://127.0.0.1:" + std::to_string(port));
    CHECK(node.chain_id() == 31337);
    CHECK(node.rpc("eth_chainId").get<std::string>() == "0x7a69");  // 31337
    CHECK(node.rpc("eth_blockNumber").get<std::string>() == "0x0");
    // Mining a block moves eth_blockNumber.
    node.rpc("anvil_mine", nlohmann::json::array({"0x2"}));
    CHECK(node.rpc("eth_blockNumber").get<std::string>() == "0x2");

    REQUIRE(fs::is_socket(ipc));
    REQUIRE(node.accounts().size() == 10);
    REQUIRE(node.private_keys().size() == 10);
    // anvil's documented default dev account, derived from its default mnemonic.
    CHECK(node.mnemonic() == "test test test test test test test test test test test junk");
    CHECK(node.dev_account() == "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266");
    CHECK(node.dev_private_key() == "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    CHECK(node.rpc("eth_accounts")[0].get<std::string>() == node.dev_account());
    const auto balance = node.rpc("eth_getBalance", nlohmann::json::array({node.dev_account(), "latest"}));
    CHECK(balance.get<std::string>() == "0x21e19e0c9bab2400000");  // 10000 ETH
  }
  CHECK(process_gone(pid));
  CHECK(pt::port_is_free(port));
  CHECK_FALSE(fs::exists(ipc));
}

TEST_CASE("anvil_node without IPC has no ipc_path", "[anvil]") {
  pt::anvil_node node;
  CHECK(node.ipc_path().empty());
  CHECK(node.rpc("net_version").get<std::string>() == "31337");
}
