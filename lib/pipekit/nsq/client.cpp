#include "pipekit/nsq/client.hpp"

#include <unistd.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/log/log.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit_version.hpp"

namespace pipekit::nsq {

namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

constexpr std::size_t read_size = 64 * 1024;

std::string short_hostname() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "localhost";
  std::string h(name);
  return h.substr(0, h.find('.'));
}

// "host:port" or "[v6]:port" -> host, port.
bool split_address(const std::string& address, std::string& host, std::string& port) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) return false;
  host = address.substr(0, colon);
  port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "127.0.0.1";
  return true;
}

}  // namespace

struct client::impl {
  explicit impl(net::io_context& io) : resolver(io), socket(io), timer(io) {}
  tcp::resolver resolver;
  tcp::socket socket;
  net::steady_timer timer;
};

nlohmann::json identify_body(const client_options& o) {
  nlohmann::json body = {
      {"client_id", o.client_id.empty() ? short_hostname() : o.client_id},
      {"hostname", short_hostname()},
      {"user_agent", o.user_agent.empty() ? std::string("pipekit/") + PIPEKIT_VERSION : o.user_agent},
      {"feature_negotiation", true},
      {"heartbeat_interval", o.heartbeat_interval.count()},
  };
  if (o.msg_timeout.count() > 0) body["msg_timeout"] = o.msg_timeout.count();
  if (o.output_buffer_size != 0) body["output_buffer_size"] = o.output_buffer_size;
  if (o.output_buffer_timeout.count() != 0) body["output_buffer_timeout"] = o.output_buffer_timeout.count();
  if (o.tls) body["tls_v1"] = true;
  if (o.connection.deflate_level > 0) {
    body["deflate"] = true;
    body["deflate_level"] = o.connection.deflate_level;
  }
  if (o.connection.snappy) body["snappy"] = true;
  return body;
}

client::client(net::io_context& io, client_options options, handlers h)
    : impl_(std::make_unique<impl>(io)),
      options_(std::move(options)),
      handlers_(std::move(h)),
      identify_(std::make_unique<nlohmann::json>(nlohmann::json::object())) {}

client::~client() = default;

std::shared_ptr<client> client::create(net::io_context& io, client_options options, handlers h) {
  return std::shared_ptr<client>(new client(io, std::move(options), std::move(h)));
}

void client::start() {
  std::string host, port;
  if (!split_address(options_.address, host, port)) {
    net::post(impl_->socket.get_executor(), [self = shared_from_this()] {
      self->fail(fmt::format("{}: not host:port", self->options_.address));
    });
    return;
  }
  impl_->timer.expires_after(options_.connect_timeout);
  impl_->timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->ready() && !self->closed_) self->fail("connect timed out");
  });
  impl_->resolver.async_resolve(
      host, port, [self = shared_from_this()](boost::system::error_code ec, tcp::resolver::results_type results) {
        if (self->closed_) return;
        if (ec) return self->fail(ec.message());
        net::async_connect(self->impl_->socket, results,
                           [self](boost::system::error_code ec2, const tcp::endpoint&) {
                             if (self->closed_) return;
                             if (ec2) return self->fail(ec2.message());
                             self->impl_->socket.set_option(tcp::no_delay(true));
                             self->last_read_ = std::chrono::steady_clock::now();
                             self->send(magic_v2);
                             append_command(self->out_, "IDENTIFY", identify_body(self->options_).dump());
                             self->flush();
                             self->read_more();
                           });
      });
}

void client::send(std::string_view bytes) {
  if (closed_) return;
  out_.append(bytes);
  flush();
}

void client::flush() {
  if (!closed_ && !writing_active_ && !out_.empty() && impl_->socket.is_open()) write_more();
}

void client::write_more() {
  if (codec_) {
    writing_.clear();
    codec_.encoder->encode(out_, writing_);
    out_.clear();
  } else {
    writing_.swap(out_);
    out_.clear();
  }
  writing_active_ = true;
  auto done = [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                     self->writing_active_ = false;
                     self->writing_.clear();
                     if (self->closed_) return;
                     if (ec) return self->fail(ec.message());
                     if (!self->out_.empty()) self->write_more();
                   };
  if (tls_) tls_->async_write(net::buffer(writing_), std::move(done));
  else net::async_write(impl_->socket, net::buffer(writing_), std::move(done));
}

template <class Handler>
void client::read_some(char* data, std::size_t n, Handler&& h) {
  if (tls_) tls_->async_read_some(net::buffer(data, n), std::forward<Handler>(h));
  else impl_->socket.async_read_some(net::buffer(data, n), std::forward<Handler>(h));
}

void client::read_more() {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > (1u << 20)) {
    in_.erase(0, in_pos_);
    in_pos_ = 0;
  }
  if (codec_) {
    // Compressed: what is read goes through the decoder onto the end of in_.
    raw_.resize(read_size);
    read_some(raw_.data(), raw_.size(), [self = shared_from_this()](boost::system::error_code ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) return self->fail(ec == net::error::eof ? "closed by the broker" : ec.message());
      if (!self->decode_into_in(std::string_view(self->raw_).substr(0, n))) return;
      self->on_read(n);
    });
    return;
  }
  std::size_t old = in_.size();
  in_.resize(old + read_size);
  read_some(in_.data() + old, read_size,
                                [self = shared_from_this(), old](boost::system::error_code ec, std::size_t n) {
                                  self->in_.resize(old + n);
                                  if (self->closed_) return;
                                  if (ec && self->stage_ == stage::tls && ec.category() == net::error::get_ssl_category()) {
                                    // TLS 1.3: a broker that refuses the client certificate says so
                                    // after the client's side of the handshake has finished.
                                    self->permanent_ = final_failure::tls;
                                    return self->fail("TLS: " + self->tls_->describe(ec));
                                  }
                                  if (ec) {
                                    return self->fail(ec == net::error::eof ? "closed by the broker" : ec.message());
                                  }
                                  self->on_read(n);
                                });
}

void client::on_read(std::size_t) {
  last_read_ = std::chrono::steady_clock::now();
  auto self = shared_from_this();  // a handler may close() and drop the owner's reference
  while (!closed_) {
    frame f;
    std::ptrdiff_t n = parse_frame(std::string_view(in_).substr(in_pos_), f, options_.max_frame);
    if (n == 0) break;
    if (n < 0) return fail("malformed frame from the broker");
    in_pos_ += static_cast<std::size_t>(n);
    if (!handle_frame(f)) return;
  }
  if (!closed_) read_more();
}

// Before commands may go: IDENTIFY's answer, the OK that follows a compression upgrade, then
// AUTH when the broker requires it (nsqd --auth-http-address).
bool client::handshake(std::string_view data) {
  switch (stage_) {
    case stage::identify:
      *identify_ = nlohmann::json::object();
      if (!data.empty() && data.front() == '{') {
        *identify_ = nlohmann::json::parse(data, nullptr, false);
        if (identify_->is_discarded()) {
          fail("IDENTIFY answered with invalid JSON");
          return false;
        }
      }
      if (options_.tls) {
        stage_ = stage::tls;
        return start_tls();
      }
      if (compression_negotiated()) return begin_compression();
      break;
    case stage::tls:  // the first frame inside TLS
      if (data != "OK") {
        fail(fmt::format("TLS: the broker answered \"{}\" where OK was due", data));
        return false;
      }
      if (compression_negotiated()) return begin_compression();
      break;
    case stage::upgraded:
      if (data != "OK") {
        fail(fmt::format("expected OK after the compression upgrade, got \"{}\"", data));
        return false;
      }
      break;
    case stage::auth: {
      // Only logged; read type-checked, so an odd answer cannot throw out of the handler.
      auto j = nlohmann::json::parse(data, nullptr, false);
      auto identity = j.find("identity");  // end() on a non-object too
      auto count = j.find("permission_count");
      log::debug("{}: AUTH as {} ({} permissions)", options_.address,
                 identity != j.end() ? identity->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "\"\"",
                 count != j.end() && count->is_number_integer() ? count->get<std::int64_t>() : 0);
      return become_ready();
    }
    case stage::ready:
      break;
  }
  if (stage_ != stage::auth && identify_->is_object() && identify_->value("auth_required", false)) {
    if (options_.connection.auth_secret.empty()) {
      permanent_ = final_failure::auth_failed;
      fail("the broker requires AUTH; give the secret with --auth-secret-file or NSQ_AUTH_SECRET");
      return false;
    }
    stage_ = stage::auth;
    append_command(out_, "AUTH", options_.connection.auth_secret);
    flush();
    return true;
  }
  return become_ready();
}

bool client::compression_negotiated() const {
  return identify_->is_object() && (identify_->value("deflate", false) || identify_->value("snappy", false));
}

// From here on both directions are compressed; what follows in the buffer was already compressed
// by the broker, starting with an OK (as nsqd sends).
bool client::begin_compression() {
  if (!start_compression()) return false;
  stage_ = stage::upgraded;
  std::string rest = in_.substr(in_pos_);
  in_.resize(in_pos_);
  return decode_into_in(rest);
}

bool client::become_ready() {
  stage_ = stage::ready;
  impl_->timer.cancel();
  watchdog();
  if (handlers_.on_ready) handlers_.on_ready(*identify_);
  return !closed_;
}

bool client::handle_frame(const frame& f) {
  switch (f.type) {
    case frame_type::response:
      if (f.data == heartbeat_body) {
        send("NOP\n");
        return true;
      }
      if (!ready()) return handshake(f.data);
      if (handlers_.on_response) handlers_.on_response(f.data);
      return !closed_;
    case frame_type::error:
      if (!ready()) {
        if (stage_ == stage::auth) {
          std::string_view code = f.data.substr(0, f.data.find(' '));
          if (code == "E_AUTH_FAILED") permanent_ = final_failure::auth_failed;
          if (code == "E_UNAUTHORIZED") permanent_ = final_failure::unauthorized;
        }
        fail(fmt::format("{} failed: {}", stage_ == stage::auth ? "AUTH" : "IDENTIFY", f.data));
        return false;
      }
      if (handlers_.on_error) handlers_.on_error(f.data);
      return !closed_;
    case frame_type::message: {
      message_view m;
      if (!parse_message(f.data, m)) {
        fail("malformed message frame from the broker");
        return false;
      }
      if (handlers_.on_message) handlers_.on_message(m);
      return !closed_;
    }
  }
  fail("unknown frame type from the broker");
  return false;
}

// IDENTIFY was answered with tls_v1: the handshake, then the broker's "OK" inside TLS, then any
// compression (nsqd's order). Reading pauses until the handshake is done. Returns false: the
// caller stops reading frames.
bool client::start_tls() {
  if (!identify_->is_object() || !identify_->value("tls_v1", false)) {
    permanent_ = final_failure::tls;
    fail("the broker does not offer TLS (tls_v1 is not in its IDENTIFY response); nothing sent in plain text");
    return false;
  }
  if (in_pos_ != in_.size()) {
    fail("the broker sent data after its IDENTIFY response, before the TLS handshake");
    return false;
  }
  std::string host, port;
  split_address(options_.address, host, port);
  tls_ = std::make_unique<pipekit::net::tls_session>(impl_->socket, *options_.tls, false, host);
  tls_->async_handshake(options_.connect_timeout, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      // OpenSSL's verdicts (a certificate that does not verify, an alert from the broker) will not
      // change on a retry; a reset or a timeout might.
      if (ec.category() == net::error::get_ssl_category()) self->permanent_ = final_failure::tls;
      return self->fail("TLS handshake: " + self->tls_->describe(ec));
    }
    self->read_more();
  });
  return false;
}

bool client::start_compression() {
  const bool snappy = identify_->value("snappy", false);
  if (snappy && identify_->value("deflate", false)) {
    fail("the broker enabled both deflate and snappy");
    return false;
  }
  try {
    if (snappy) {
      codec_ = make_snappy_codec();
    } else {
      int level = identify_->value("deflate_level", 6);
      codec_ = make_deflate_codec(level < 1 || level > 9 ? 6 : level);
    }
  } catch (const std::exception& e) {
    fail(fmt::format("compression could not start: {}", e.what()));
    return false;
  }
  return true;
}

// False (and the connection failed) for a corrupt stream.
bool client::decode_into_in(std::string_view raw) {
  if (codec_.decoder->decode(raw, in_)) return true;
  fail(fmt::format("from the broker: {}", codec_.decoder->error()));
  return false;
}

// A broker that has said nothing for two heartbeat intervals is gone (nsqd closes a client
// after two missed heartbeats; this is the same rule from the other side).
void client::watchdog() {
  if (options_.heartbeat_interval.count() <= 0) return;
  impl_->timer.expires_after(options_.heartbeat_interval);
  impl_->timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_read_ > 2 * self->options_.heartbeat_interval) {
      return self->fail("no heartbeat from the broker");
    }
    self->watchdog();
  });
}

void client::fail(const std::string& why) {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  impl_->socket.close(ignored);
  impl_->timer.cancel();
  impl_->resolver.cancel();
  auto on_close = std::move(handlers_.on_close);
  handlers_ = {};
  if (on_close) on_close(why);
}

void client::close() {
  if (closed_) return;
  closed_ = true;
  handlers_ = {};
  boost::system::error_code ignored;
  impl_->socket.shutdown(tcp::socket::shutdown_both, ignored);
  impl_->socket.close(ignored);
  impl_->timer.cancel();
  impl_->resolver.cancel();
}

}  // namespace pipekit::nsq
