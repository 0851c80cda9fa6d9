#include "pipekit/nsq/client.hpp"

#include <unistd.h>
#include <zlib.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "pipekit/nsq/tls.hpp"
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

// Raw deflate both ways (RFC 1951, no zlib header), as nsqd and go-nsq use after IDENTIFY.
struct client::zstreams {
  z_stream def{};
  z_stream inf{};
  bool def_ok = false;
  bool inf_ok = false;
  ~zstreams() {
    if (def_ok) deflateEnd(&def);
    if (inf_ok) inflateEnd(&inf);
  }
};

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
  if (o.deflate_level > 0) {
    body["deflate"] = true;
    body["deflate_level"] = o.deflate_level;
  }
  return body;
}

client::client(net::io_context& io, client_options options, handlers h)
    : impl_(std::make_unique<impl>(io)), options_(std::move(options)), handlers_(std::move(h)) {}

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
    if (!ec && !self->ready_ && !self->closed_) self->fail("connect timed out");
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
  if (z_) {
    writing_.clear();
    auto& d = z_->def;
    d.next_in = reinterpret_cast<Bytef*>(out_.data());
    d.avail_in = static_cast<uInt>(out_.size());
    do {
      std::size_t old = writing_.size();
      std::size_t room = out_.size() / 2 + 1024;
      writing_.resize(old + room);
      d.next_out = reinterpret_cast<Bytef*>(writing_.data() + old);
      d.avail_out = static_cast<uInt>(room);
      ::deflate(&d, Z_SYNC_FLUSH);
      writing_.resize(old + room - d.avail_out);
    } while (d.avail_out == 0 || d.avail_in > 0);
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
  std::size_t old = in_.size();
  in_.resize(old + read_size);
  read_some(in_.data() + old, read_size,
                                [self = shared_from_this(), old](boost::system::error_code ec, std::size_t n) {
                                  self->in_.resize(old + n);
                                  if (self->closed_) return;
                                  if (ec && self->tls_ok_pending_ && ec.category() == net::error::get_ssl_category()) {
                                    // TLS 1.3: a broker that refuses the client certificate says so
                                    // after the client's side of the handshake has finished.
                                    self->permanent_ = true;
                                    return self->fail("TLS: " + self->tls_->describe(ec));
                                  }
                                  if (ec) {
                                    return self->fail(ec == net::error::eof ? "closed by the broker" : ec.message());
                                  }
                                  if (self->z_) {
                                    // Compressed: what was read goes through inflate into in_.
                                    std::string raw = self->in_.substr(old, n);
                                    self->in_.resize(old);
                                    if (!self->inflate_into_in(raw)) return self->fail("bad deflate stream from the broker");
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

bool client::handle_frame(const frame& f) {
  switch (f.type) {
    case frame_type::response:
      if (f.data == heartbeat_body) {
        send("NOP\n");
        return true;
      }
      if (!ready_) {
        if (tls_ok_pending_) {  // the first frame inside TLS
          tls_ok_pending_ = false;
          if (f.data != "OK") {
            fail(fmt::format("TLS: the broker answered \"{}\" where OK was due", f.data));
            return false;
          }
        } else {
          identify_ = nlohmann::json::object();
          if (!f.data.empty() && f.data.front() == '{') {
            identify_ = nlohmann::json::parse(f.data, nullptr, false);
            if (identify_.is_discarded()) {
              fail("IDENTIFY answered with invalid JSON");
              return false;
            }
          }
          if (options_.tls) return start_tls();
        }
        ready_ = true;
        if (identify_.is_object() && identify_.value("deflate", false)) {
          // From here on both directions are compressed; what follows the response in the
          // buffer was already compressed by the broker.
          int level = identify_.value("deflate_level", 6);
          if (!start_compression(level < 1 || level > 9 ? 6 : level)) {
            fail("deflate could not start");
            return false;
          }
          std::string rest = in_.substr(in_pos_);
          in_.resize(in_pos_);
          if (!inflate_into_in(rest)) {
            fail("bad deflate stream from the broker");
            return false;
          }
        }
        impl_->timer.cancel();
        watchdog();
        if (handlers_.on_ready) handlers_.on_ready(identify_);
        return !closed_;
      }
      if (handlers_.on_response) handlers_.on_response(f.data);
      return !closed_;
    case frame_type::error:
      if (!ready_) {
        fail(fmt::format("IDENTIFY failed: {}", f.data));
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
  if (!identify_.is_object() || !identify_.value("tls_v1", false)) {
    permanent_ = true;
    fail("the broker does not offer TLS (tls_v1 is not in its IDENTIFY response); nothing sent in plain text");
    return false;
  }
  if (in_pos_ != in_.size()) {
    fail("the broker sent data after its IDENTIFY response, before the TLS handshake");
    return false;
  }
  std::string host, port;
  split_address(options_.address, host, port);
  tls_ = std::make_unique<tls_session>(impl_->socket, *options_.tls, false, host);
  tls_->async_handshake(options_.connect_timeout, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      // OpenSSL's verdicts (a certificate that does not verify, an alert from the broker) will not
      // change on a retry; a reset or a timeout might.
      self->permanent_ = ec.category() == net::error::get_ssl_category();
      return self->fail("TLS handshake: " + self->tls_->describe(ec));
    }
    self->tls_ok_pending_ = true;
    self->read_more();
  });
  return false;
}

bool client::start_compression(int level) {
  z_ = std::make_unique<zstreams>();
  z_->def_ok = deflateInit2(&z_->def, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  z_->inf_ok = inflateInit2(&z_->inf, -15) == Z_OK;
  return z_->def_ok && z_->inf_ok;
}

bool client::inflate_into_in(std::string_view raw) {
  auto& z = z_->inf;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
  z.avail_in = static_cast<uInt>(raw.size());
  while (z.avail_in > 0) {
    std::size_t old = in_.size();
    std::size_t room = std::max<std::size_t>(raw.size() * 4, 64 * 1024);
    in_.resize(old + room);
    z.next_out = reinterpret_cast<Bytef*>(in_.data() + old);
    z.avail_out = static_cast<uInt>(room);
    int rc = ::inflate(&z, Z_SYNC_FLUSH);
    in_.resize(old + room - z.avail_out);
    if (rc != Z_OK && rc != Z_BUF_ERROR && rc != Z_STREAM_END) return false;
    if (rc == Z_BUF_ERROR && z.avail_out != 0) break;
  }
  return true;
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
