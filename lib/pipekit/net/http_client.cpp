#include "pipekit/net/http_client.hpp"

#include <memory>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
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

class get_op : public std::enable_shared_from_this<get_op> {
 public:
  get_op(asio::io_context& io, std::function<void(http_get_result)> done)
      : resolver_(io), stream_(io), done_(std::move(done)) {}

  void start(std::string_view address, std::string_view target, const http_get_options& o) {
    std::string_view a = address;
    if (auto p = a.find("://"); p != std::string_view::npos) a.remove_prefix(p + 3);
    if (auto p = a.find('/'); p != std::string_view::npos) a = a.substr(0, p);
    util::host_port hp;
    try {
      hp = util::parse_host_port(a, 80);
    } catch (const std::exception& e) {
      return fail(e.what());
    }
    req_ = {http::verb::get, std::string(target), 11};
    req_.set(http::field::host, std::string(a));
    req_.set(http::field::connection, "close");
    if (!o.accept.empty()) req_.set(http::field::accept, o.accept);
    parser_.body_limit(o.max_body);
    stream_.expires_after(o.timeout);
    resolver_.async_resolve(hp.host, std::to_string(hp.port),
                            [self = shared_from_this()](beast::error_code ec, tcp::resolver::results_type r) {
                              if (ec) return self->fail(ec.message());
                              self->connect(r);
                            });
  }

 private:
  void connect(const tcp::resolver::results_type& r) {
    stream_.async_connect(r, [self = shared_from_this()](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return self->fail(ec == beast::error::timeout ? "timed out" : ec.message());
      http::async_write(self->stream_, self->req_, [self](beast::error_code ec2, std::size_t) {
        if (ec2) return self->fail(ec2 == beast::error::timeout ? "timed out" : ec2.message());
        http::async_read(self->stream_, self->buffer_, self->parser_, [self](beast::error_code ec3, std::size_t) {
          if (ec3 == http::error::body_limit) return self->fail("response too large");
          if (ec3) return self->fail(ec3 == beast::error::timeout ? "timed out" : ec3.message());
          auto res = self->parser_.release();
          self->finish({static_cast<int>(res.result_int()), std::move(res.body()), {}});
        });
      });
    });
  }
  void fail(std::string why) { finish({0, {}, std::move(why)}); }
  void finish(http_get_result r) {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();
    // Posted, so `done` never runs inside async_http_get itself (a parse error fails at once).
    asio::post(stream_.get_executor(), [done = std::move(done_), r = std::move(r)]() mutable { done(std::move(r)); });
  }

  tcp::resolver resolver_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> req_;
  http::response_parser<http::string_body> parser_;
  std::function<void(http_get_result)> done_;
};

}  // namespace

void async_http_get(asio::io_context& io, std::string_view address, std::string_view target,
                    const http_get_options& options, std::function<void(http_get_result)> done) {
  std::make_shared<get_op>(io, std::move(done))->start(address, target, options);
}

}  // namespace pipekit::net
