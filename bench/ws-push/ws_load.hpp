// The WebSocket load client shared by the benchmarks of ws-push (bench/ws-push/ws_bench.cpp) and
// push-route (bench/push-route/route_bench.cpp): one io_context on one thread holds every
// connection (raw Asio and a minimal client-side frame codec, so the client stays small beside the
// node it measures); logins by first message with HS256 tokens minted by libjwt; received
// messages counted, and their latency taken from the "t" (CLOCK_MONOTONIC ns) in their data.
// Connections come from --sources loopback addresses 127.0.0.2.. (bind before connect): one source
// address has only the ephemeral port range (~28k ports) towards one server port.
// Header-only: each benchmark is one translation unit.
#pragma once
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

namespace ws_load {


inline std::int64_t mono_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

inline const char* program = "ws_bench";  // names the program in messages

[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", program, what.c_str());
  std::exit(69);
}

inline long rss_kib(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

inline std::string mint(const std::string& secret, const std::string& user) {
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
inline std::string client_frame(std::uint8_t opcode, std::string_view payload) {
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
  // Connection i goes to servers[i % servers.size()] and logs in as user "u<i>".
  clients(asio::io_context& io, std::vector<tcp::endpoint> servers, std::string path, int sources, std::string secret)
      : io_(io), servers_(std::move(servers)), path_(std::move(path)), sources_(sources), secret_(std::move(secret)),
        scratch_(1 << 16) {
    tls_ctx_.set_verify_mode(asio::ssl::verify_none);  // the node's own self-signed certificate
  }

  // io thread, before open_until: connect to `server` from now on, over TLS when `tls`.
  void target(tcp::endpoint server, bool tls) {
    servers_ = {server};
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
  // On: what was recorded before is dropped.
  void record_latency(bool on) {
    if (on && !latency_on_) {
      lat_.clear();
      sent_.clear();
    }
    latency_on_ = on;
  }
  std::vector<std::int64_t> take_latencies() { return std::move(lat_); }
  // The "t" (send time) of each message of take_latencies(), in the same order; taken with it.
  std::vector<std::int64_t> take_send_times() { return std::move(sent_); }

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
    c.sock.async_connect(servers_[i % servers_.size()], [this, i](boost::system::error_code e) { on_connect(i, e); });
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
            if (t != std::string_view::npos) {
              const std::int64_t sent = std::atoll(std::string(payload.substr(t + 4, 20)).c_str());
              lat_.push_back(now - sent);
              sent_.push_back(sent);
            }
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
  std::vector<tcp::endpoint> servers_;
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
  std::vector<std::int64_t> sent_;
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

inline std::string fmt(const char* f, double v) {
  char b[64];
  std::snprintf(b, sizeof b, f, v);
  return b;
}


// Reads a secret file (one trailing newline dropped).
inline std::string read_secret(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path + ": cannot read");
  std::ostringstream s;
  s << f.rdbuf();
  std::string secret = s.str();
  if (!secret.empty() && secret.back() == '\n') secret.pop_back();
  return secret;
}

// "what|measured|goal|ratio" (from a script's --row) as a row.
inline row parse_row(const std::string& e) {
  row r;
  std::string* f[] = {&r.what, &r.measured, &r.goal, &r.ratio};
  std::size_t at = 0;
  for (auto* field : f) {
    if (at > e.size()) break;
    auto bar = e.find('|', at);
    *field = e.substr(at, bar == std::string::npos ? std::string::npos : bar - at);
    at = bar == std::string::npos ? e.size() + 1 : bar + 1;
  }
  return r;
}

// The table on stdout, `title` heading the first column and `last` the ratio column.
inline void print_table(const std::string& title, const std::vector<row>& rows, const char* last = "ratio to goal") {
  std::size_t w0 = title.size(), w1 = 0, w2 = 0;
  for (const auto& r : rows) w0 = std::max(w0, r.what.size()), w1 = std::max(w1, r.measured.size()), w2 = std::max(w2, r.goal.size());
  std::printf("| %-*s | %-*s | %-*s | %s\n", int(w0), title.c_str(), int(w1), "measured", int(w2), "goal", last);
  for (const auto& r : rows)
    std::printf("| %-*s | %-*s | %-*s | %s\n", int(w0), r.what.c_str(), int(w1), r.measured.c_str(), int(w2), r.goal.c_str(), r.ratio.c_str());
  std::fflush(stdout);
}

}  // namespace ws_load
