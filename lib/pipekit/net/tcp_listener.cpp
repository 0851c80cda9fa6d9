#include "pipekit/net/tcp_listener.hpp"

#include <stdexcept>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;

tcp::endpoint parse_listen_address(std::string_view address) {
  util::host_port hp;
  // parse_host_port wants a port a client can use; a listener may also ask for port 0 (any).
  bool any_port = address.ends_with(":0");
  try {
    hp = any_port ? util::parse_host_port(address.substr(0, address.size() - 2), std::uint16_t{0}, "0.0.0.0")
                  : util::parse_host_port(address, {}, "0.0.0.0");  // ":4160" is every interface, as in Go
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "listen address '{}': {}", address, e.what());
  }
  error_code bad;
  auto ip = asio::ip::make_address(hp.host, bad);
  if (!bad) return {ip, hp.port};
  asio::io_context io;
  tcp::resolver resolver(io);
  auto results = resolver.resolve(hp.host, std::to_string(hp.port), tcp::resolver::passive, bad);
  if (bad || results.empty())
    fatal(exit_code::usage, "listen address '{}': cannot resolve '{}': {}", address, hp.host, bad.message());
  return results.begin()->endpoint();
}

std::string to_string(const tcp::endpoint& endpoint) {
  auto ip = endpoint.address();
  if (ip.is_v6()) return fmt::format("[{}]:{}", ip.to_string(), endpoint.port());
  return fmt::format("{}:{}", ip.to_string(), endpoint.port());
}

struct tcp_listener::state : std::enable_shared_from_this<state> {
  state(asio::io_context& io, accept_handler handler) : acceptor(io), pause(io), on_accept(std::move(handler)) {}
  tcp::acceptor acceptor;
  tcp::endpoint local;  // kept: the acceptor forgets it once closed
  asio::steady_timer pause;
  accept_handler on_accept;
  bool closed = false;

  void accept() {
    acceptor.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket socket) {
      if (self->closed) return;
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        // Out of descriptors or a connection reset before accept: pause, then go on.
        log::warn("accept on {}: {}", to_string(self->local), ec.message());
        self->pause.expires_after(std::chrono::milliseconds(100));
        self->pause.async_wait([self](const error_code& wait_ec) {
          if (!wait_ec && !self->closed) self->accept();
        });
        return;
      }
      self->on_accept(std::move(socket));
      self->accept();
    });
  }
};

tcp_listener::tcp_listener(asio::io_context& io, std::string_view address, accept_handler on_accept)
    : state_(std::make_shared<state>(io, std::move(on_accept))) {
  auto endpoint = parse_listen_address(address);
  error_code ec;
  auto& acceptor = state_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) fatal(exit_code::unavailable, "cannot listen on {}: {}", address, ec.message());
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
