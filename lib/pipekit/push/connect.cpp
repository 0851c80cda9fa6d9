#include "pipekit/push/connect.hpp"
#include "pipekit/push/history.hpp"

#include <algorithm>
#include <csignal>
#include <random>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/net/tls_or_plain.hpp"
#include "pipekit/push/server.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::push {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
// ws:// or wss://, one type: Beast's WebSocket operations are compiled once for both.
using ws_stream = websocket::stream<net::tls_or_plain<beast::tcp_stream>>;

namespace {

class terminal_client {
 public:
  terminal_client(asio::io_context& io, const connect_options& opts, util::url url,
                  std::shared_ptr<net::tls_context> tls)
      : io_(io), opts_(opts), url_(std::move(url)), tls_(std::move(tls)), resolver_(io), timer_(io), out_(STDOUT_FILENO) {}

  void start() { attempt(); }

 private:
  beast::tcp_stream& tcp_layer() { return beast::get_lowest_layer(*ws_); }

 public:
  void stop(int status) {
    if (done_) return;
    done_ = true;
    status_ = status;
    timer_.cancel();
    resolver_.cancel();
    if (ws_ && ws_->is_open()) {
      ws_->async_close(websocket::close_code::normal, [this](beast::error_code) { io_.stop(); });
      timer_.expires_after(std::chrono::seconds(2));
      timer_.async_wait([this](beast::error_code ec) {
        if (!ec) io_.stop();
      });
    } else {
      io_.stop();
    }
  }
  int status() const { return status_; }

 private:

  void attempt() {
    if (done_) return;
    if (tls_) ws_ = std::make_unique<ws_stream>(io_, tls_->native());
    else ws_ = std::make_unique<ws_stream>(io_);
    tcp_layer().expires_after(opts_.timeout);  // connecting, TLS and the WebSocket handshake
    resolver_.async_resolve(url_.host, std::to_string(url_.port),
                            [this](beast::error_code ec, tcp::resolver::results_type res) {
                              if (ec) return lost("cannot resolve " + url_.host + ": " + ec.message());
                              tcp_layer().async_connect(res, [this](beast::error_code e, const tcp::endpoint&) {
                                if (e) return lost("cannot connect: " + e.message());
                                tls_handshake();
                              });
                            });
  }

  void tls_handshake() {
    auto* tls = ws_->next_layer().tls();
    if (!tls) return handshake();
    auto& stream = *tls;
    net::set_peer_host(stream.native_handle(), *tls_, url_.host);  // SNI, and the name the certificate must have
    stream.async_handshake(asio::ssl::stream_base::client, [this, &stream](beast::error_code ec) {
      if (!ec) return handshake();
      // A certificate that does not verify will not verify on the next attempt either.
      const bool refused = SSL_get_verify_result(stream.native_handle()) != X509_V_OK;
      const std::string why = "TLS handshake: " + net::describe_failure(stream.native_handle(), ec);
      if (!refused) return lost(why);
      log::error("{}: {}", url_.host, why);
      stop(exit_code::unavailable);
    });
  }

  void handshake() {
    const std::string host = url_.host.find(':') != std::string::npos ? "[" + url_.host + "]" : url_.host;
    ws_->async_handshake(fmt::format("{}:{}", host, url_.port), url_.target(), [this](beast::error_code ec) {
      if (ec) return lost("handshake: " + ec.message());
      tcp_layer().expires_never();
      ws_->set_option(websocket::stream_base::timeout::suggested(beast::role_type::client));
      nlohmann::json login = {{"type", "login"}, {"token", opts_.token}};
      if (!since_.empty()) login["since"] = since_;  // resume after the last message seen
      ws_->async_write(asio::buffer(login_ = login.dump()), [this](beast::error_code e, std::size_t) {
        if (e) return lost("login: " + e.message());
        read();
      });
    });
  }

  void read() {
    ws_->async_read(buffer_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      const auto reason = ws_->reason();
      if (reason.code == close_code::unauthorized || reason.code == close_code::token_expired) {
        log::error("{}: the node refused the token (close {}{}{})", url_.host, reason.code,
                   reason.reason.empty() ? "" : ": ", std::string(reason.reason.data(), reason.reason.size()));
        return stop(exit_code::no_perm);
      }
      if (reason.code != 0) return lost(fmt::format("closed by the node ({})", reason.code));
      return lost(ec.message());
    }
    const std::string text = beast::buffers_to_string(buffer_.data());
    buffer_.consume(buffer_.size());
    // Parsed keeping the node's key order, so a message prints as it was sent, on one line.
    // The node's members are read type-checked: a node that sends a number where a string
    // belongs gets "?" in the log, not an exception out of the read loop.
    auto msg = nlohmann::ordered_json::parse(text, nullptr, false);
    auto text_of = [&msg](const char* key) {
      auto it = msg.find(key);  // end() on a non-object too
      return it != msg.end() && it->is_string() ? it->get<std::string>() : std::string("?");
    };
    // Binary frames are not checked for UTF-8 by the WebSocket layer: dump() replaces bad bytes.
    auto line = [&msg] { return msg.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace); };
    const std::string type = text_of("type");
    if (type == "login_ok") {
      if (down_) log::info("connected again");
      down_ = false;
      backoff_ = std::chrono::milliseconds(0);
      log::info("logged in as {}", text_of("user"));
    } else if (type == "message") {
      if (msg.contains("id") && msg["id"].is_string() && parse_stream_id(msg["id"].get<std::string>()))
        since_ = msg["id"].get<std::string>();
      // Flushed line by line: a reader of a file (or a kill) sees each message as it came.
      if (!out_.write_line(line()) || !out_.flush()) return stop(exit_code::ok);  // stdout closed: quietly
      if (opts_.count != 0 && ++received_ >= opts_.count) return stop(exit_code::ok);
    } else if (type == "gap") {
      // Printed too: a script that resumes must know that messages may be missing.
      log::warn("the node's history may miss messages before the next one ({})", text_of("reason"));
      if (!out_.write_line(line()) || !out_.flush()) return stop(exit_code::ok);
    } else if (type == "error") {
      log::warn("the node answered: {}", line());
    }
    read();
  }

  // The connection failed or ended: try again after a growing, jittered delay.
  void lost(const std::string& why) {
    if (done_) return;
    if (!down_) log::warn("{}: {}; reconnecting", url_.host, why);
    down_ = true;
    ws_.reset();
    backoff_ = std::clamp(backoff_ * 2, std::chrono::milliseconds(500), opts_.reconnect_max);
    std::uniform_int_distribution<long> jitter(0, backoff_.count() / 4);
    timer_.expires_after(backoff_ + std::chrono::milliseconds(jitter(rng_)));
    timer_.async_wait([this](beast::error_code ec) {
      if (!ec) attempt();
    });
  }

  asio::io_context& io_;
  const connect_options& opts_;
  util::url url_;
  std::shared_ptr<net::tls_context> tls_;  // wss://: built once, for every attempt
  tcp::resolver resolver_;
  asio::steady_timer timer_;
  io::line_writer out_;
  std::unique_ptr<ws_stream> ws_;  // one per attempt
  beast::flat_buffer buffer_;
  std::string login_;
  std::string since_ = opts_.since;  // the last stream id seen
  std::chrono::milliseconds backoff_{0};
  std::mt19937 rng_{std::random_device{}()};
  std::uint64_t received_ = 0;
  bool down_ = false;
  bool done_ = false;
  int status_ = exit_code::ok;
};

}  // namespace

int connect(const connect_options& opts) {
  util::url url;
  try {
    url = util::parse_url(opts.url);
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "{}: {}", opts.url, e.what());
  }
  if (url.scheme != "ws" && url.scheme != "wss") fatal(exit_code::usage, "{}: want a ws:// or wss:// URL", opts.url);
  // A flag that says how to verify TLS never goes unused on a plain URL.
  if (url.scheme == "ws" && opts.tls.wanted())
    fatal(exit_code::usage, "{}: --tls-root-ca-file and --tls-insecure-skip-verify need a wss:// URL", opts.url);
  if (opts.token.empty()) fatal(exit_code::usage, "no token: give --token-file or WS_PUSH_TOKEN");
  std::shared_ptr<net::tls_context> tls;
  if (url.scheme == "wss") tls = net::tls_context::client(opts.tls);  // a bad CA file ends it here (66, 78)
  asio::io_context io;
  terminal_client c(io, opts, url, std::move(tls));
  util::on_stop_signals(io, [&](int signo) { c.stop(signo == SIGINT ? exit_code::interrupted : exit_code::ok); });
  c.start();
  io.run();
  return c.status();
}

}  // namespace pipekit::push
