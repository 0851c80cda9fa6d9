#include "support/peers.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

extern char** environ;

namespace pipekit::test {

namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;

namespace {

[[noreturn]] void throw_errno(std::string_view what) {
  throw std::system_error(errno, std::generic_category(), std::string(what));
}

// A socket fd closed on scope exit.
struct socket_fd {
  int fd = -1;
  explicit socket_fd(int f) : fd(f) {}
  ~socket_fd() {
    if (fd >= 0) ::close(fd);
  }
  socket_fd(const socket_fd&) = delete;
  socket_fd& operator=(const socket_fd&) = delete;
};

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

std::string read_tail(const fs::path& path, std::size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  in.seekg(0, std::ios::end);
  const auto size = static_cast<std::size_t>(std::max<std::streamoff>(in.tellg(), 0));
  const std::size_t start = size > max_bytes ? size - max_bytes : 0;
  in.seekg(static_cast<std::streamoff>(start));
  std::string text(size - start, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  return text;
}

std::string env_key(std::string_view entry) { return std::string(entry.substr(0, entry.find('='))); }

// True when a fixture's start failed only because another process took the port first.
bool lost_port_race(child_process& child) {
  if (child.running()) return false;
  const auto text = child.stderr_tail(4000) + child.stdout_tail(4000);
  return text.find("Address already in use") != std::string::npos;
}

void curl_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

std::size_t append_body(char* data, std::size_t size, std::size_t n, void* user) {
  static_cast<std::string*>(user)->append(data, size * n);
  return size * n;
}

bool redis_answers_ping(const std::string& host, std::uint16_t port) {
  const timeval timeout{0, 500000};
  redisContext* ctx = redisConnectWithTimeout(host.c_str(), port, timeout);
  if (ctx == nullptr) return false;
  bool ok = false;
  if (ctx->err == 0) {
    redisSetTimeout(ctx, timeout);
    auto* reply = static_cast<redisReply*>(redisCommand(ctx, "PING"));
    if (reply != nullptr) {
      const std::string_view text(reply->str != nullptr ? reply->str : "", reply->len);
      // A server started with --requirepass answers NOAUTH: it is up all the same.
      ok = (reply->type == REDIS_REPLY_STATUS && text == "PONG") ||
           (reply->type == REDIS_REPLY_ERROR && text.starts_with("NOAUTH"));
      freeReplyObject(reply);
    }
  }
  redisFree(ctx);
  return ok;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ports

std::uint16_t free_port() {
  socket_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) throw_errno("free_port: socket");
  auto addr = loopback(0);
  if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw_errno("free_port: bind");
  socklen_t len = sizeof addr;
  if (::getsockname(s.fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) throw_errno("free_port: getsockname");
  return ntohs(addr.sin_port);
}

bool port_is_free(std::uint16_t port) {
  socket_fd s(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (s.fd < 0) throw_errno("port_is_free: socket");
  auto addr = loopback(port);
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return false;
  return errno == ECONNREFUSED;
}

// ---------------------------------------------------------------------------------------------
// temp_dir

temp_dir::temp_dir(std::string_view prefix) {
  const char* base = std::getenv("TMPDIR");
  fs::path pattern = fs::path(base != nullptr && *base != '\0' ? base : "/tmp") / (std::string(prefix) + "-XXXXXX");
  std::string buf = pattern.string();
  if (::mkdtemp(buf.data()) == nullptr) throw_errno("temp_dir: mkdtemp " + buf);
  path_ = buf;
}

temp_dir::~temp_dir() {
  if (path_.empty()) return;
  std::error_code ec;
  fs::remove_all(path_, ec);  // best effort: a test must not fail in a destructor
}

temp_dir::temp_dir(temp_dir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

temp_dir& temp_dir::operator=(temp_dir&& other) noexcept {
  if (this != &other) {
    if (!path_.empty()) {
      std::error_code ec;
      fs::remove_all(path_, ec);
    }
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

// ---------------------------------------------------------------------------------------------
// child_process

child_process::child_process(fs::path program, std::vector<std::string> args)
    : child_process(std::move(program), std::move(args), options{}) {}

child_process::child_process(fs::path program, std::vector<std::string> args, options opts)
    : program_(std::move(program)), dir_("pipekit-child"), stop_deadline_(opts.stop_deadline) {
  // A path with a slash is made absolute, so that run_in_dir cannot change what it names.
  if (program_.string().find('/') != std::string::npos) program_ = fs::absolute(program_);
  // argv
  std::vector<std::string> argv_store;
  argv_store.push_back(program_.string());
  for (auto& a : args) argv_store.push_back(std::move(a));
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);

  // envp: inherited entries, minus those overridden, plus the overrides
  std::vector<std::string> env_store;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const auto key = env_key(*e);
    const bool overridden = std::any_of(opts.env.begin(), opts.env.end(),
                                        [&](const std::string& o) { return env_key(o) == key; });
    if (!overridden) env_store.emplace_back(*e);
  }
  for (auto& o : opts.env) env_store.push_back(o);
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  const std::string out = stdout_path().string();
  const std::string err = stderr_path().string();

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (opts.run_in_dir) posix_spawn_file_actions_addchdir_np(&actions, dir().c_str());
  // Nothing else of the test's: a peer that outlives a killed test must not hold its files (a
  // redis-server left behind kept the `flock` lock a build was run under).
  posix_spawn_file_actions_addclosefrom_np(&actions, STDERR_FILENO + 1);

  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // Own process group (pgid = child's pid), so stop() can signal everything the child started.
  posix_spawnattr_setpgroup(&attr, 0);
  // Nothing blocked, and the usual signals at their defaults even if the test process ignores
  // SIGPIPE or handles SIGTERM (ignored dispositions survive exec).
  sigset_t mask;
  sigemptyset(&mask);
  posix_spawnattr_setsigmask(&attr, &mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM})
    sigaddset(&defaults, sig);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  const bool search_path = program_.string().find('/') == std::string::npos;
  const int rc = search_path
                     ? ::posix_spawnp(&pid_, program_.c_str(), &actions, &attr, argv.data(), envp.data())
                     : ::posix_spawn(&pid_, program_.c_str(), &actions, &attr, argv.data(), envp.data());
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    throw std::system_error(rc, std::generic_category(), "posix_spawn " + program_.string());
  }
}

child_process::~child_process() { stop(); }

bool child_process::running() {
  if (pid_ <= 0 || status_) return false;
  int st = 0;
  const pid_t r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    return false;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere; treat as gone
    status_ = 0;
    return false;
  }
  return true;
}

std::string child_process::describe_status() {
  if (running()) return "running";
  if (!status_) return "not started";
  const int st = *status_;
  if (WIFEXITED(st)) return "exited with status " + std::to_string(WEXITSTATUS(st));
  if (WIFSIGNALED(st)) return "killed by signal " + std::to_string(WTERMSIG(st));
  return "stopped (status " + std::to_string(st) + ")";
}

std::string child_process::stdout_tail(std::size_t max_bytes) const { return read_tail(stdout_path(), max_bytes); }
std::string child_process::stderr_tail(std::size_t max_bytes) const { return read_tail(stderr_path(), max_bytes); }

void child_process::stop() noexcept {
  if (pid_ <= 0) return;
  if (!status_) {
    ::kill(-pid_, SIGTERM);
    const auto deadline = clock::now() + stop_deadline_;
    while (running() && clock::now() < deadline) std::this_thread::sleep_for(10ms);
    if (!status_) {
      ::kill(-pid_, SIGKILL);
      int st = 0;
      pid_t r;
      do {
        r = ::waitpid(pid_, &st, 0);
      } while (r < 0 && errno == EINTR);
      status_ = r == pid_ ? st : 0;
    }
  }
  // The leader is reaped; whatever else is left in its group goes too.
  ::kill(-pid_, SIGKILL);
}

// ---------------------------------------------------------------------------------------------
// wait_until

namespace {

void wait_impl(const std::function<bool()>& cond, std::chrono::milliseconds deadline, std::string_view what,
               child_process* child) {
  const auto start = clock::now();
  auto pause = 5ms;
  std::string last_error;
  for (;;) {
    try {
      if (cond()) return;
    } catch (const std::exception& e) {
      last_error = e.what();  // a probe that throws counts as "not yet"; its reason is kept
    }
    const bool child_gone = child != nullptr && !child->running();
    const auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
    if (child_gone || elapsed >= deadline) {
      std::string msg;
      if (child_gone)
        msg = "gave up waiting for " + std::string(what) + ": " + child->program().filename().string() + " " +
              child->describe_status() + " after " + std::to_string(elapsed.count()) + " ms";
      else
        msg = "timed out after " + std::to_string(deadline.count()) + " ms waiting for " + std::string(what);
      if (!last_error.empty()) msg += "\n  last probe error: " + last_error;
      if (child != nullptr) {
        if (!child_gone) msg += "\n  child pid " + std::to_string(child->pid()) + " is still running";
        msg += "\n  --- stderr tail (" + child->stderr_path().string() + ") ---\n" + child->stderr_tail();
        msg += "\n  --- stdout tail (" + child->stdout_path().string() + ") ---\n" + child->stdout_tail();
      }
      throw std::runtime_error(msg);
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
}

}  // namespace

void wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline, std::string_view what) {
  wait_impl(cond, deadline, what, nullptr);
}

void wait_until(std::function<bool()> cond, std::chrono::milliseconds deadline, std::string_view what,
                child_process& child) {
  wait_impl(cond, deadline, what, &child);
}

// ---------------------------------------------------------------------------------------------
// node_modules, HTTP

#ifndef PIPEKIT_TEST_NODE_MODULES
#define PIPEKIT_TEST_NODE_MODULES ""
#endif

fs::path node_modules_dir() {
  const char* env = std::getenv("PIPEKIT_TEST_NODE_MODULES");
  fs::path dir = env != nullptr && *env != '\0' ? fs::path(env) : fs::path(PIPEKIT_TEST_NODE_MODULES);
  if (dir.empty())
    throw std::runtime_error(
        "node_modules location unknown: set PIPEKIT_TEST_NODE_MODULES=/path/to/tests/node_modules "
        "(CMake passes it as a compile definition)");
  if (!fs::is_directory(dir))
    throw std::runtime_error(dir.string() + " does not exist; run `npm ci` in tests/");
  return dir;
}

fs::path anvil_binary() {
  const fs::path bin = node_modules_dir() / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil";
  if (::access(bin.c_str(), X_OK) != 0)
    throw std::runtime_error(bin.string() + " is missing or not executable; run `npm ci` in tests/");
  return bin;
}

std::string http_post_json(const std::string& url, const std::string& body, std::chrono::milliseconds timeout) {
  curl_init_once();
  CURL* curl = curl_easy_init();
  if (curl == nullptr) throw std::runtime_error("curl_easy_init failed");
  std::string response;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  const CURLcode rc = curl_easy_perform(curl);
  long status = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) throw std::runtime_error("POST " + url + ": " + curl_easy_strerror(rc));
  if (status < 200 || status > 299)
    throw std::runtime_error("POST " + url + ": HTTP " + std::to_string(status) + ": " + response);
  return response;
}

// ---------------------------------------------------------------------------------------------
// redis_server

redis_server::redis_server() : redis_server(options{}) {}

redis_server::redis_server(options opts) {
  constexpr int max_attempts = 3;
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    // The child runs in its own temporary directory, so "--dir ." keeps anything redis might write
    // (nothing, with persistence off) out of the test's working directory.
    std::vector<std::string> args{"--port", std::to_string(port_), "--bind", host_, "--dir", ".",
                                  "--save", "", "--appendonly", "no", "--daemonize", "no",
                                  "--logfile", "", "--protected-mode", "yes"};
    args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
    child_process::options child_opts;
    child_opts.run_in_dir = true;
    process_ = std::make_unique<child_process>("redis-server", std::move(args), child_opts);
    try {
      wait_until([&] { return redis_answers_ping(host_, port_); }, opts.start_deadline,
                 "redis-server to answer PING on " + host_ + ":" + std::to_string(port_), *process_);
      return;
    } catch (const std::exception&) {
      if (attempt < max_attempts && lost_port_race(*process_)) continue;
      throw;
    }
  }
}

redis_server::~redis_server() = default;

std::string redis_server::url() const { return "redis://" + host_ + ":" + std::to_string(port_); }

pid_t redis_server::pid() const { return process_->pid(); }

// ---------------------------------------------------------------------------------------------
// anvil_node

anvil_node::anvil_node() : anvil_node(options{}) {}

anvil_node::anvil_node(options opts) {
  const fs::path binary = anvil_binary();
  constexpr int max_attempts = 3;
  for (int attempt = 1;; ++attempt) {
    port_ = free_port();
    // --config-out makes anvil write its dev accounts, keys and mnemonic as JSON even when
    // --silent keeps its banner off stdout.
    std::vector<std::string> args{"--host", "127.0.0.1", "--port", std::to_string(port_), "--silent",
                                  "--config-out", "anvil.json"};
    if (opts.ipc) {
      args.emplace_back("--ipc");
      args.emplace_back("anvil.ipc");
    }
    args.insert(args.end(), opts.extra_args.begin(), opts.extra_args.end());
    child_process::options child_opts;
    child_opts.run_in_dir = true;
    process_ = std::make_unique<child_process>(binary, std::move(args), child_opts);
    ipc_path_ = opts.ipc ? process_->dir() / "anvil.ipc" : fs::path();
    try {
      const auto start = clock::now();
      const auto remaining = [&] {
        return std::max(std::chrono::milliseconds(1),
                        opts.start_deadline - std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start));
      };
      wait_until(
          [&] {
            chain_id_ = std::stoull(rpc("eth_chainId").get<std::string>(), nullptr, 16);
            return true;
          },
          remaining(), "anvil to answer eth_chainId on " + url(), *process_);
      const fs::path config = process_->dir() / "anvil.json";
      nlohmann::json cfg;
      wait_until(
          [&] {
            std::ifstream in(config);
            if (!in) return false;
            cfg = nlohmann::json::parse(in, nullptr, false);
            return !cfg.is_discarded() && cfg.contains("available_accounts") && cfg.contains("private_keys");
          },
          remaining(), "anvil to write its accounts to " + config.string(), *process_);
      accounts_ = cfg.at("available_accounts").get<std::vector<std::string>>();
      private_keys_ = cfg.at("private_keys").get<std::vector<std::string>>();
      if (cfg.contains("wallet") && cfg["wallet"].contains("mnemonic") && cfg["wallet"]["mnemonic"].is_string())
        mnemonic_ = cfg["wallet"]["mnemonic"].get<std::string>();
      if (accounts_.empty() || accounts_.size() != private_keys_.size())
        throw std::runtime_error("anvil wrote " + std::to_string(accounts_.size()) + " accounts and " +
                                 std::to_string(private_keys_.size()) + " keys to " + config.string());
      if (opts.ipc)
        wait_until([&] { return fs::is_socket(ipc_path_); }, remaining(),
                   "anvil's IPC socket " + ipc_path_.string(), *process_);
      return;
    } catch (const std::exception&) {
      if (attempt < max_attempts && lost_port_race(*process_)) continue;
      throw;
    }
  }
}

anvil_node::~anvil_node() = default;

std::string anvil_node::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

pid_t anvil_node::pid() const { return process_->pid(); }

nlohmann::json anvil_node::rpc(std::string_view method) const { return rpc(method, nlohmann::json::array()); }

nlohmann::json anvil_node::rpc(std::string_view method, const nlohmann::json& params) const {
  const nlohmann::json request{{"jsonrpc", "2.0"}, {"id", 1}, {"method", method}, {"params", params}};
  const std::string text = http_post_json(url(), request.dump());
  auto answer = nlohmann::json::parse(text, nullptr, false);
  if (answer.is_discarded() || !answer.is_object())
    throw std::runtime_error(std::string(method) + ": not a JSON-RPC answer: " + text);
  if (answer.contains("error")) throw std::runtime_error(std::string(method) + ": " + answer["error"].dump());
  if (!answer.contains("result")) throw std::runtime_error(std::string(method) + ": no result: " + text);
  return answer["result"];
}

}  // namespace pipekit::test
