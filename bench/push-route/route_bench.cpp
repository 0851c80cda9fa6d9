// Load client for push-route (bench/push-route/run.sh), on ws_bench's client (ws_load.hpp): holds
// --users logged-in WebSocket connections, user u<i> on node i % 2, and feeds push messages for
// them into a command's stdin (a push-route, or an nsq-pub in front of nsq-tail | push-route),
// which it starts itself (sh -c, stdout and stderr to files in --out-dir) so that it knows when
// its input starts and when it ends. Phases:
//   1. Routed messages/s: --msgs messages to the users in turn, written as fast as push-route
//      reads them, from the first write to the last message received; once with
//      --history-size 0 (routing alone), once with push-route's default history (an XADD per
//      message). The CPU each process used per message: push-route (wait4's rusage), Redis,
//      both nodes (/proc/PID/stat) and this client (getrusage), to say what limits the rate,
//      and the rate the nodes and this client alone would allow on this machine's cores (the
//      ceiling of any router: cores / their CPU us per message).
//      Against --ref-rate (redis-benchmark's pipelined GET rate, measured by run.sh in the same
//      run on the same redis-server).
//   2. Latency at --rate msgs/s for --duration, written every millisecond, each message carrying
//      its write time (CLOCK_MONOTONIC ns; this process writes and receives): p50/p99/max from
//      push-route's stdin to the client, then from nsq-pub's stdin (--pipeline-cmd) to the client.
// Each phase also says how much CPU the bench's processes used (the feed, Redis, the nodes, this
// client, --more-pids: the pipeline's nsq-broker, push-route and nsq-tail) and how much other work
// ran on the machine meanwhile (/proc/stat), since every figure here moves with it. The latency
// phases also count their stalls (messages 50 ms late or more) and the vCPU stalls meanwhile (one
// CPU's steal time growing by 50 ms or more within 100 ms: the hypervisor did not run that vCPU,
// nor whatever waited on it), and say which stalls overlapped one.
// Prints one table on stdout; progress on stderr.
//   route_bench --ports P1,P2 --push-ports Q1,Q2 --pids A,B --redis-port R --redis-pid RP
//               --secret-file F --route-cmd CMD [--pipeline-cmd CMD] --out-dir DIR [--ref-rate X]
//               [--phases rate,latency,pipeline] ...
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>

#include "../ws-push/ws_load.hpp"

using namespace ws_load;

namespace {

std::vector<std::string> split(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t at = 0; at < text.size();) {
    auto comma = text.find(',', at);
    out.push_back(text.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    at = comma == std::string::npos ? text.size() : comma + 1;
  }
  return out;
}

// CPU seconds (user + system) a process has used so far (/proc/PID/stat, clock ticks).
double cpu_of(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const auto paren = s.rfind(')');
  if (paren == std::string::npos) return 0;
  std::istringstream in(s.substr(paren + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && in >> field; ++i)  // utime is field 14, stime 15 (proc(5))
    if (i >= 14) ticks += std::atof(field.c_str());
  return ticks / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// snprintf into a string (ws_load's fmt takes one number).
template <class... A>
std::string strf(const char* f, A... a) {
  char b[256];
  std::snprintf(b, sizeof b, f, a...);
  return b;
}

// Busy CPU seconds of the whole machine so far (/proc/stat: all but idle, iowait and steal).
double machine_busy() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  f >> cpu;
  double busy = 0, v = 0;
  for (int i = 0; i < 8 && f >> v; ++i)  // user nice system idle iowait irq softirq steal
    if (i != 3 && i != 4 && i != 7) busy += v;
  return busy / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// Steal time per CPU so far, in clock ticks (/proc/stat's cpuN lines): time the hypervisor ran
// something else while that vCPU wanted to run. A vCPU stopped for 100 ms shows as 10 ticks
// (100 Hz) on its line when it runs again.
std::vector<long long> steal_per_cpu() {
  std::ifstream f("/proc/stat");
  std::vector<long long> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.starts_with("cpu") || line.size() < 4 || !std::isdigit(static_cast<unsigned char>(line[3]))) continue;
    std::istringstream in(line);
    std::string name;
    long long v = 0;
    in >> name;
    for (int i = 0; i < 8 && in >> v; ++i) {}  // the 8th value is steal
    out.push_back(v);
  }
  return out;
}

// Samples every CPU's steal time every 20 ms while it lives: the vCPU stalls (one CPU losing at
// least 50 ms within 100 ms), which stop whatever runs on that vCPU and show in every latency
// figure, told apart from the programs' own stalls.
class steal_watch {
 public:
  struct stall {
    std::int64_t end_ns;  // CLOCK_MONOTONIC, the sample that saw it
    std::size_t cpu;
    double ms;  // steal within the 100 ms before end_ns
  };
  steal_watch() : thread_([this] { run(); }) {}
  ~steal_watch() { stop(); }
  steal_watch(const steal_watch&) = delete;
  steal_watch& operator=(const steal_watch&) = delete;
  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  // REQUIRES: stop() was called.
  const std::vector<stall>& stalls() const { return stalls_; }
  double steal_seconds() const { return total_ticks_ / static_cast<double>(::sysconf(_SC_CLK_TCK)); }

 private:
  void run() {
    const double ms_per_tick = 1000.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    std::vector<std::pair<std::int64_t, std::vector<long long>>> samples{{mono_ns(), steal_per_cpu()}};
    const auto first = samples.front().second;
    std::vector<std::int64_t> reported(first.size(), 0);  // the last stall's sample per CPU
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, std::chrono::milliseconds(20), [&] { return stopping_; })) {
      samples.emplace_back(mono_ns(), steal_per_cpu());
      const auto& [now, cur] = samples.back();
      std::size_t back = samples.size() - 1;  // the newest sample at least 100 ms old
      while (back > 0 && now - samples[back].first < 100'000'000) --back;
      const auto& old = samples[back].second;
      for (std::size_t c = 0; c < cur.size() && c < old.size(); ++c) {
        const double ms = static_cast<double>(cur[c] - old[c]) * ms_per_tick;
        if (ms < 50) continue;
        if (reported[c] != 0 && now - reported[c] < 100'000'000) {  // the same one, seen again
          stalls_.back().ms = std::max(stalls_.back().ms, ms);
          continue;
        }
        reported[c] = now;
        stalls_.push_back({now, c, ms});
      }
      if (samples.size() > 64) samples.erase(samples.begin(), samples.begin() + 32);
    }
    const auto last = steal_per_cpu();
    for (std::size_t c = 0; c < last.size() && c < first.size(); ++c) total_ticks_ += static_cast<double>(last[c] - first[c]);
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::vector<stall> stalls_;
  double total_ticks_ = 0;
  std::thread thread_;  // last: starts once the rest is ready
};

double cpu_of_self() {
  rusage u{};
  ::getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// One command to Redis (RESP over a blocking socket): its integer answer, -1 for any other.
long long redis_int(std::uint16_t port, const std::vector<std::string>& args) {
  asio::io_context io;
  tcp::socket s(io);
  boost::system::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return -1;
  std::string req = "*" + std::to_string(args.size()) + "\r\n";
  for (const auto& a : args) req += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
  asio::write(s, asio::buffer(req), ec);
  asio::streambuf buf;
  asio::read_until(s, buf, "\r\n", ec);
  if (ec) return -1;
  std::string line((std::istreambuf_iterator<char>(&buf)), std::istreambuf_iterator<char>());
  return line.starts_with(":") ? std::atoll(line.c_str() + 1) : -1;
}

// A command run by sh -c with its stdin a pipe from here and its stdout and stderr in files. It
// dies with this process (PR_SET_PDEATHSIG), and gets none of the client's sockets.
class feed {
 public:
  feed(const std::string& cmd, const std::string& out_path, const std::string& log_path) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) fail("pipe: " + std::string(std::strerror(errno)));
    const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out < 0 || log < 0) fail(out_path + ": cannot create");
    const std::string script = "exec " + cmd;
    pid_ = ::fork();
    if (pid_ < 0) fail("fork: " + std::string(std::strerror(errno)));
    if (pid_ == 0) {  // only async-signal-safe calls from here
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      struct sigaction dfl{};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(SIGPIPE, &dfl, nullptr);
      ::dup2(p[0], 0);
      ::dup2(out, 1);
      ::dup2(log, 2);
      ::syscall(SYS_close_range, 3u, ~0u, 0u);
      ::execl("/bin/sh", "sh", "-c", script.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    ::close(p[0]);
    ::close(out);
    ::close(log);
    in_ = p[1];
    waiter_ = std::thread([this] {
      int status = 0;
      rusage u{};
      ::wait4(pid_, &status, 0, &u);
      std::lock_guard lock(mu_);
      status_ = status;
      cpu_ = static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
      exit_ns_ = mono_ns();
    });
  }
  ~feed() {
    close_input();
    if (!wait_exit(30)) ::kill(pid_, SIGKILL);
    waiter_.join();
  }
  feed(const feed&) = delete;
  feed& operator=(const feed&) = delete;

  // False when the command no longer reads (EPIPE).
  bool write(std::string_view s) {
    while (!s.empty()) {
      const auto n = ::write(in_, s.data(), s.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return false;
      s.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }
  void close_input() {
    if (in_ >= 0) ::close(in_);
    in_ = -1;
  }
  bool wait_exit(double seconds) {
    return wait_for([&] { return exited(); }, seconds);
  }
  bool exited() {
    std::lock_guard lock(mu_);
    return exit_ns_ != 0;
  }
  int pid() const { return pid_; }
  // After the exit: the CPU seconds it used, when it ended, and its exit status.
  double cpu() {
    std::lock_guard lock(mu_);
    return cpu_;
  }
  std::int64_t exit_ns() {
    std::lock_guard lock(mu_);
    return exit_ns_;
  }
  std::string status() {
    std::lock_guard lock(mu_);
    if (WIFEXITED(status_)) return "exit " + std::to_string(WEXITSTATUS(status_));
    return "signal " + std::to_string(WTERMSIG(status_));
  }

 private:
  int pid_ = -1;
  int in_ = -1;
  std::thread waiter_;
  std::mutex mu_;
  int status_ = 0;
  double cpu_ = 0;
  std::int64_t exit_ns_ = 0;
};

std::size_t count_lines(const std::string& path) {
  std::ifstream f(path);
  std::size_t n = 0;
  std::string line;
  while (std::getline(f, line)) n += !line.empty();
  return n;
}

std::string push_line(std::size_t user, const std::string& data) {
  return R"({"user":"u)" + std::to_string(user) + R"(","data":)" + data + "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  program = "route_bench";
  std::string ports_text, push_ports_text, pids_text, more_pids_text, more_names, secret_file, route_cmd, pipeline_cmd, out_dir = ".";
  std::string ref_what = "reference", phases = "rate,latency,pipeline";
  std::uint16_t redis_port = 0;
  int redis_pid = 0, sources = 4;
  std::size_t users = 10000, msgs = 200000;
  double rate = 10000, duration = 5, ref_rate = 0;
  std::vector<std::string> extra_rows;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--ports") ports_text = v;
    else if (k == "--push-ports") push_ports_text = v;
    else if (k == "--pids") pids_text = v;
    else if (k == "--more-pids") more_pids_text = v;
    else if (k == "--more-names") more_names = v;
    else if (k == "--redis-port") redis_port = static_cast<std::uint16_t>(std::atoi(v.c_str()));
    else if (k == "--redis-pid") redis_pid = std::atoi(v.c_str());
    else if (k == "--secret-file") secret_file = v;
    else if (k == "--sources") sources = std::max(1, std::atoi(v.c_str()));
    else if (k == "--users") users = std::strtoul(v.c_str(), nullptr, 10);
    else if (k == "--msgs") msgs = std::strtoul(v.c_str(), nullptr, 10);
    else if (k == "--rate") rate = std::atof(v.c_str());
    else if (k == "--duration") duration = std::atof(v.c_str());
    else if (k == "--route-cmd") route_cmd = v;
    else if (k == "--pipeline-cmd") pipeline_cmd = v;
    else if (k == "--out-dir") out_dir = v;
    else if (k == "--ref-rate") ref_rate = std::atof(v.c_str());
    else if (k == "--ref-what") ref_what = v;
    else if (k == "--row") extra_rows.push_back(v);
    else if (k == "--phases") phases = v;
    else {
      std::fprintf(stderr, "route_bench: unknown flag %s\n", k.c_str());
      return 64;
    }
  }
  const auto ports = split(ports_text), push_ports = split(push_ports_text), pid_texts = split(pids_text);
  if (ports.empty() || ports.size() != push_ports.size() || ports.size() != pid_texts.size() || redis_port == 0 ||
      redis_pid == 0 || secret_file.empty() || route_cmd.empty() || users == 0) {
    std::fprintf(stderr, "usage: route_bench --ports P1,P2 --push-ports Q1,Q2 --pids A,B --redis-port R --redis-pid RP "
                         "--secret-file F --route-cmd CMD [--pipeline-cmd CMD] [--out-dir DIR] ...\n");
    return 64;
  }
  ::signal(SIGPIPE, SIG_IGN);  // a feed that exits early is an EPIPE, reported
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  if (users + 64 > rl.rlim_cur)
    fail("--users " + std::to_string(users) + ": over this process's open-file limit (" + std::to_string(rl.rlim_cur) + ")");

  std::vector<tcp::endpoint> servers;
  std::vector<int> node_pids;
  std::vector<std::unique_ptr<push_api>> apis;
  for (std::size_t i = 0; i < ports.size(); ++i) {
    servers.emplace_back(asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(std::atoi(ports[i].c_str())));
    node_pids.push_back(std::atoi(pid_texts[i].c_str()));
    apis.push_back(std::make_unique<push_api>(static_cast<std::uint16_t>(std::atoi(push_ports[i].c_str()))));
  }
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  clients cs(io, servers, "/ws", sources, read_secret(secret_file));
  std::thread io_thread([&] { io.run(); });
  auto on_io = [&](std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  std::vector<int> more_pids;  // the pipeline's other processes: counted as the bench's, not as other work
  for (const auto& p : split(more_pids_text)) more_pids.push_back(std::atoi(p.c_str()));
  // The CPU seconds used by the machine and by the bench's processes other than a feed (those,
  // the nodes, Redis, this client, --more-pids): what else ran on the machine meanwhile.
  auto each = [&](int feed_pid) {  // the feed, Redis, the nodes, this client, --more-pids
    std::vector<double> v{feed_pid ? cpu_of(feed_pid) : 0.0, cpu_of(redis_pid)};
    for (int p : node_pids) v.push_back(cpu_of(p));
    v.push_back(cpu_of_self());
    for (int p : more_pids) v.push_back(cpu_of(p));
    return v;
  };
  auto ours = [&] {
    double sum = 0;
    for (double c : each(0)) sum += c;
    return sum;
  };
  std::vector<row> rows;
  const std::string tag = std::to_string(users / 1000) + "k";

  // The users log in, and their routes are in Redis.
  const auto t0 = mono_ns();
  on_io([&] { cs.open_until(users); });
  wait_for([&] { return cs.logged_in + cs.failed >= users || cs.closes_by_server > 0; }, 120);
  if (cs.logged_in < users) {
    std::string why;
    on_io([&] { why = cs.first_error; });
    fail(std::to_string(users) + " connections: " + std::to_string(cs.logged_in.load()) + " logged in, " +
         std::to_string(cs.failed.load()) + " failed (" + why + ")");
  }
  const std::vector<std::string> count_routes = {"EVAL", "return #redis.call('KEYS', ARGV[1])", "0", "pipekit:user:*:nodes"};
  if (!wait_for([&] { return redis_int(redis_port, count_routes) == static_cast<long long>(users); }, 60))
    fail("routes in Redis: " + std::to_string(redis_int(redis_port, count_routes)) + " of " + std::to_string(users) + " users");
  std::fprintf(stderr, "route_bench: %zu users logged in on %zu nodes, routes in Redis (%.1f s)\n", users, servers.size(),
               static_cast<double>(mono_ns() - t0) / 1e9);
  if (ref_rate > 0) rows.push_back({"reference: " + ref_what, fmt("%.0f/s", ref_rate), "", ""});

  // 1. Routed messages/s.
  auto throughput = [&](const std::string& name, const std::string& label, const std::string& cmd, bool goal) {
    std::vector<std::string> chunks;  // made before the clock starts
    std::string chunk;
    for (std::size_t i = 0; i < msgs; ++i) {
      chunk += push_line(i % users, R"({"n":)" + std::to_string(i) + "}");
      if (chunk.size() >= 64 * 1024) chunks.push_back(std::move(chunk)), chunk.clear();
    }
    if (!chunk.empty()) chunks.push_back(std::move(chunk));
    const std::string out = out_dir + "/" + name + ".out";
    std::vector<double> node_cpu0;
    for (int p : node_pids) node_cpu0.push_back(cpu_of(p));
    const double redis_cpu0 = cpu_of(redis_pid), self_cpu0 = cpu_of_self(), ours0 = ours(), busy0 = machine_busy();
    const std::size_t before = cs.received;
    feed f(cmd, out, out_dir + "/" + name + ".log");
    const auto start = mono_ns();
    for (const auto& c : chunks)
      if (!f.write(c)) break;
    f.close_input();
    const bool all = wait_for([&] { return cs.received - before >= msgs; }, 60);
    const auto last = mono_ns();
    if (!f.wait_exit(30)) fail(name + ": push-route did not exit 30 s after its input ended");
    double nodes = 0;
    for (std::size_t i = 0; i < node_pids.size(); ++i) nodes += cpu_of(node_pids[i]) - node_cpu0[i];
    const double redis = cpu_of(redis_pid) - redis_cpu0, self = cpu_of_self() - self_cpu0;
    const double other = std::max(0.0, machine_busy() - busy0 - (ours() - ours0) - f.cpu());  // ticks: +-0.01 s
    const std::size_t got = cs.received - before, undelivered = count_lines(out);
    const double secs = static_cast<double>(last - start) / 1e9, r = static_cast<double>(got) / secs;
    const auto per = [&](double cpu) { return fmt("%.1f", 1e6 * cpu / static_cast<double>(msgs)); };
    std::fprintf(stderr, "route_bench: %s: %zu of %zu delivered in %.2f s: %.0f msgs/s; push-route %s after %.2f s, %zu undelivered\n",
                 name.c_str(), got, msgs, secs, r, f.status().c_str(), static_cast<double>(f.exit_ns() - start) / 1e9, undelivered);
    rows.push_back({"routed msgs/s, stdin -> " + tag + " clients, " + label, fmt("%.0f/s", r),
                    goal && ref_rate > 0 ? ">= 0.50 of reference" : "",
                    ref_rate > 0 ? fmt("%.3f of reference", r / ref_rate) : ""});
    if (!all || undelivered > 0 || f.status() != "exit 0")
      rows.push_back({"  NOT ALL DELIVERED: received / sent; undelivered records; push-route",
                      std::to_string(got) + " / " + std::to_string(msgs), "",
                      std::to_string(undelivered) + " in " + out + "; " + f.status()});
    rows.push_back({"  push-route done (input read, every node answered)", fmt("%.2f s", static_cast<double>(f.exit_ns() - start) / 1e9), "",
                    fmt("last receipt %.2f s", secs)});
    rows.push_back({"  CPU us/msg: push-route, Redis, " + std::to_string(node_pids.size()) + " nodes, client",
                    per(f.cpu()) + ", " + per(redis) + ", " + per(nodes) + ", " + per(self), "",
                    fmt("%.2f cores busy", (f.cpu() + redis + nodes + self) / secs) + fmt("; other work %.2f cores", other / secs)});
    // What the nodes and this client alone allow: with push-route and Redis free, every core of
    // the machine spent on the nodes' and the client's CPU per message.
    const long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
    const double rest_us = 1e6 * (nodes + self) / static_cast<double>(msgs);
    if (rest_us > 0) {
      const double ceiling = static_cast<double>(cores) * 1e6 / rest_us;
      rows.push_back({"  ceiling with push-route and Redis free: " + std::to_string(cores) + " cores / (nodes + client) us/msg",
                      fmt("%.0f/s", ceiling), "", ref_rate > 0 ? fmt("%.3f of reference", ceiling / ref_rate) : ""});
    }
  };
  auto phase = [&](const char* name) { return ("," + phases + ",").find("," + std::string(name) + ",") != std::string::npos; };
  if (phase("rate")) {
    throughput("rate-no-history", "--history-size 0", route_cmd + " --history-size 0", true);
    throughput("rate-history", "history (XADD each)", route_cmd, false);
  }

  // 2. Latency at --rate, from the feed command's stdin to the client.
  auto latency = [&](const std::string& name, const std::string& label, const std::string& cmd, const std::string& feed_name) {
    const std::string out = out_dir + "/" + name + ".out";
    feed f(cmd, out, out_dir + "/" + name + ".log");
    // Warm-up: the command has connected and a message went through to each node.
    std::size_t before = cs.received;
    std::string warm;
    for (std::size_t i = 0; i < 100; ++i) warm += push_line(i % users, R"({"warm":)" + std::to_string(i) + "}");
    if (!f.write(warm)) fail(name + ": the command did not read its input (see " + out_dir + "/" + name + ".log)");
    if (!wait_for([&] { return cs.received - before >= 100; }, 30))
      fail(name + ": warm-up: " + std::to_string(cs.received - before) + " of 100 arrived (see " + out_dir + "/" + name + ".log)");
    on_io([&] {
      cs.take_latencies();
      cs.record_latency(true);
    });
    before = cs.received;
    const double per_ms = rate / 1000;
    const auto each0 = each(f.pid());
    const double busy0 = machine_busy();
    steal_watch steal;
    const auto start = mono_ns();
    std::size_t sent = 0, k = 0, late = 0;
    for (long tick = 0; tick < static_cast<long>(duration * 1000); ++tick) {
      const auto due = start + tick * 1'000'000;
      while (mono_ns() < due) std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (mono_ns() > due + 2'000'000) ++late;
      const std::size_t want = static_cast<std::size_t>(per_ms * static_cast<double>(tick + 1)) - sent;
      if (want == 0) continue;
      std::string body;
      const std::string t = R"({"t":)" + std::to_string(mono_ns()) + "}";
      for (std::size_t j = 0; j < want; ++j, ++k) body += push_line(k % users, t);
      if (!f.write(body)) fail(name + ": the command stopped reading (see " + out_dir + "/" + name + ".log)");
      sent += want;
    }
    const double send_secs = static_cast<double>(mono_ns() - start) / 1e9;
    if (!wait_for([&] { return cs.received - before >= sent; }, 30))
      std::fprintf(stderr, "route_bench: %s: %zu of %zu arrived\n", name.c_str(), cs.received - before, sent);
    auto each1 = each(f.pid());
    double bench = 0;
    for (std::size_t i = 0; i < each1.size(); ++i) bench += each1[i] -= each0[i];
    const double other = std::max(0.0, machine_busy() - busy0 - bench);
    const double secs = static_cast<double>(mono_ns() - start) / 1e9;
    steal.stop();
    std::vector<std::int64_t> lat, sent_at;
    on_io([&] {
      cs.record_latency(false);
      lat = cs.take_latencies();
      sent_at = cs.take_send_times();
    });
    f.close_input();
    // Stalls: the messages 50 ms late or more, grouped by send time (20 ms apart: another one),
    // each told whether a vCPU stall (steal_watch) overlapped it.
    struct late_run {
      std::int64_t first, last, worst;
    };
    std::vector<late_run> stalls;
    {
      std::vector<std::pair<std::int64_t, std::int64_t>> slow;  // send time, latency
      for (std::size_t i = 0; i < lat.size() && i < sent_at.size(); ++i)
        if (lat[i] >= 50'000'000) slow.emplace_back(sent_at[i], lat[i]);
      std::sort(slow.begin(), slow.end());
      for (const auto& [t, l] : slow) {
        if (stalls.empty() || t - stalls.back().last > 20'000'000) stalls.push_back({t, t, l});
        stalls.back().last = t;
        stalls.back().worst = std::max(stalls.back().worst, l);
      }
    }
    std::size_t during_vcpu_stall = 0;
    for (const auto& r : stalls) {
      std::string vcpu;
      for (const auto& v : steal.stalls()) {
        // The steal is seen up to 20 ms after the vCPU runs again, and covered the 100 ms before.
        if (v.end_ns >= r.first && v.end_ns - 120'000'000 <= r.last + r.worst)
          vcpu += strf(", cpu%zu lost %.0f ms by %.2f s", v.cpu, v.ms, static_cast<double>(v.end_ns - start) / 1e9);
      }
      if (!vcpu.empty()) ++during_vcpu_stall;
      std::fprintf(stderr, "route_bench: %s: stall: sent at %.3f-%.3f s, up to %.1f ms late%s\n", name.c_str(),
                   static_cast<double>(r.first - start) / 1e9, static_cast<double>(r.last - start) / 1e9,
                   static_cast<double>(r.worst) / 1e6, vcpu.empty() ? "; no vCPU stall seen" : vcpu.c_str());
    }
    for (const auto& v : steal.stalls())
      std::fprintf(stderr, "route_bench: %s: vCPU stall: cpu%zu lost %.0f ms to steal by %.2f s\n", name.c_str(), v.cpu,
                   v.ms, static_cast<double>(v.end_ns - start) / 1e9);
    std::sort(lat.begin(), lat.end());
    auto q = [&](double p) { return lat.empty() ? 0.0 : static_cast<double>(lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]) / 1e6; };
    const double achieved = static_cast<double>(sent) / send_secs;
    std::fprintf(stderr, "route_bench: %s at %.0f msgs/s (achieved %.0f, %zu ticks late): p50 %.2f ms p99 %.2f ms max %.2f ms\n",
                 name.c_str(), rate, achieved, late, q(0.5), q(0.99), q(1));
    const std::string at = fmt("%.0fk msgs/s", achieved / 1000);
    rows.push_back({label + " p50 at " + at, fmt("%.2f ms", q(0.5)), "", ""});
    rows.push_back({label + " p99 at " + at, fmt("%.2f ms", q(0.99)), "< 10 ms", fmt("%.2f of goal", q(0.99) / 10)});
    rows.push_back({"  max; messages received / sent", fmt("%.2f ms", q(1)), "", std::to_string(lat.size()) + " / " + std::to_string(sent)});
    rows.push_back({"  writes late by > 2 ms; CPU of the bench's processes; other work", std::to_string(late) + " of " + std::to_string(static_cast<long>(duration * 1000)),
                    "", fmt("%.2f cores", bench / secs) + fmt("; other work %.2f cores", other / secs)});
    rows.push_back({"  stalls (messages >= 50 ms late, 20 ms apart by send time); vCPU stalls", strf("%zu; %zu", stalls.size(), steal.stalls().size()), "",
                    strf("%zu of the stalls during a vCPU stall; steal %.0f ms in all", during_vcpu_stall, 1000 * steal.steal_seconds())});
    std::string cores;
    for (double c : each1) cores += (cores.empty() ? "" : ", ") + fmt("%.2f", c / secs);
    std::string nodes;
    for (std::size_t i = 0; i < node_pids.size(); ++i) nodes += ", node " + std::to_string(i + 1);
    rows.push_back({"  CPU cores: " + feed_name + ", Redis" + nodes + ", client" +
                        (more_pids.empty() ? "" : ", " + more_names), cores, "", ""});
  };
  if (phase("latency")) latency("latency-route", "push-route stdin -> client", route_cmd, "push-route");
  if (phase("pipeline") && !pipeline_cmd.empty()) latency("latency-pipeline", "nsq-pub stdin -> client", pipeline_cmd, "nsq-pub");

  long dropped = 0, slow = 0;
  for (auto& a : apis) dropped += a->stat("dropped"), slow += a->stat("slow_consumer_closes");
  rows.push_back({"nodes: messages dropped, slow-consumer closes; closes seen by clients",
                  std::to_string(dropped) + ", " + std::to_string(slow) + "; " + std::to_string(cs.closes_by_server.load()), "", ""});
  for (const auto& e : extra_rows) rows.push_back(parse_row(e));
  print_table("push-route, " + tag + " users on " + std::to_string(servers.size()) + " ws-push nodes", rows, "ratio");

  on_io([&] { cs.close_from(0); });
  guard.reset();
  io.stop();
  io_thread.join();
  return 0;
}
