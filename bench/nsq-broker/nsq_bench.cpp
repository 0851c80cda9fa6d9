// Load client for nsq-broker (or nsqd): MPUB batches over P connections and/or consumers with RDY R over
// C connections. Prints msgs/s, p99 publish-to-deliver latency and the broker's RSS (with --pid).
//   nsq_bench --tcp-address 127.0.0.1:4150 --mode both --count 2000000 --size 100 [--pid PID]
// --pipeline N: each publishing connection keeps N MPUBs in flight (default 1: send, wait for OK, as
// nsq's bench_writer does).
// Modes: pub (publish only), sub (consume what is queued), both (concurrently).
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "pipekit/nsq/protocol.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace pipekit::nsq;

namespace {

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct conn {
  asio::io_context io;
  tcp::socket s{io};
  std::string buf;
  std::size_t off = 0;
  conn(const std::string& host, unsigned short port) {
    s.connect(tcp::endpoint(asio::ip::make_address(host), port));
    s.set_option(tcp::no_delay(true));
    asio::write(s, asio::buffer(std::string(magic_v2)));
  }
  // Reads until at least one frame is buffered; calls fn for each complete frame.
  template <class Fn>
  bool read_frames(Fn&& fn) {
    char tmp[256 * 1024];
    boost::system::error_code ec;
    std::size_t n = s.read_some(asio::buffer(tmp), ec);
    if (ec) return false;
    buf.append(tmp, n);
    for (;;) {
      frame f;
      auto used = parse_frame(std::string_view(buf).substr(off), f);
      if (used <= 0) break;
      fn(f);
      off += static_cast<std::size_t>(used);
    }
    if (off > 0) {
      buf.erase(0, off);
      off = 0;
    }
    return true;
  }
  // The next answer (responses and errors, heartbeats answered); answers read together are queued.
  std::deque<std::string> answers;
  std::string expect_response() {
    while (answers.empty() && read_frames([&](const frame& f) {
      if (f.type == frame_type::response && f.data == heartbeat_body) {
        asio::write(s, asio::buffer(std::string("NOP\n")));
        return;
      }
      answers.emplace_back(f.data);
    })) {
    }
    if (answers.empty()) return {};
    std::string got = std::move(answers.front());
    answers.pop_front();
    return got;
  }
};

long rss_kb(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:4150", mode = "both", topic = "bench", channel = "ch";
  long count = 1000000, size = 100, batch = 200, rdy = 2500, pubs = 2, subs = 2, pipeline = 1;
  int pid = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--tcp-address") addr = v;
    else if (k == "--mode") mode = v;
    else if (k == "--topic") topic = v;
    else if (k == "--count") count = std::atol(v.c_str());
    else if (k == "--size") size = std::atol(v.c_str());
    else if (k == "--batch") batch = std::atol(v.c_str());
    else if (k == "--rdy") rdy = std::atol(v.c_str());
    else if (k == "--pub-conns") pubs = std::atol(v.c_str());
    else if (k == "--sub-conns") subs = std::atol(v.c_str());
    else if (k == "--pipeline") pipeline = std::max(1L, std::atol(v.c_str()));
    else if (k == "--pid") pid = std::atoi(v.c_str());
    else {
      std::fprintf(stderr, "nsq_bench: unknown flag %s\n", k.c_str());
      return 64;
    }
  }
  std::string host = addr.substr(0, addr.rfind(':'));
  auto port = static_cast<unsigned short>(std::atoi(addr.c_str() + addr.rfind(':') + 1));
  const bool do_pub = mode != "sub", do_sub = mode != "pub";

  std::atomic<long> received{0};
  std::vector<std::int64_t> lat_all;
  std::mutex lat_mu;
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> done_ns{0};
  std::int64_t sub_start = 0, sub_end = 0, pub_start = 0, pub_end = 0;

  std::vector<std::thread> sub_threads;
  std::vector<std::unique_ptr<conn>> sub_conns;
  if (do_sub) {
    for (long i = 0; i < subs; ++i) {
      auto c = std::make_unique<conn>(host, port);
      std::string cmds;
      append_command(cmds, "SUB " + topic + " " + channel);
      asio::write(c->s, asio::buffer(cmds));
      if (c->expect_response() != "OK") return 69;
      sub_conns.push_back(std::move(c));
    }
    sub_start = mono_ns();
    for (auto& cp : sub_conns) {
      sub_threads.emplace_back([&, c = cp.get()] {
        std::string r = "RDY " + std::to_string(rdy) + "\n";
        asio::write(c->s, asio::buffer(r));
        std::vector<std::int64_t> lat;
        std::string fins;
        while (!stop.load(std::memory_order_relaxed)) {
          fins.clear();
          std::int64_t now = mono_ns();
          if (!c->read_frames([&](const frame& f) {
                if (f.type == frame_type::message) {
                  message_view m;
                  if (!parse_message(f.data, m)) return;
                  if (m.body.size() >= 8) lat.push_back(now - static_cast<std::int64_t>(get_u64(m.body.data())));
                  fins.append("FIN ").append(m.id).push_back('\n');
                  if (received.fetch_add(1, std::memory_order_relaxed) + 1 == count) done_ns.store(mono_ns());
                } else if (f.type == frame_type::response && f.data == heartbeat_body) {
                  fins.append("NOP\n");
                }
              }))
            break;
          if (!fins.empty()) asio::write(c->s, asio::buffer(fins));
          if (received.load(std::memory_order_relaxed) >= count) break;
        }
        std::lock_guard<std::mutex> g(lat_mu);
        lat_all.insert(lat_all.end(), lat.begin(), lat.end());
      });
    }
  }

  if (do_pub) {
    std::vector<std::thread> pub_threads;
    pub_start = mono_ns();
    long per = count / pubs;
    for (long i = 0; i < pubs; ++i) {
      pub_threads.emplace_back([&, i] {
        conn c(host, port);
        std::vector<std::string> bodies(static_cast<std::size_t>(batch), std::string(static_cast<std::size_t>(size), 'x'));
        std::string out;
        long todo = i == pubs - 1 ? count - per * (pubs - 1) : per;
        long waiting = 0;  // MPUBs sent and not yet answered
        auto await_ok = [&] {
          std::string r = c.expect_response();
          if (r != "OK") {
            std::fprintf(stderr, "nsq_bench: MPUB: %s\n", r.c_str());
            std::exit(69);
          }
          --waiting;
        };
        while (todo > 0) {
          long n = std::min(batch, todo);
          bodies.resize(static_cast<std::size_t>(n));
          std::int64_t now = mono_ns();
          for (auto& b : bodies) put_u64(b.data(), static_cast<std::uint64_t>(now));
          out.clear();
          append_mpub(out, topic, bodies);
          asio::write(c.s, asio::buffer(out));
          ++waiting;
          if (waiting >= pipeline) await_ok();
          todo -= n;
        }
        while (waiting > 0) await_ok();
      });
    }
    for (auto& t : pub_threads) t.join();
    pub_end = mono_ns();
    double secs = static_cast<double>(pub_end - pub_start) / 1e9;
    std::printf("publish: %ld msgs of %ld B in %.3f s: %.0f msgs/s\n", count, size, secs, static_cast<double>(count) / secs);
    if (pid) std::printf("broker RSS after publish: %ld KiB\n", rss_kb(pid));
  }
  if (do_sub) {
    // The consumer that takes the last message stops; the others may be blocked in a read.
    while (done_ns.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    stop.store(true);
    for (auto& c : sub_conns) {
      boost::system::error_code ec;
      c->s.shutdown(tcp::socket::shutdown_both, ec);
    }
    for (auto& t : sub_threads) t.join();
    sub_end = done_ns.load();
    double secs = static_cast<double>(sub_end - sub_start) / 1e9;
    std::printf("consume: %ld msgs in %.3f s: %.0f msgs/s\n", received.load(), secs,
                static_cast<double>(received.load()) / secs);
    if (!lat_all.empty() && do_pub) {
      std::sort(lat_all.begin(), lat_all.end());
      auto p = [&](double q) { return static_cast<double>(lat_all[static_cast<std::size_t>(q * static_cast<double>(lat_all.size() - 1))]) / 1e6; };
      std::printf("publish-to-deliver latency: p50 %.2f ms, p99 %.2f ms\n", p(0.5), p(0.99));
    }
    if (pid) std::printf("broker RSS: %ld KiB\n", rss_kb(pid));
  }
  return 0;
}
