// rpc_client's stream transports: WebSocket (ws://, wss://) through Boost.Beast and geth's IPC
// socket through Boost.Asio. Both run their asynchronous operations on a private io_context,
// driven from the calling thread with a deadline, so every wait is bounded by --rpc-timeout.
// One read is kept outstanding between exchanges: subscription notifications are collected by
// it, and a wait for a notification that times out leaves it running instead of breaking the
// stream by cancelling it.
#include <algorithm>
#include <deque>
#include <optional>
#include <string>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <fmt/format.h>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/rpc_response.hpp"
#include "pipekit/eth/rpc_transport.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/net/tls_or_plain.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::eth {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using error_code = boost::system::error_code;
using clock = std::chrono::steady_clock;

// What both streams share: the io_context, deadlines, the inbox of messages read, and the
// split between answers and subscription notifications.
class stream_transport : public rpc_transport {
 public:
  explicit stream_transport(const rpc_options& opts)
      : max_response_(opts.max_response), max_notes_(std::max<std::size_t>(opts.max_queued_notifications, 1)), timeout_(opts.timeout) {}

  bool streams() const override { return true; }

  std::string exchange(const std::string& body) override {
    const auto deadline = clock::now() + timeout_;
    if (!open_) {
      open(deadline);
      open_ = true;
    }
    write(body, deadline);
    for (;;) {
      std::string message = wait_message(deadline, "waiting for the answer");
      if (is_notification(message)) queue_note(std::move(message));
      else return message;
    }
  }

  std::optional<std::string> next_notification(std::chrono::milliseconds wait) override {
    if (notes_.empty()) {
      if (!open_) throw transport_error("not connected");
      const auto deadline = clock::now() + wait;
      while (notes_.empty()) {
        auto m = try_message(deadline);
        if (!m) return std::nullopt;
        if (is_notification(*m)) queue_note(std::move(*m));
        // Anything else is an answer nobody waits for any more (after a timeout): dropped.
      }
    }
    std::string n = std::move(notes_.front());
    notes_.pop_front();
    notes_bytes_ -= n.size();
    return n;
  }

  void reset() override {
    close();
    // Run what the close aborted, so no handler outlives the state it points to.
    ioc_.restart();
    ioc_.run();
    ioc_.restart();
    inbox_.clear();
    reading_ = false;
    read_error_.clear();
    too_large_ = false;
    open_ = false;
  }

 protected:
  virtual void open(clock::time_point deadline) = 0;
  virtual void start_write(const std::string& body, std::function<void(error_code)> done) = 0;
  // Starts one read; its completion calls on_read(ec, messages).
  virtual void start_read() = 0;
  virtual void close() = 0;

  void on_read(error_code ec) {
    reading_ = false;
    if (ec) read_error_ = ec;
  }
  // A read failed because the message is larger than max_response_.
  void on_too_large() { too_large_ = true; }

  // Runs one asynchronous step to completion, or fails it at the deadline.
  template <class Start>
  void await(clock::time_point deadline, std::string_view what, Start&& start) {
    bool done = false;
    error_code err;
    start([&](error_code ec, auto&&...) {
      err = ec;
      done = true;
    });
    drive(deadline, done, what);
    if (err) throw transport_error(fmt::format("{}: {}", what, err.message()));
  }

  asio::io_context ioc_;
  std::deque<std::string> inbox_;
  const std::size_t max_response_;

 private:
  // Notifications that come while an answer is awaited wait here for next_notification(); a
  // node that floods them (or a reader that never asks) costs at most max_notes_ of them and
  // max_response_ bytes: the oldest go first, counted, with a warning at the first drop and at
  // each power of 2.
  void queue_note(std::string note) {
    while (!notes_.empty() && (notes_.size() >= max_notes_ || notes_bytes_ + note.size() > max_response_)) {
      notes_bytes_ -= notes_.front().size();
      notes_.pop_front();
      ++dropped_notes_;
      if ((dropped_notes_ & (dropped_notes_ - 1)) == 0)
        log::warn("{} subscription notification(s) dropped: more than {} (or {} bytes) were waiting unread",
                  dropped_notes_, max_notes_, max_response_);
    }
    notes_bytes_ += note.size();
    notes_.push_back(std::move(note));
  }

  void drive(clock::time_point deadline, bool& done, std::string_view what) {
    ioc_.restart();
    while (!done) {
      auto left = deadline - clock::now();
      if (left <= clock::duration::zero() || ioc_.run_one_for(left) == 0) {
        if (done) break;
        if (clock::now() < deadline && !ioc_.stopped()) continue;
        reset();  // the aborted step completes here: its handler still points at `done`
        throw transport_error(fmt::format("{}: timed out after {} ms", what, timeout_.count()));
      }
    }
  }

  void write(const std::string& body, clock::time_point deadline) {
    await(deadline, "sending the request", [&](auto handler) { start_write(body, handler); });
  }

  // Waits for the next message until the deadline; nullopt when none came (the read stays
  // outstanding). Throws transport_error when the stream failed.
  std::optional<std::string> try_message(clock::time_point deadline) {
    ioc_.restart();
    while (inbox_.empty()) {
      if (read_error_ && too_large_)
        throw response_too_large(fmt::format("the answer is larger than {} bytes", max_response_));
      if (read_error_) throw transport_error(fmt::format("connection: {}", read_error_.message()));
      if (!reading_) {
        reading_ = true;
        start_read();
      }
      auto left = deadline - clock::now();
      if (left <= clock::duration::zero()) return std::nullopt;
      ioc_.run_one_for(left);
      if (ioc_.stopped()) ioc_.restart();
    }
    std::string m = std::move(inbox_.front());
    inbox_.pop_front();
    return m;
  }

  std::string wait_message(clock::time_point deadline, std::string_view what) {
    auto m = try_message(deadline);
    if (!m) {
      reset();
      throw transport_error(fmt::format("{}: timed out after {} ms", what, timeout_.count()));
    }
    return std::move(*m);
  }

  const std::size_t max_notes_;
  std::size_t notes_bytes_ = 0;
  std::uint64_t dropped_notes_ = 0;
  std::chrono::milliseconds timeout_;
  std::deque<std::string> notes_;
  bool open_ = false;
  bool too_large_ = false;
  bool reading_ = false;
  error_code read_error_;
};

// ws:// and wss://, one stream type for both (Beast's WebSocket operations compiled once).
class ws_transport final : public stream_transport {
 public:
  // wss://: net::tls_context's client defaults: the system's CA store (or OpenSSL's
  // SSL_CERT_FILE, SSL_CERT_DIR), the certificate and the host name (or IP address) checked, TLS
  // 1.2 at least.
  ws_transport(const rpc_options& opts, util::url u, bool tls) : stream_transport(opts), url_(std::move(u)) {
    if (tls) tls_ = net::tls_context::client({});
  }

 protected:
  void open(clock::time_point deadline) override {
    if (tls_) ws_.emplace(ioc_, tls_->native());
    else ws_.emplace(ioc_);
    asio::ip::tcp::resolver resolver(ioc_);
    asio::ip::tcp::resolver::results_type endpoints;
    await(deadline, "resolving the host", [&](auto handler) {
      resolver.async_resolve(url_.host, std::to_string(url_.port), [&endpoints, handler](error_code ec, auto results) {
        endpoints = results;
        handler(ec);
      });
    });
    await(deadline, "connecting", [&](auto handler) {
      beast::get_lowest_layer(*ws_).async_connect(endpoints, [handler](error_code ec, auto&&) { handler(ec); });
    });
    beast::get_lowest_layer(*ws_).socket().set_option(asio::ip::tcp::no_delay(true));
    if (auto* tls = ws_->next_layer().tls()) {
      auto& s = *tls;
      // SNI for a host name (never an address), and the name the certificate must have, checked
      // by OpenSSL's verification so that a mismatch says so ("IP address mismatch").
      net::set_peer_host(s.native_handle(), *tls_, url_.host);
      error_code failed;
      await(deadline, "TLS handshake", [&](auto handler) {
        s.async_handshake(asio::ssl::stream_base::client, [&failed, handler](error_code ec) mutable {
          failed = ec;
          handler(error_code{});
        });
      });
      if (failed) {
        // With the certificate check's verdict ("certificate verify failed: unable to get local
        // issuer certificate"). OpenSSL's verdicts (that, an alert from the server, a server that
        // does not speak TLS) would be the same on a retry; a reset might not.
        std::string why = "TLS handshake: " + net::describe_failure(s.native_handle(), failed);
        if (failed.category() == asio::error::get_ssl_category()) throw tls_refused(why);
        throw transport_error(why);
      }
    }
    ws_->read_message_max(max_response_);
    ws_->text(true);
    std::string host = fmt::format("{}:{}", url_.host, url_.port);
    await(deadline, "WebSocket handshake", [&](auto handler) { ws_->async_handshake(host, url_.target(), handler); });
  }

  void start_write(const std::string& body, std::function<void(error_code)> done) override {
    ws_->async_write(asio::buffer(body), [done](error_code ec, std::size_t) { done(ec); });
  }

  void start_read() override {
    ws_->async_read(buf_, [this](error_code ec, std::size_t) {
      if (!ec) {
        inbox_.push_back(beast::buffers_to_string(buf_.data()));
        buf_.consume(buf_.size());
      }
      if (ec == websocket::error::message_too_big) on_too_large();
      on_read(ec);
    });
  }

  void close() override {
    if (ws_) {
      error_code ignored;
      beast::get_lowest_layer(*ws_).socket().close(ignored);
    }
    buf_.clear();
  }

 private:
  util::url url_;
  std::shared_ptr<net::tls_context> tls_;  // wss:// only
  std::optional<websocket::stream<net::tls_or_plain<beast::tcp_stream>>> ws_;
  beast::flat_buffer buf_;
};

// geth's IPC endpoint: a Unix stream socket carrying JSON values back to back.
class ipc_transport final : public stream_transport {
 public:
  ipc_transport(const rpc_options& opts, std::string path)
      : stream_transport(opts), path_(std::move(path)), socket_(ioc_), splitter_(opts.max_response) {}

 protected:
  void open(clock::time_point deadline) override {
    socket_ = asio::local::stream_protocol::socket(ioc_);
    splitter_.clear();
    await(deadline, "connecting", [&](auto handler) {
      socket_.async_connect(asio::local::stream_protocol::endpoint(path_), handler);
    });
  }

  void start_write(const std::string& body, std::function<void(error_code)> done) override {
    out_ = body;
    out_ += '\n';
    asio::async_write(socket_, asio::buffer(out_), [done](error_code ec, std::size_t) { done(ec); });
  }

  void start_read() override {
    socket_.async_read_some(asio::buffer(chunk_), [this](error_code ec, std::size_t n) {
      if (!ec) {
        splitter_.append(std::string_view(chunk_.data(), n));
        try {
          while (auto m = splitter_.next()) inbox_.push_back(std::move(*m));
        } catch (const response_too_large&) {
          on_too_large();
          ec = asio::error::message_size;
        } catch (const transport_error&) {
          ec = asio::error::invalid_argument;
        }
      }
      on_read(ec);
    });
  }

  void close() override {
    error_code ignored;
    socket_.close(ignored);
  }

 private:
  std::string path_;
  asio::local::stream_protocol::socket socket_;
  json_stream_splitter splitter_;
  std::array<char, 64 * 1024> chunk_{};
  std::string out_;
};

}  // namespace

std::unique_ptr<rpc_transport> make_stream_transport(const rpc_options& opts) {
  std::string_view u = opts.url;
  if (u.starts_with("ipc://")) return std::make_unique<ipc_transport>(opts, std::string(u.substr(6)));
  if (!u.starts_with("ws://") && !u.starts_with("wss://")) return std::make_unique<ipc_transport>(opts, opts.url);
  util::url parsed;
  try {
    parsed = util::parse_url(u);
  } catch (const std::invalid_argument& e) {
    throw error(error_kind::invalid_url, fmt::format("{}: {}", opts.url, e.what()));
  }
  const bool tls = parsed.scheme == "wss";
  return std::make_unique<ws_transport>(opts, std::move(parsed), tls);
}

}  // namespace pipekit::eth
