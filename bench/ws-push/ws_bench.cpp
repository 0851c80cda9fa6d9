// Load client for ws-push (bench/ws-push/run.sh). One io_context on one thread holds every
// WebSocket connection (ws_load.hpp: raw Asio and a minimal client-side frame codec, so the client
// stays small beside the node it measures); a second thread posts to the push API over one kept-alive HTTP
// connection (Beast). Phases:
//   1. RSS of the node (/proc/PID/status VmRSS) before any connection, then after each --steps
//      count of idle, logged-in connections (login by first message, HS256 tokens minted with
//      libjwt), after --settle: KiB per connection.
//   2. Back to --fanout-conns connections: broadcast and per-user messages/s delivered (from the
//      first POST /push to the last message received).
//   3. Per-user messages at --rate msgs/s for --duration, posted in batches every millisecond, each
//      carrying its send time (CLOCK_MONOTONIC, shared by both processes): p50/p99 from POST to
//      receipt.
// Prints one table on stdout; progress on stderr.
//   ws_bench --port P --push-port Q --secret-file F --pid PID [--steps 10000,50000] ...
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "ws_load.hpp"

using namespace ws_load;

int main(int argc, char** argv) {
  std::uint16_t port = 0, push_port = 0;
  std::string path = "/ws", secret_file, steps_text = "10000";
  int pid = 0, sources = 4;
  std::uint16_t tls_port = 0;  // a second node, serving wss:// (--tls-cert): RSS per TLS connection
  int tls_pid = 0;
  std::size_t tls_conns = 10000;
  double settle = 3, duration = 5, rate = 10000;
  std::size_t fanout_conns = 10000, broadcasts = 20, user_msgs = 200000;
  std::vector<std::string> extra_rows;  // "what|measured|goal|ratio", from the script
  bool fanout = true;                   // --fanout 0: the RSS steps only
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--port") port = static_cast<std::uint16_t>(std::atoi(v.c_str()));
    else if (k == "--push-port") push_port = static_cast<std::uint16_t>(std::atoi(v.c_str()));
    else if (k == "--path") path = v;
    else if (k == "--secret-file") secret_file = v;
    else if (k == "--pid") pid = std::atoi(v.c_str());
    else if (k == "--sources") sources = std::max(1, std::atoi(v.c_str()));
    else if (k == "--steps") steps_text = v;
    else if (k == "--settle") settle = std::atof(v.c_str());
    else if (k == "--fanout-conns") fanout_conns = std::strtoul(v.c_str(), nullptr, 10);
    else if (k == "--broadcasts") broadcasts = std::strtoul(v.c_str(), nullptr, 10);
    else if (k == "--user-msgs") user_msgs = std::strtoul(v.c_str(), nullptr, 10);
    else if (k == "--rate") rate = std::atof(v.c_str());
    else if (k == "--duration") duration = std::atof(v.c_str());
    else if (k == "--row") extra_rows.push_back(v);
    else if (k == "--fanout") fanout = v != "0";
    else if (k == "--tls-port") tls_port = static_cast<std::uint16_t>(std::atoi(v.c_str()));
    else if (k == "--tls-pid") tls_pid = std::atoi(v.c_str());
    else if (k == "--tls-conns") tls_conns = std::strtoul(v.c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "ws_bench: unknown flag %s\n", k.c_str());
      return 64;
    }
  }
  if (port == 0 || push_port == 0 || secret_file.empty() || pid == 0) {
    std::fprintf(stderr, "usage: ws_bench --port P --push-port Q --secret-file F --pid PID [--steps N,M] ...\n");
    return 64;
  }
  const std::string secret = read_secret(secret_file);
  std::vector<std::size_t> steps;
  for (std::size_t at = 0; at < steps_text.size();) {
    auto comma = steps_text.find(',', at);
    steps.push_back(std::strtoul(steps_text.substr(at, comma - at).c_str(), nullptr, 10));
    at = comma == std::string::npos ? steps_text.size() : comma + 1;
  }
  rlimit rl{};
  ::getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  ::setrlimit(RLIMIT_NOFILE, &rl);
  for (auto s : steps)
    if (s + 64 > rl.rlim_cur)
      fail("--steps " + std::to_string(s) + ": over this process's open-file limit (" + std::to_string(rl.rlim_cur) + ")");

  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  clients cs(io, {tcp::endpoint(asio::ip::make_address("127.0.0.1"), port)}, path, sources, secret);
  std::thread io_thread([&] { io.run(); });
  auto on_io = [&](std::function<void()> fn) {
    std::promise<void> done;
    asio::post(io, [&] {
      fn();
      done.set_value();
    });
    done.get_future().wait();
  };
  push_api api(push_port);
  std::vector<row> rows;

  // 1. RSS per idle, logged-in connection.
  std::this_thread::sleep_for(std::chrono::duration<double>(settle));
  const long base = rss_kib(pid);
  std::fprintf(stderr, "ws_bench: node RSS with no connection: %ld KiB\n", base);
  rows.push_back({"node RSS, no connection", std::to_string(base) + " KiB", "", ""});
  std::size_t before_step = 0;
  for (auto n : steps) {
    const auto t0 = mono_ns();
    on_io([&] { cs.open_until(n); });
    wait_for([&] { return cs.logged_in + cs.failed >= n || cs.closes_by_server > 0; }, 600);
    const double secs = static_cast<double>(mono_ns() - t0) / 1e9;
    if (cs.logged_in < n) {
      std::string why;
      on_io([&] { why = cs.first_error; });
      fail(std::to_string(n) + " connections: " + std::to_string(cs.logged_in.load()) + " logged in, " +
           std::to_string(cs.failed.load()) + " failed (" + why + ")");
    }
    std::fprintf(stderr, "ws_bench: %zu connections logged in (%.1f s); settling %.0f s\n", n, secs, settle);
    std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    const long rss = rss_kib(pid);
    const double per = static_cast<double>(rss - base) / static_cast<double>(n);
    const long node_count = api.stat("connections");
    std::fprintf(stderr, "ws_bench: node RSS %ld KiB (%ld connections by /stats): %.2f KiB per connection\n", rss,
                 node_count, per);
    rows.push_back({"RSS per idle logged-in connection, " + std::to_string(n / 1000) + "k", fmt("%.2f KiB", per),
                    "<= 5 KiB", fmt("%.2f", per / 5)});
    rows.push_back({"  node RSS at " + std::to_string(n / 1000) + "k (logins at " +
                        fmt("%.0f", static_cast<double>(n - before_step) / secs) + "/s)",
                    std::to_string(rss) + " KiB", "", ""});
    before_step = n;
  }

  // 2. Fan-out to fanout_conns connections.
  if (fanout && cs.logged_in > fanout_conns) {
    on_io([&] { cs.close_from(fanout_conns); });
    if (!wait_for([&] { return api.stat("connections") == static_cast<long>(fanout_conns); }, 60))
      fail("the node did not see the closed connections go");
  }
  const std::size_t nconn = fanout ? cs.logged_in.load() : 0;
  const std::string tag = std::to_string(nconn / 1000) + "k";
  auto delivered_rate = [&](const std::vector<std::string>& bodies, std::size_t expect) {
    const std::size_t before = cs.received;
    const auto t0 = mono_ns();
    for (const auto& b : bodies) api.post(b);
    if (!wait_for([&] { return cs.received - before >= expect; }, 120))
      fail("fan-out: " + std::to_string(cs.received - before) + " of " + std::to_string(expect) + " messages arrived");
    return static_cast<double>(expect) / (static_cast<double>(mono_ns() - t0) / 1e9);
  };
  if (fanout) delivered_rate({R"({"broadcast":true,"data":"warm-up"})"}, nconn);
  if (fanout) {
    std::string body;
    for (std::size_t i = 0; i < broadcasts; ++i) body += R"({"broadcast":true,"data":{"n":)" + std::to_string(i) + "}}\n";
    const double r = delivered_rate({body}, broadcasts * nconn);
    std::fprintf(stderr, "ws_bench: broadcast: %.0f msgs/s delivered\n", r);
    rows.push_back({"broadcast to " + tag + ": messages delivered/s", fmt("%.0f", r), "", ""});
    rows.push_back({"  one broadcast to " + tag, fmt("%.1f ms", 1e3 * static_cast<double>(nconn) / r), "", ""});
  }
  if (fanout) {
    std::vector<std::string> bodies;
    std::string body;
    for (std::size_t i = 0; i < user_msgs; ++i) {
      body += R"({"user":"u)" + std::to_string(i % nconn) + R"(","data":{"n":)" + std::to_string(i) + "}}\n";
      if ((i + 1) % 1000 == 0) bodies.push_back(std::move(body)), body.clear();
    }
    if (!body.empty()) bodies.push_back(body);
    const double r = delivered_rate(bodies, user_msgs);
    std::fprintf(stderr, "ws_bench: per-user: %.0f msgs/s delivered\n", r);
    rows.push_back({"per-user messages to " + tag + " (POSTs of 1000): delivered/s", fmt("%.0f", r), "", ""});
  }

  // 3. Latency at a target rate: per-user messages in batches every millisecond.
  if (fanout) {
    on_io([&] { cs.record_latency(true); });
    const std::size_t before = cs.received;
    const double per_ms = rate / 1000;
    const auto start = mono_ns();
    std::size_t sent = 0, k = 0, late = 0;
    for (long tick = 0; tick < static_cast<long>(duration * 1000); ++tick) {
      const auto due = start + tick * 1'000'000;
      while (mono_ns() < due) std::this_thread::sleep_for(std::chrono::microseconds(100));
      if (mono_ns() > due + 2'000'000) ++late;
      const std::size_t want = static_cast<std::size_t>(per_ms * static_cast<double>(tick + 1)) - sent;
      if (want == 0) continue;
      std::string body;
      const std::string t = std::to_string(mono_ns());
      for (std::size_t j = 0; j < want; ++j, ++k) body += R"({"user":"u)" + std::to_string(k % nconn) + R"(","data":{"t":)" + t + "}}\n";
      api.post(std::move(body));
      sent += want;
    }
    const double send_secs = static_cast<double>(mono_ns() - start) / 1e9;
    if (!wait_for([&] { return cs.received - before >= sent; }, 30))
      std::fprintf(stderr, "ws_bench: latency: %zu of %zu arrived\n", cs.received - before, sent);
    std::vector<std::int64_t> lat;
    on_io([&] {
      cs.record_latency(false);
      lat = cs.take_latencies();
    });
    std::sort(lat.begin(), lat.end());
    auto q = [&](double p) { return lat.empty() ? 0.0 : static_cast<double>(lat[static_cast<std::size_t>(p * static_cast<double>(lat.size() - 1))]) / 1e6; };
    const double achieved = static_cast<double>(sent) / send_secs;
    std::fprintf(stderr, "ws_bench: latency at %.0f msgs/s (achieved %.0f, %zu ticks late): p50 %.2f ms p99 %.2f ms max %.2f ms\n",
                 rate, achieved, late, q(0.5), q(0.99), q(1));
    const std::string at = fmt("%.0f", achieved / 1000) + "k msgs/s";
    rows.push_back({"POST /push -> client p50 at " + at, fmt("%.2f ms", q(0.5)), "", ""});
    rows.push_back({"POST /push -> client p99 at " + at, fmt("%.2f ms", q(0.99)), "< 10 ms (nsq-pub -> client)", fmt("%.2f", q(0.99) / 10)});
    rows.push_back({"  max; messages received / sent", fmt("%.2f ms", q(1)), "", std::to_string(lat.size()) + " / " + std::to_string(sent)});
  }
  if (fanout) rows.push_back({"node RSS after the fan-out", std::to_string(rss_kib(pid)) + " KiB", "", ""});

  // 4. RSS per idle logged-in TLS connection, on the second node (this process's descriptors go
  // to it: the plain connections are closed first).
  if (tls_port != 0 && tls_pid != 0) {
    on_io([&] { cs.close_from(0); });
    if (!wait_for([&] { return api.stat("connections") == 0; }, 60)) fail("the node did not see the closed connections go");
    cs.failed = 0;
    const long tls_base = rss_kib(tls_pid);
    const auto t0 = mono_ns();
    on_io([&] {
      cs.target(tcp::endpoint(asio::ip::make_address("127.0.0.1"), tls_port), true);
      cs.open_until(tls_conns);
    });
    wait_for([&] { return cs.logged_in + cs.failed >= tls_conns || cs.closes_by_server > 0; }, 600);
    const double secs = static_cast<double>(mono_ns() - t0) / 1e9;
    if (cs.logged_in < tls_conns) {
      std::string why;
      on_io([&] { why = cs.first_error; });
      fail("TLS: " + std::to_string(tls_conns) + " connections: " + std::to_string(cs.logged_in.load()) + " logged in, " +
           std::to_string(cs.failed.load()) + " failed (" + why + ")");
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(settle));
    const long rss = rss_kib(tls_pid);
    const double per = static_cast<double>(rss - tls_base) / static_cast<double>(tls_conns);
    std::fprintf(stderr, "ws_bench: TLS node RSS %ld KiB (%ld before): %.2f KiB per connection\n", rss, tls_base, per);
    const std::string tls_tag = std::to_string(tls_conns / 1000) + "k";
    rows.push_back({"RSS per idle logged-in TLS connection, " + tls_tag, fmt("%.2f KiB", per), "(reported apart)", ""});
    rows.push_back({"  TLS node RSS at " + tls_tag + " (logins at " + fmt("%.0f", static_cast<double>(tls_conns) / secs) + "/s)",
                    std::to_string(rss) + " KiB", "", ""});
  }
  for (const auto& e : extra_rows) rows.push_back(parse_row(e));
  print_table("ws-push", rows);

  on_io([&] { cs.close_from(0); });
  guard.reset();
  io.stop();
  io_thread.join();
  return 0;
}
