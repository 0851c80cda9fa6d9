// libFuzzer target for the WebSocket frames a ws-push client sends once it is upgraded, read as
// ws-push's session reads them: Beast's websocket::stream with ws-push's options (async accept,
// reads of a message's first byte and then of the rest, a handshake timeout and no idle timer, a control callback, --max-message-size's
// default as the read limit, no compression) over beast::test::stream, an in-memory stream. Each
// message goes on through parse_client_message and is answered, and a ping is sent, so a write
// and a ping run beside the next read as the node's replies and heartbeat sweep do.
// Input: byte 0 sets how many bytes each read of the stream gets (1..256); the rest is what the
// client sends after the 101 answer, then its end of the stream. Findings: a crash, UB, a leak, a
// message over the read limit, a read loop that neither ends nor waits for input (the input is
// finite, so every run must end in an error: closed, eof, a protocol error).
//
//   make -f Makefile.dist fuzz       (sources: ws_frame_fuzz_SOURCES; corpus: corpus_ws_frame)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "pipekit/push/client_message.hpp"
#include "pipekit/push/server.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

void require(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "ws_frame_fuzz: %s\n", what);
    std::abort();
  }
}

constexpr std::string_view upgrade =
    "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// One connection's reads and replies, as push::server's session does them.
struct session {
  websocket::stream<beast::test::stream, false> ws;  // the node compiles permessage-deflate out
  beast::flat_buffer buffer;
  unsigned char first = 0;
  std::size_t limit;
  std::size_t replies_due = 0;
  std::size_t control_frames = 0;
  bool writing = false;
  bool pinging = false;
  bool done = false;

  session(beast::test::stream s, std::size_t max) : ws(std::move(s)), limit(max) {}

  // As the node: wait for a message's first byte, then read the rest into the buffer.
  void read() {
    ws.async_read_some(asio::buffer(&first, 1), [this](beast::error_code ec, std::size_t n) {
      if (ec) {
        done = true;
        return;
      }
      if (ws.is_message_done()) return on_message(n);
      ws.async_read(buffer, [this, n](beast::error_code e, std::size_t) {
        if (e) {
          done = true;
          return;
        }
        on_message(n);
      });
    });
  }

  void on_message(std::size_t n) {
    std::string text(n, static_cast<char>(first));
    text += beast::buffers_to_string(buffer.data());
    buffer.clear();
    buffer.shrink_to_fit();
    require(text.size() <= limit, "a message over the read limit");
    (void)pipekit::push::parse_client_message(text);
    ++replies_due;
    if (!writing) write_next();
    if (!pinging) {
      pinging = true;
      ws.async_ping({}, [this](beast::error_code) { pinging = false; });
    }
    read();
  }

  void write_next() {
    if (replies_due == 0) {
      writing = false;
      return;
    }
    writing = true;
    --replies_due;
    ws.text(true);
    ws.async_write(asio::buffer(std::string_view(R"({"type":"pong"})")), [this](beast::error_code ec, std::size_t) {
      if (ec) {
        writing = false;
        return;
      }
      write_next();
    });
  }
};

// Runs what is ready, never waiting for a timer; true when `done` came. (An io_context that ran
// out of work stops, and runs nothing more until restarted.)
bool settle(asio::io_context& io, const bool& done) {
  while (!done) {
    io.restart();
    if (io.poll() == 0) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const pipekit::push::options defaults;
  asio::io_context io;
  beast::test::stream server(io);
  beast::test::stream client = beast::test::connect(server);
  server.read_size(static_cast<std::size_t>(data[0]) + 1);

  // The upgrade request, read as the node reads it, then the handshake.
  server.append(upgrade);
  beast::flat_buffer head;
  http::request_parser<http::empty_body> parser;
  parser.header_limit(8192);
  parser.body_limit(0);
  beast::error_code ec;
  http::read(server, head, parser, ec);
  require(!ec && head.size() == 0 && websocket::is_upgrade(parser.get()), "the upgrade request was not read");

  std::optional<session> s;
  s.emplace(std::move(server), defaults.max_message_size);
  websocket::stream_base::timeout t{};
  t.handshake_timeout = defaults.handshake_timeout;
  t.idle_timeout = websocket::stream_base::none();  // the node's own sweep pings, not Beast's timer
  t.keep_alive_pings = false;
  s->ws.set_option(t);
  s->ws.control_callback([&s](websocket::frame_type, beast::string_view) { ++s->control_frames; });
  s->ws.read_message_max(defaults.max_message_size);
  bool accepted = false;
  s->ws.async_accept(parser.get(), [&](beast::error_code e) {
    require(!e, "the handshake failed");
    accepted = true;
  });
  require(settle(io, accepted), "the handshake did not complete");

  // What the client sends after the 101, then its end of the stream.
  s->ws.next_layer().append(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1));
  s->ws.next_layer().close_remote();
  s->read();
  require(settle(io, s->done), "the read loop waits with all input given");
  io.restart();
  io.poll();
  s.reset();  // cancels the stream's timers
  io.restart();
  io.poll();
  return 0;
}
