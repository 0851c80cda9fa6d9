// pipekit::net::tls_or_plain under Beast's WebSocket client, against Beast's WebSocket server on
// loopback (the same io_context): what the erased bottom-layer handler must keep of the handler
// above it, as websocket::stream<tcp_stream> would.
#include <chrono>
#include <functional>
#include <optional>

#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <catch2/catch.hpp>

#include "pipekit/net/tls_or_plain.hpp"
#include "support/run_until.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using pipekit::test::run_until;

namespace {

// Beast's WebSocket server on 127.0.0.1, port 0: takes one connection's handshake, then reads
// (answering a close) and sends nothing.
class ws_server {
 public:
  explicit ws_server(asio::io_context& io) : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    acceptor_.async_accept([this](beast::error_code ec, tcp::socket s) {
      if (ec) return;
      ws_.emplace(std::move(s));
      ws_->async_accept([this](beast::error_code e) {
        if (!e) read();
      });
    });
  }
  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }

 private:
  void read() {
    ws_->async_read(buf_, [this](beast::error_code ec, std::size_t) {
      if (ec) return;
      buf_.consume(buf_.size());
      read();
    });
  }
  tcp::acceptor acceptor_;
  std::optional<websocket::stream<tcp::socket>> ws_;
  beast::flat_buffer buf_;
};

using client_stream = websocket::stream<pipekit::net::tls_or_plain<beast::tcp_stream>>;

// A plain (ws://) client connected to the server, its handshake done.
void connect(asio::io_context& io, client_stream& c, const ws_server& srv) {
  bool done = false;
  beast::error_code err;
  beast::get_lowest_layer(c).async_connect(srv.endpoint(), [&](beast::error_code ec) {
    if (ec) {
      err = ec;
      done = true;
      return;
    }
    c.async_handshake("127.0.0.1", "/", [&](beast::error_code e) {
      err = e;
      done = true;
    });
  });
  run_until(io, [&] { return done; }, "the connection and the WebSocket handshake");
  REQUIRE_FALSE(err);
}

}  // namespace

TEST_CASE("tls_or_plain: a close completes on its handler's executor (a strand), teardown included", "[net]") {
  asio::io_context io;
  ws_server srv(io);
  client_stream c(io);
  connect(io, c, srv);
  auto strand = asio::make_strand(io);
  bool done = false, in_strand = false;
  beast::error_code err;
  c.async_close(websocket::close_code::normal, asio::bind_executor(strand, [&](beast::error_code ec) {
                  err = ec;
                  in_strand = strand.running_in_this_thread();
                  done = true;
                }));
  run_until(io, [&] { return done; }, "the close");
  CHECK_FALSE(err);
  CHECK(in_strand);
}

TEST_CASE("tls_or_plain: a read's cancellation slot reaches the socket", "[net]") {
  asio::io_context io;
  ws_server srv(io);
  client_stream c(io);
  connect(io, c, srv);
  asio::cancellation_signal cancel;
  beast::flat_buffer buf;
  bool done = false;
  beast::error_code err;
  c.async_read(buf, asio::bind_cancellation_slot(cancel.slot(), [&](beast::error_code ec, std::size_t) {
                 err = ec;
                 done = true;
               }));
  io.restart();
  io.poll();  // the read waits on the socket: the server sends nothing
  REQUIRE_FALSE(done);
  cancel.emit(asio::cancellation_type::terminal);
  run_until(io, [&] { return done; }, "the cancelled read to complete", 5s);
  CHECK(err == asio::error::operation_aborted);
}
