// Test fixtures that start real peers (redis-server, anvil) as child processes.
//
// Every fixture is RAII: the destructor stops what the constructor started (SIGTERM to the child's
// process group, SIGKILL after a deadline, then waitpid), and removes its temporary directory.
// Nothing here is meant for production code; it lives in tests/support and is linked into the
// test binaries only.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace pipekit::test {

using namespace std::chrono_literals;

// A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, read back, closed).
// There is a window before the caller binds it; the peer fixtures retry on a clash.
std::uint16_t free_port();

// True when nothing listens on 127.0.0.1:port (a connect is refused). Sockets in TIME_WAIT
// do not count as listening.
bool port_is_free(std::uint16_t port);

// A fresh directory under $TMPDIR (or /tmp), removed with its contents by the destructor.
class temp_dir {
 public:
  explicit temp_dir(std::string_view prefix = "pipekit-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  temp_dir(temp_dir&& other) noexcept;
  temp_dir& operator=(temp_dir&& other) noexcept;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

// A child process started with posix_spawn in a process group of its own, stdin from /dev/null,
// stdout and stderr to files in a temporary directory of its own.
//
// The destructor (or stop()) sends SIGTERM to the whole group, waits up to stop_deadline for the
// child to exit, then sends SIGKILL, reaps it with waitpid and SIGKILLs what is left of the group,
// so no process of the group outlives the object.
class child_process {
 public:
  struct options {
    // Extra environment entries "KEY=VALUE"; they replace inherited entries with the same key.
    std::vector<std::string> env;
    // Time granted between SIGTERM and SIGKILL.
    std::chrono::milliseconds stop_deadline = 5000ms;
    // Start the child with its own temporary directory (dir()) as working directory, so that
    // relative paths in args name files there.
    bool run_in_dir = false;
  };

  // program: an absolute/relative path, or a bare name looked up in PATH.
  // args: the arguments after argv[0].
  // REQUIRES: program exists; throws std::runtime_error if the spawn fails.
  child_process(std::filesystem::path program, std::vector<std::string> args);
  child_process(std::filesystem::path program, std::vector<std::string> args, options opts);
  ~child_process();
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }
  const std::filesystem::path& program() const { return program_; }

  // Its own temporary directory: holds stdout.log and stderr.log; fixtures put their data here too.
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::filesystem::path stdout_path() const { return dir() / "stdout.log"; }
  std::filesystem::path stderr_path() const { return dir() / "stderr.log"; }

  // True while the child has not exited (reaps it with WNOHANG when it has).
  bool running();
  // The raw waitpid status once the child has been reaped.
  std::optional<int> wait_status() const { return status_; }
  // "exited with status N" / "killed by signal N" / "running".
  std::string describe_status();

  // The last max_bytes of what the child wrote to stdout / stderr so far.
  std::string stdout_tail(std::size_t max_bytes = 2000) const;
  std::string stderr_tail(std::size_t max_bytes = 2000) const;

  // SIGTERM the group, SIGKILL after the deadline, reap. Idempotent; called by the destructor.
  void stop() noexcept;

 private:
  std::filesystem::path program_;
  temp_dir dir_;
  pid_t pid_ = -1;
  std::optional<int> status_;
  std::chrono::milliseconds stop_deadline_;
};

// Polls cond (first at once, then with a short growing sleep) until it returns true.
// Throws std::runtime_error "timed out after N ms waiting for <what>" when the deadline passes.
// The overload with a child also fails early when the child exits, and appends the child's
// exit status and stderr/stdout tails to the message.
void wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline, std::string_view what);
void wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline, std::string_view what,
                child_process& child);

// Where the pinned npm packages are: env PIPEKIT_TEST_NODE_MODULES if set, else the compile
// definition PIPEKIT_TEST_NODE_MODULES. Throws with a hint ("run npm ci in tests/") if missing.
std::filesystem::path node_modules_dir();
// The anvil binary inside node_modules (@foundry-rs/anvil-linux-amd64/bin/anvil).
std::filesystem::path anvil_binary();

// One HTTP POST of a JSON body; returns the response body. Throws on transport errors or a
// non-2xx status.
std::string http_post_json(const std::string& url, const std::string& body,
                           std::chrono::milliseconds timeout = 5000ms);

// Debian's redis-server on a free 127.0.0.1 port, in its own directory, without persistence
// (no RDB snapshots, no AOF). The constructor returns once PING answers PONG.
class redis_server {
 public:
  struct options {
    std::vector<std::string> extra_args;  // appended to the command line, e.g. {"--maxmemory", "1mb"}
    std::chrono::milliseconds start_deadline = 30000ms;
  };

  redis_server();
  explicit redis_server(options opts);
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  const std::string& host() const { return host_; }
  std::uint16_t port() const { return port_; }
  std::string url() const;  // redis://127.0.0.1:PORT
  pid_t pid() const;
  child_process& process() { return *process_; }

 private:
  std::string host_ = "127.0.0.1";
  std::uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
};

// anvil (from tests/node_modules) on a free 127.0.0.1 port: --host 127.0.0.1 --port P --silent,
// plus --ipc <dir>/anvil.ipc when asked. The constructor returns once eth_chainId answers over HTTP
// (and, with IPC, once the socket exists). The dev accounts and keys are read from the JSON that
// anvil itself writes with --config-out, not hard-coded.
class anvil_node {
 public:
  struct options {
    bool ipc = false;
    std::vector<std::string> extra_args;  // e.g. {"--block-time", "1"}
    std::chrono::milliseconds start_deadline = 60000ms;
  };

  anvil_node();
  explicit anvil_node(options opts);
  ~anvil_node();
  anvil_node(const anvil_node&) = delete;
  anvil_node& operator=(const anvil_node&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const;  // http://127.0.0.1:PORT
  // Empty when started without IPC.
  const std::filesystem::path& ipc_path() const { return ipc_path_; }
  pid_t pid() const;
  child_process& process() { return *process_; }

  // The chain id eth_chainId answered at start (31337 unless --chain-id was given).
  std::uint64_t chain_id() const { return chain_id_; }
  // Dev accounts as anvil wrote them (0x + 40 lowercase hex) and their private keys (0x + 64 hex).
  const std::vector<std::string>& accounts() const { return accounts_; }
  const std::vector<std::string>& private_keys() const { return private_keys_; }
  const std::string& dev_account() const { return accounts_.at(0); }
  const std::string& dev_private_key() const { return private_keys_.at(0); }
  const std::string& mnemonic() const { return mnemonic_; }

  // One JSON-RPC request over HTTP; returns "result", throws on an "error" member.
  nlohmann::json rpc(std::string_view method, const nlohmann::json& params) const;
  nlohmann::json rpc(std::string_view method) const;

 private:
  std::uint16_t port_ = 0;
  std::filesystem::path ipc_path_;
  std::unique_ptr<child_process> process_;
  std::uint64_t chain_id_ = 0;
  std::vector<std::string> accounts_;
  std::vector<std::string> private_keys_;
  std::string mnemonic_;
};

}  // namespace pipekit::test
