#include "pipekit/net/tcp_listener.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

tcp::endpoint parse_listen_address(std::string_view address, std::string_view option) {
  const auto bad_address = [&](const std::string& why) {
    return option_error(option_error::kind::usage, {std::string(option)}, fmt::format("{{}} {}: {}", address, why));
  };
  util::host_port hp;
  // parse_host_port wants a port a client can use; a listener may also ask for port 0 (any).
  bool any_port = address.ends_with(":0");
  try {
    hp = any_port ? util::parse_host_port(address.substr(0, address.size() - 2), std::uint16_t{0}, "0.0.0.0")
                  : util::parse_host_port(address, {}, "0.0.0.0");  // ":4160" is every interface, as in Go
  } catch (const std::invalid_argument& e) {
    throw bad_address(e.what());
  }
  error_code bad;
  auto ip = asio::ip::make_address(hp.host, bad);
  if (!bad) return {ip, hp.port};
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port), tcp::resolver::passive, bad);
  if (bad || results.empty())
    throw bad_address(fmt::format("cannot resolve '{}': {}", hp.host, bad.message()));
  return results.begin()->endpoint();
}

std::string to_string(const tcp::endpoint& endpoint) {
  auto ip = endpoint.address();
  if (ip.is_v6()) return fmt::format("[{}]:{}", ip.to_string(), endpoint.port());
  return fmt::format("{}:{}", ip.to_string(), endpoint.port());
}

std::size_t default_max_connections() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY) return 65536;
  const auto limit = static_cast<std::size_t>(rl.rlim_cur);
  const std::size_t reserve = std::max<std::size_t>(64, limit / 10);
  return limit > 2 * reserve ? limit - reserve : std::max<std::size_t>(limit / 2, 1);
}

void connection_refuser::refuse(tcp::socket socket, std::int64_t limit, std::string_view farewell) {
  error_code ec;
  std::string peer = "?";
  if (auto remote = socket.remote_endpoint(ec); !ec) peer = to_string(remote);
  socket.non_blocking(true, ec);
  if (!farewell.empty()) socket.write_some(asio::buffer(farewell), ec);  // a fresh socket's buffer takes it
  socket.shutdown(tcp::socket::shutdown_send, ec);
  // What the client sent already is read away, so the close ends with FIN, not RST (which could
  // discard the farewell before the client reads it).
  std::array<char, 4096> scratch;
  for (int i = 0; i < 16 && socket.available(ec) > 0 && !ec; ++i) socket.read_some(asio::buffer(scratch), ec);
  socket.close(ec);
  ++count_;
  auto now = std::chrono::steady_clock::now();
  if (reported_ == 0 || now - reported_at_ >= std::chrono::seconds(10)) {
    log::warn("refused {}: {} connections open (--max-connections); {} refused in all", peer, limit, count_);
    reported_ = count_;
    reported_at_ = now;
  }
}

struct tcp_listener::state : std::enable_shared_from_this<state> {
  state(asio::io_context& io, accept_handler handler) : acceptor(io), pause(io), on_accept(std::move(handler)) {}
  tcp::acceptor acceptor;
  tcp::endpoint local;  // kept: the acceptor forgets it once closed
  asio::steady_timer pause;
  accept_handler on_accept;
  bool closed = false;
  // Failed accepts since the last one that worked: the first is logged, then one summary at most
  // every report_interval, and one line when accepting works again (never a line per retry).
  std::uint64_t failures = 0;
  std::chrono::steady_clock::time_point failing_since, reported_at;

  static constexpr std::chrono::milliseconds retry_pause{100};
  static constexpr std::chrono::seconds report_interval{10};

  void failed(const error_code& ec) {
    auto now = std::chrono::steady_clock::now();
    if (failures++ == 0) {
      failing_since = reported_at = now;
      log::warn("accept on {}: {}; pausing accepts, retrying every {} ms", to_string(local), ec.message(),
                retry_pause.count());
    } else if (now - reported_at >= report_interval) {
      reported_at = now;
      log::warn("accept on {}: {}; {} failed accepts in {} s", to_string(local), ec.message(), failures,
                std::chrono::duration_cast<std::chrono::seconds>(now - failing_since).count());
    }
  }

  void accept() {
    acceptor.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket socket) {
      if (self->closed) return;
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors or a connection reset before accept: pause, then go on.
        self->failed(ec);
        self->pause.expires_after(retry_pause);
        self->pause.async_wait([self](const error_code& wait_ec) {
          if (!wait_ec && !self->closed) self->accept();
        });
        return;
      }
      if (self->failures > 0) {
        log::info("accept on {}: accepting again after {} failed accepts", to_string(self->local), self->failures);
        self->failures = 0;
      }
      self->on_accept(std::move(socket));
      self->accept();
    });
  }
};

tcp_listener::tcp_listener(asio::io_context& io, std::string_view address, accept_handler on_accept,
                           std::string_view option)
    : state_(std::make_shared<state>(io, std::move(on_accept))) {
  auto endpoint = parse_listen_address(address, option);
  error_code ec;
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw option_error(option_error::kind::unavailable, {std::string(option)},
                       fmt::format("{{}} {}: cannot listen: {}", address, ec.message()));
  state_->local = acceptor.local_endpoint();
  state_->accept();
}

tcp_listener::~tcp_listener() { close(); }

tcp::endpoint tcp_listener::local_endpoint() const { return state_->local; }
std::uint16_t tcp_listener::port() const { return local_endpoint().port(); }

void tcp_listener::close() {
  if (state_->closed) return;
  state_->closed = true;
  error_code ignored;
  state_->acceptor.close(ignored);
  state_->pause.cancel();
}

}  // namespace pipekit::net
