// Load client for ws-push (bench/ws-push/run.sh). One io_context on one thread holds every
// WebSocket connection (raw Asio and a minimal client-side frame codec, so the client stays small
// beside the node it measures); a second thread posts to the push API over one kept-alive HTTP
// connection (Beast). Phases:
//   1. RSS of the node (/proc/PID/status VmRSS) before any connection, then after each --steps
//      count of idle, logged-in connections (login by first message, HS256 tokens minted with
//      libjwt), after --settle: KiB per connection.
//   2. Back to --fanout-conns connections: broadcast and per-user messages/s delivered (from the
//      first POST /push to the last message received).
//   3. Per-user messages at --rate msgs/s for --duration, posted in batches every millisecond, each
//      carrying its send time (CLOCK_MONOTONIC, shared by both processes): p50/p99 from POST to
//      receipt.
// Connections come from --sources loopback addresses 127.0.0.2.. (bind before connect): one source
// address has only the ephemeral port range (~28k ports) towards one server port.
// Prints one table on stdout; progress on stderr.
//   ws_bench --port P --push-port Q --secret-file F --pid PID [--steps 10000,50000] ...
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <functional>
#include <future>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <jwt.h>

namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void fail(const std::string& what) {
  std::fprintf(stderr, "ws_bench: %s\n", what.c_str());
  std::exit(69);
}

long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

std::string mint(const std::string& secret, const std::string& user) {
  jwt_t* t = nullptr;
  if (jwt_new(&t) != 0) fail("jwt_new");
  jwt_add_grant(t, "sub", user.c_str());
  jwt_add_grant_int(t, "exp", static_cast<long>(std::time(nullptr)) + 86400);
  jwt_set_alg(t, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(secret.data()), static_cast<int>(secret.size()));
  char* s = jwt_encode_str(t);
  if (s == nullptr) fail("jwt_encode_str");
  std::string out(s);
  std::free(s);  // libjwt 1.10 has no jwt_free_str
  jwt_free(t);
  return out;
}

// A client frame: FIN, the opcode, masked (RFC 6455 5.3; the key need not be secret here).
std::string client_frame(std::uint8_t opcode, std::string_view payload) {
  std::string f;
  f.push_back(static_cast<char>(0x80 | opcode));
  const std::size_t n = payload.size();
  if (n < 126) {
    f.push_back(static_cast<char>(0x80 | n));
  } else if (n < 65536) {
    f.push_back(static_cast<char>(0x80 | 126));
    f.push_back(static_cast<char>(n >> 8));
    f.push_back(static_cast<char>(n & 0xff));
  } else {
    f.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) f.push_back(static_cast<char>((n >> (8 * i)) & 0xff));
  }
  const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
  f.append(reinterpret_cast<const char*>(key), 4);
  for (std::size_t i = 0; i < n; ++i) f.push_back(static_cast<char>(payload[i] ^ key[i % 4]));
  return f;
}

enum class state : std::uint8_t { connecting, upgrading, login_wait, ready, closed };

struct conn {
  explicit conn(asio::io_context& io) : sock(io) {}
  tcp::socket sock;
  // wss://: TLS over sock, and a buffer of its own to read into (a read's bytes land when the
  // record is decrypted, so the shared scratch buffer cannot serve).
  std::unique_ptr<asio::ssl::stream<tcp::socket&>> tls;
  std::unique_ptr<char[]> tls_in;
  std::string in;                // bytes of an incomplete response or frame
  std::vector<std::string> out;  // frames to write (login, pongs)
  std::uint32_t index = 0;
  state st = state::connecting;
  bool writing = false;
};

// Everything here runs on the io thread except the atomics, which other threads read.
class clients {
 public:
  clients(asio::io_context& io, tcp::endpoint server, std::string path, int sources, std::string secret)
      : io_(io), server_(server), path_(std::move(path)), sources_(sources), secret_(std::move(secret)),
        scratch_(1 << 16) {
    tls_ctx_.set_verify_mode(asio::ssl::verify_none);  // the node's own self-signed certificate
  }

  // io thread, before open_until: connect to `server` from now on, over TLS when `tls`.
  void target(tcp::endpoint server, bool tls) {
    server_ = server;
    tls_ = tls;
  }

  std::atomic<std::size_t> logged_in{0}, failed{0}, received{0}, closes_by_server{0};
  std::string first_error;  // io thread; read after a phase ended

  // io thread: open connections until `target` exist (counting failed ones).
  void open_until(std::size_t target) {
    want_ = target;
    pump();
  }
  // io thread: close connections index >= keep.
  void close_from(std::size_t keep) {
    for (std::size_t i = keep; i < conns_.size(); ++i) {
      auto& c = *conns_[i];
      if (c.st == state::closed) continue;
      if (c.st == state::ready) logged_in.fetch_sub(1);
      else --inflight_;
      c.st = state::closed;
      boost::system::error_code ec;
      c.sock.close(ec);
    }
    // Their handlers hold no pointer (see on_readable), but a TLS stream may still be named by a
    // pending operation: those are kept until the io thread is idle again.
    for (std::size_t i = keep; i < conns_.size(); ++i)
      if (conns_[i]->tls) asio::post(io_, [c = std::shared_ptr<conn>(std::move(conns_[i]))] {});
    conns_.resize(std::min(conns_.size(), keep));
  }
  void record_latency(bool on) { latency_on_ = on; }
  std::vector<std::int64_t> take_latencies() { return std::move(lat_); }

 private:
  void pump() {
    while (conns_.size() < want_ && inflight_ < max_inflight) start(conns_.size());
  }

  void start(std::size_t i) {
    conns_.push_back(std::make_unique<conn>(io_));
    auto& c = *conns_.back();
    c.index = static_cast<std::uint32_t>(i);
    ++inflight_;
    boost::system::error_code ec;
    c.sock.open(tcp::v4(), ec);
    if (!ec) {
      int one = 1;
      ::setsockopt(c.sock.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
      asio::ip::address_v4::bytes_type a{127, 0, 0, static_cast<unsigned char>(2 + i % static_cast<std::size_t>(sources_))};
      c.sock.bind(tcp::endpoint(asio::ip::address_v4(a), 0), ec);
    }
    if (ec) return lost(i, "socket/bind: " + ec.message());
    c.sock.async_connect(server_, [this, i](boost::system::error_code e) { on_connect(i, e); });
  }

  conn* get(std::size_t i) { return i < conns_.size() ? conns_[i].get() : nullptr; }

  void lost(std::size_t i, const std::string& why) {
    auto* c = get(i);
    if (c == nullptr || c->st == state::closed) return;
    const bool was_ready = c->st == state::ready;
    c->st = state::closed;
    boost::system::error_code ec;
    c->sock.close(ec);
    if (was_ready) {
      logged_in.fetch_sub(1);
      closes_by_server.fetch_add(1);
    } else {
      --inflight_;
      failed.fetch_add(1);
    }
    if (first_error.empty()) first_error = "connection " + std::to_string(i) + ": " + why;
    pump();
  }

  void on_connect(std::size_t i, boost::system::error_code ec) {
    auto* c = get(i);
    if (c == nullptr || c->st == state::closed) return;
    if (ec) return lost(i, "connect: " + ec.message());
    c->sock.set_option(tcp::no_delay(true), ec);
    if (tls_) {
      c->tls = std::make_unique<asio::ssl::stream<tcp::socket&>>(c->sock, tls_ctx_);
      c->tls->async_handshake(asio::ssl::stream_base::client, [this, i](boost::system::error_code e) {
        auto* c2 = get(i);
        if (c2 == nullptr || c2->st == state::closed) return;
        if (e) return lost(i, "TLS handshake: " + e.message());
        upgrade(i);
      });
      return;
    }
    c->sock.non_blocking(true, ec);
    upgrade(i);
  }

  void upgrade(std::size_t i) {
    auto* c = get(i);
    c->st = state::upgrading;
    c->out.push_back("GET " + path_ + " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    write_next(i);
    if (c->tls) return tls_read(i);
    wait_readable(i);
  }

  void tls_read(std::size_t i) {
    auto* c = get(i);
    if (!c->tls_in) c->tls_in = std::make_unique<char[]>(tls_in_size);
    c->tls->async_read_some(asio::buffer(c->tls_in.get(), tls_in_size), [this, i](boost::system::error_code ec, std::size_t n) {
      auto* c2 = get(i);
      if (c2 == nullptr || c2->st == state::closed) return;
      if (ec) return lost(i, ec == asio::error::eof ? std::string("closed by the node") : "TLS read: " + ec.message());
      if (!consume(*c2, c2->tls_in.get(), n)) return;
      tls_read(i);
    });
  }

  void write_next(std::size_t i) {
    auto* c = get(i);
    if (c == nullptr || c->writing || c->out.empty() || c->st == state::closed) return;
    c->writing = true;
    auto data = std::make_shared<std::string>(std::move(c->out.front()));
    c->out.erase(c->out.begin());
    auto done = [this, i, data](boost::system::error_code ec, std::size_t) {
      auto* c2 = get(i);
      if (c2 == nullptr) return;
      c2->writing = false;
      if (ec) return lost(i, "write: " + ec.message());
      write_next(i);
    };
    if (c->tls) asio::async_write(*c->tls, asio::buffer(*data), std::move(done));
    else asio::async_write(c->sock, asio::buffer(*data), std::move(done));
  }

  void wait_readable(std::size_t i) {
    conns_[i]->sock.async_wait(tcp::socket::wait_read, [this, i](boost::system::error_code ec) { on_readable(i, ec); });
  }

  // Reads what is there into the shared scratch buffer (the connection keeps only an incomplete
  // frame), then waits again.
  void on_readable(std::size_t i, boost::system::error_code ec) {
    auto* c = get(i);
    if (c == nullptr || c->st == state::closed) return;
    if (ec) return lost(i, "wait: " + ec.message());
    for (;;) {
      const std::size_t n = c->sock.read_some(asio::buffer(scratch_), ec);
      if (ec == asio::error::would_block) break;
      if (ec) return lost(i, ec == asio::error::eof ? std::string("closed by the node") : "read: " + ec.message());
      if (!consume(*c, scratch_.data(), n)) return;
      if (n < scratch_.size()) break;
    }
    wait_readable(i);
  }

  // False when the connection ended.
  bool consume(conn& c, const char* p, std::size_t n) {
    std::string_view data(p, n);
    if (!c.in.empty()) {
      c.in.append(p, n);
      data = c.in;
    }
    std::size_t used = 0;
    if (c.st == state::upgrading) {
      const auto end = data.find("\r\n\r\n");
      if (end == std::string_view::npos) {
        if (c.in.empty()) c.in.assign(p, n);
        return true;
      }
      if (!data.starts_with("HTTP/1.1 101")) {
        lost(c.index, "upgrade refused: " + std::string(data.substr(0, data.find('\r'))));
        return false;
      }
      used = end + 4;
      c.st = state::login_wait;
      c.out.push_back(client_frame(1, R"({"type":"login","token":")" + mint(secret_, "u" + std::to_string(c.index)) + "\"}"));
      write_next(c.index);
    }
    const std::int64_t now = latency_on_ ? mono_ns() : 0;
    for (;;) {
      std::string_view rest = data.substr(used);
      if (rest.size() < 2) break;
      const auto b0 = static_cast<unsigned char>(rest[0]), b1 = static_cast<unsigned char>(rest[1]);
      std::size_t len = b1 & 0x7f, head = 2;
      if (len == 126) {
        if (rest.size() < 4) break;
        len = (std::size_t(static_cast<unsigned char>(rest[2])) << 8) | static_cast<unsigned char>(rest[3]);
        head = 4;
      } else if (len == 127) {
        if (rest.size() < 10) break;
        len = 0;
        for (int k = 2; k < 10; ++k) len = (len << 8) | static_cast<unsigned char>(rest[k]);
        head = 10;
      }
      if (rest.size() < head + len) break;
      const std::string_view payload = rest.substr(head, len);
      used += head + len;
      const int opcode = b0 & 0x0f;
      if (opcode == 9) {  // ping
        c.out.push_back(client_frame(10, payload));
        write_next(c.index);
      } else if (opcode == 8) {  // close
        const int code = payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]) : 0;
        lost(c.index, "closed by the node with " + std::to_string(code));
        return false;
      } else if (opcode == 1 || opcode == 0) {
        if (c.st == state::login_wait) {
          if (payload.find("\"login_ok\"") == std::string_view::npos) {
            lost(c.index, "login: " + std::string(payload.substr(0, 200)));
            return false;
          }
          c.st = state::ready;
          --inflight_;
          logged_in.fetch_add(1);
          pump();
        } else if (payload.find("\"type\":\"message\"") != std::string_view::npos) {
          received.fetch_add(1, std::memory_order_relaxed);
          if (latency_on_) {
            const auto t = payload.find("\"t\":");
            if (t != std::string_view::npos) lat_.push_back(now - std::atoll(std::string(payload.substr(t + 4, 20)).c_str()));
          }
        }
      }
    }
    if (!c.in.empty()) {
      c.in.erase(0, used);
      if (c.in.capacity() > 4096) c.in.shrink_to_fit();
    } else if (used < n) {
      c.in.assign(p + used, n - used);
    }
    return true;
  }

  static constexpr std::size_t max_inflight = 256;  // connects, upgrades and logins at once
  static constexpr std::size_t tls_in_size = 4096;
  asio::io_context& io_;
  tcp::endpoint server_;
  bool tls_ = false;
  asio::ssl::context tls_ctx_{asio::ssl::context::tls_client};
  std::string path_;
  int sources_;
  std::string secret_;
  std::vector<char> scratch_;
  std::vector<std::unique_ptr<conn>> conns_;
  std::size_t want_ = 0;
  std::size_t inflight_ = 0;
  bool latency_on_ = false;
  std::vector<std::int64_t> lat_;
};

// POST /push and GET /stats over one kept-alive connection.
class push_api {
 public:
  explicit push_api(std::uint16_t port) : sock_(io_) {
    sock_.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    sock_.set_option(tcp::no_delay(true));
  }
  std::string request(http::verb verb, const std::string& target, std::string body) {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.body() = std::move(body);
    req.prepare_payload();
    http::write(sock_, req);
    http::response_parser<http::string_body> p;
    p.body_limit(256u << 20);
    http::read(sock_, buf_, p);
    if (p.get().result_int() != 200) fail(target + ": HTTP " + std::to_string(p.get().result_int()) + ": " + p.get().body());
    return p.get().body();
  }
  std::string post(std::string body) { return request(http::verb::post, "/push", std::move(body)); }
  long stat(const std::string& key) {
    const std::string s = request(http::verb::get, "/stats", "");
    const auto at = s.find("\"" + key + "\":");
    return at == std::string::npos ? -1 : std::atol(s.c_str() + at + key.size() + 3);
  }

 private:
  asio::io_context io_;
  tcp::socket sock_;
  boost::beast::flat_buffer buf_;
};

template <class Pred>
bool wait_for(Pred pred, double seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

struct row {
  std::string what, measured, goal, ratio;
};

std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}

}  // namespace

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
  std::string secret;
  {
    std::ifstream f(secret_file, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    secret = s.str();
    if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  }
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
  clients cs(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), path, sources, secret);
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
  for (const auto& e : extra_rows) {
    row r;
    std::string* f[] = {&r.what, &r.measured, &r.goal, &r.ratio};
    std::size_t at = 0;
    for (auto* field : f) {
      if (at > e.size()) break;
      auto bar = e.find('|', at);
      *field = e.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
      at = bar == std::string::npos ? e.size() + 1 : bar + 1;
    }
    rows.push_back(r);
  }

  std::size_t w0 = 0, w1 = 0, w2 = 0;
  for (const auto& r : rows) w0 = std::max(w0, r.what.size()), w1 = std::max(w1, r.measured.size()), w2 = std::max(w2, r.goal.size());
  std::printf("| %-*s | %-*s | %-*s | %s\n", int(w0), "ws-push", int(w1), "measured", int(w2), "goal", "ratio to goal");
  for (const auto& r : rows)
    std::printf("| %-*s | %-*s | %-*s | %s\n", int(w0), r.what.c_str(), int(w1), r.measured.c_str(), int(w2), r.goal.c_str(), r.ratio.c_str());
  std::fflush(stdout);

  on_io([&] { cs.close_from(0); });
  guard.reset();
  io.stop();
  io_thread.join();
  return 0;
}
