#include "pipekit/net/http_client.hpp"

#include <memory>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>

#include "pipekit/util/parse.hpp"

namespace pipekit::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// One request: resolve, connect, write, read, each step's handler starting with `if (finished_)`.
// One timer bounds the whole exchange, name lookup included (the resolver has no deadline of its
// own); whichever comes first, the answer or the deadline, finishes the op exactly once.
class request_op : public std::enable_shared_from_this<request_op> {
 public:
  request_op(asio::io_context& io, std::function<void(http_result)> done)
      : resolver_(io), stream_(io), deadline_(io), done_(std::move(done)) {}

  void start(http::verb method, std::string_view address, std::string_view target, std::string body,
             std::string_view content_type, const http_options& o) {
    std::string_view a = address;
    if (auto p = a.find("://"); p != std::string_view::npos) a.remove_prefix(p + 3);
    if (auto p = a.find('/'); p != std::string_view::npos) a = a.substr(0, p);
    util::host_port hp;
    try {
      hp = util::parse_host_port(a, 80);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    req_ = {method, std::string(target), 11};
    req_.set(http::field::host, std::string(a));
    req_.set(http::field::connection, "close");
    if (!o.accept.empty()) req_.set(http::field::accept, o.accept);
    if (!o.authorization.empty()) req_.set(http::field::authorization, o.authorization);
    if (method == http::verb::post) {
      req_.set(http::field::content_type, content_type);
      req_.body() = std::move(body);
      req_.prepare_payload();
    }
    parser_.body_limit(o.max_body);
    deadline_.expires_after(o.timeout);
    deadline_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->fail("timed out");
    });
    resolver_.async_resolve(hp.host, std::to_string(hp.port),
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              if (self->finished_) return;
                              if (ec) return self->fail(ec.message());
                              self->connect(r);
                            });
  }

 private:
  void connect(const tcp::resolver::results_type& r) {
    stream_.async_connect(r, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (self->finished_) return;
      if (ec) return self->fail(ec.message());
      http::async_write(self->stream_, self->req_, [self](beast::error_code ec2, std::size_t) {
        if (self->finished_) return;
        if (ec2) return self->fail(ec2.message());
        http::async_read(self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec3, std::size_t) {
          if (self->finished_) return;
          if (ec3 == http::error::body_limit) return self->fail("response too large");
          if (ec3) return self->fail(ec3.message());
          auto res = self->parser_.release();
          self->finish({static_cast<int>(res.result_int()), std::move(res.body()), {}});
        });
      });
    });
  }
  void fail(std::string why) { finish({0, {}, std::move(why)}); }
  void finish(http_result r) {
    if (finished_) return;
    finished_ = true;
    deadline_.cancel();
    resolver_.cancel();
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    // Posted, so `done` never runs inside the call that started the op (a parse error fails at once).
    asio::post(stream_.get_executor(), [done = std::move(done_), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  asio::steady_timer deadline_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response_parser<http::string_body> parser_;
  std::function<void(http_result)> done_;
  bool finished_ = false;
};

}  // namespace

void async_http_get(asio::io_context& io, std::string_view address, std::string_view target,
                    const http_get_options& options, std::function<void(http_get_result)> done) {
  std::make_shared<request_op>(io, std::move(done))->start(http::verb::get, address, target, {}, {}, options);
}

void async_http_post(asio::io_context& io, std::string_view address, std::string_view target, std::string body,
                     std::string_view content_type, const http_options& options, std::function<void(http_result)> done) {
  std::make_shared<request_op>(io, std::move(done))
      ->start(http::verb::post, address, target, std::move(body), content_type, options);
}

}  // namespace pipekit::net
