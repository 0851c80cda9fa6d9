#include "pipekit/net/http_connection.hpp"

#include <optional>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "pipekit/util/parse.hpp"

namespace pipekit::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;

struct http_connection::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& ctx, std::string address, http_connection_options o)
      : io(ctx), resolver(ctx), stream(ctx), opts(std::move(o)) {
    std::string_view a = address;
    if (auto p = a.find("://"); p != std::string_view::npos) a.remove_prefix(p + 3);
    if (auto p = a.find('/'); p != std::string_view::npos) a = a.substr(0, p);
    host_header = std::string(a);
    try {
      hp = util::parse_host_port(a, 80);
    } catch (const std::exception& e) {
      bad_address = e.what();
    }
  }

  void post(std::string target, std::string body, std::string content_type, std::function<void(http_result)> cb) {
    done = std::move(cb);
    ++generation;
    if (!bad_address.empty()) return finish({0, {}, bad_address});
    req = {http::verb::post, std::move(target), 11};
    req.set(http::field::host, host_header);
    req.set(http::field::content_type, content_type);
    if (!opts.authorization.empty()) req.set(http::field::authorization, opts.authorization);
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();
    stream.expires_after(opts.timeout);
    if (connected && clock::now() - last_used < opts.reuse_idle) return send();
    reset_socket();
    resolver.async_resolve(hp.host, std::to_string(hp.port),
                           [self = shared_from_this(), g = generation](beast::error_code ec, tcp::resolver::results_type r) {
                             if (g != self->generation) return;
                             if (ec) return self->fail(ec);
                             self->stream.async_connect(r, [self, g](beast::error_code ec2, const tcp::endpoint&) {
                               if (g != self->generation) return;
                               if (ec2) return self->fail(ec2);
                               self->connected = true;
                               self->stream.socket().set_option(tcp::no_delay(true));
                               self->send();
                             });
                           });
  }

  void send() {
    http::async_write(stream, req, [self = shared_from_this(), g = generation](beast::error_code ec, std::size_t) {
      if (g != self->generation) return;
      if (ec) return self->fail(ec);
      self->parser.emplace();
      self->parser->body_limit(self->opts.max_body);
      http::async_read(self->stream, self->buffer, *self->parser, [self, g](beast::error_code ec2, std::size_t) {
        if (g != self->generation) return;
        if (ec2 == http::error::body_limit) {
          self->reset_socket();
          return self->finish({0, {}, "response too large"});
        }
        if (ec2) return self->fail(ec2);
        auto res = self->parser->release();
        self->parser.reset();
        if (!res.keep_alive()) self->reset_socket();
        self->last_used = clock::now();
        self->finish({static_cast<int>(res.result_int()), std::move(res.body()), {}});
      });
    });
  }

  void fail(beast::error_code ec) {
    reset_socket();
    finish({0, {}, ec == beast::error::timeout ? std::string("timed out") : ec.message()});
  }

  void reset_socket() {
    beast::error_code ignored;
    if (stream.socket().is_open()) {
      stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
      stream.socket().close(ignored);
    }
    buffer.clear();
    connected = false;
  }

  void finish(http_result r) {
    ++generation;  // whatever is still pending belongs to a request that is over
    if (!done) return;
    auto cb = std::exchange(done, nullptr);
    asio::post(io, [cb = std::move(cb), r = std::move(r)]() mutable { cb(std::move(r)); });
  }

  asio::io_context& io;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  http_connection_options opts;
  util::host_port hp;
  std::string host_header;
  std::string bad_address;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
  std::function<void(http_result)> done;
  clock::time_point last_used{};
  std::uint64_t generation = 0;
  bool connected = false;
};

http_connection::http_connection(asio::io_context& io, std::string address, http_connection_options opts)
    : impl_(std::make_shared<impl>(io, std::move(address), std::move(opts))) {}

http_connection::~http_connection() { close(); }

void http_connection::post(std::string target, std::string body, std::string content_type,
                           std::function<void(http_result)> done) {
  impl_->post(std::move(target), std::move(body), std::move(content_type), std::move(done));
}

bool http_connection::busy() const { return static_cast<bool>(impl_->done); }

void http_connection::close() {
  impl_->resolver.cancel();
  impl_->reset_socket();
  impl_->finish({0, {}, "closed"});
}

}  // namespace pipekit::net
