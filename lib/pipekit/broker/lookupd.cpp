// nsq-broker's registration with lookupd (nsqlookupd's TCP protocol V1): IDENTIFY, then REGISTER of every
// topic and channel; REGISTER/UNREGISTER as they come and go; PING every 15 s; reconnect with backoff.
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/log/log.hpp"
#include "pipekit/broker/server_internal.hpp"

namespace pipekit::broker {

namespace {
constexpr std::string_view magic_v1 = "  V1";
constexpr std::chrono::seconds ping_interval{15};
constexpr std::chrono::milliseconds min_backoff{1000};
constexpr std::chrono::milliseconds max_backoff{30000};
}  // namespace

class lookup_peer : public std::enable_shared_from_this<lookup_peer> {
 public:
  lookup_peer(server::impl& b, std::string address)
      : b_(b), address_(std::move(address)), resolver_(b.io), socket_(b.io), retry_(b.io), ping_(b.io) {}

  void start() { connect(); }

  void send(std::string_view line) {
    if (!connected_) return;  // everything is registered again on (re)connect
    out_.append(line).push_back('\n');
    flush();
  }

  void stop() {
    stopped_ = true;
    boost::system::error_code ignored;
    resolver_.cancel();
    retry_.cancel();
    ping_.cancel();
    socket_.close(ignored);
  }

 private:
  void connect() {
    if (stopped_) return;
    auto colon = address_.rfind(':');
    std::string host = colon == std::string::npos ? address_ : address_.substr(0, colon);
    std::string port = colon == std::string::npos ? "4160" : address_.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
    resolver_.async_resolve(host, port, [self = shared_from_this()](const boost::system::error_code& ec,
                                                                   tcp::resolver::results_type results) {
      if (self->stopped_) return;
      if (ec) return self->retry("resolve", ec);
      asio::async_connect(self->socket_, results, [self](const boost::system::error_code& e, const tcp::endpoint&) {
        if (self->stopped_) return;
        if (e) return self->retry("connect", e);
        self->on_connected();
      });
    });
  }

  void on_connected() {
    connected_ = true;
    log::info("LOOKUPD({}): connected", address_);
    nlohmann::json id = {{"broadcast_address", b_.broadcast_address()},
                         {"hostname", asio::ip::host_name()},
                         {"tcp_port", b_.tcp_port},
                         {"http_port", b_.http_port},
                         {"version", "1.3.0"}};
    std::string body = id.dump();
    out_.clear();
    out_.append(magic_v1);
    append_command(out_, "IDENTIFY", body);
    for (auto& [tname, t] : b_.topics) {
      out_.append("REGISTER ").append(tname).push_back('\n');
      for (auto& [cname, c] : t->channels) out_.append("REGISTER ").append(tname).append(" ").append(cname).push_back('\n');
    }
    flush();
    read();
    arm_ping();
  }

  void arm_ping() {
    ping_.expires_after(ping_interval);
    ping_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec || self->stopped_ || !self->connected_) return;
      self->send("PING");
      self->arm_ping();
    });
  }

  void flush() {
    if (writing_ || out_.empty() || !connected_) return;
    writing_ = true;
    pending_.swap(out_);
    asio::async_write(socket_, asio::buffer(pending_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
      self->writing_ = false;
      self->pending_.clear();
      if (self->stopped_) return;
      if (ec) return self->retry("write", ec);
      self->flush();
    });
  }

  void read() {
    in_.resize(in_len_ + 4096);
    socket_.async_read_some(asio::buffer(in_.data() + in_len_, 4096),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                              if (self->stopped_) return;
                              if (ec) return self->retry("read", ec);
                              self->in_len_ += n;
                              self->on_read();
                            });
  }

  // Answers are [size][data]: "OK", IDENTIFY's JSON, or "E_CODE text" (then lookupd closes).
  void on_read() {
    std::size_t pos = 0;
    while (in_len_ - pos >= 4) {
      std::uint32_t size = get_u32(in_.data() + pos);
      if (size > (1u << 20)) return retry("read", make_error_code(boost::system::errc::protocol_error));
      if (in_len_ - pos < 4 + std::size_t{size}) break;
      std::string_view data(in_.data() + pos + 4, size);
      if (data.substr(0, 2) == "E_") log::warn("LOOKUPD({}): {}", address_, data);
      else backoff_ = min_backoff;  // a healthy answer
      pos += 4 + size;
    }
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
    read();
  }

  void retry(const char* what, const boost::system::error_code& ec) {
    if (stopped_) return;
    if (connected_) log::warn("LOOKUPD({}): {}: {}; reconnecting", address_, what, ec.message());
    else log::warn("LOOKUPD({}): {}: {}; retrying in {} ms", address_, what, ec.message(), backoff_.count());
    connected_ = false;
    boost::system::error_code ignored;
    socket_.close(ignored);
    ping_.cancel();
    out_.clear();
    in_len_ = 0;
    if (writing_) return;  // the write's handler comes back here first... (it sees the closed socket)
    retry_.expires_after(backoff_);
    backoff_ = std::min(backoff_ * 2, max_backoff);
    retry_.async_wait([self = shared_from_this()](const boost::system::error_code& ec2) {
      if (!ec2) self->connect();
    });
  }

  server::impl& b_;
  std::string address_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  asio::steady_timer retry_;
  asio::steady_timer ping_;
  std::string out_, pending_;
  std::vector<char> in_;
  std::size_t in_len_ = 0;
  bool connected_ = false;
  bool writing_ = false;
  bool stopped_ = false;
  std::chrono::milliseconds backoff_ = min_backoff;
};

void server::impl::start_lookup_peers() {
  for (const std::string& a : opts.lookupd_tcp_addresses) {
    auto p = std::make_shared<lookup_peer>(*this, a);
    lookup_peers.push_back(p);
    p->start();
  }
}

void server::impl::stop_lookup_peers() {
  for (auto& p : lookup_peers) p->stop();
  lookup_peers.clear();
}

void server::impl::notify_lookupd(bool registered, std::string_view topic_name, std::string_view channel_name) {
  if (lookup_peers.empty()) return;
  std::string line = registered ? "REGISTER " : "UNREGISTER ";
  line.append(topic_name);
  if (!channel_name.empty()) line.append(" ").append(channel_name);
  for (auto& p : lookup_peers) p->send(line);
}

}  // namespace pipekit::broker
