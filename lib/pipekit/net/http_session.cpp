#include "pipekit/net/http_session.hpp"

#include <openssl/ssl.h>

#include <algorithm>
#include <optional>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/buffer_traits.hpp>
#include <boost/beast/core/buffers_range.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/span_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <fmt/format.h>

#include "pipekit/util/base64.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using clock = std::chrono::steady_clock;
using error_code = beast::error_code;

constexpr std::size_t initial_body = 64 * 1024;  // a power of 2, so doubling meets a power-of-2 bound

// The answer's body, grown by doubling but never past its limit (std::string's own growth
// doubles past it: a 256 MiB answer must not take 512).
struct bounded_body {
  struct value_type {
    std::string text;
    std::size_t limit = 0;
  };
  class reader {
   public:
    template <bool is_request, class Fields>
    reader(http::header<is_request, Fields>&, value_type& b) : b_(b) {}
    void init(const boost::optional<std::uint64_t>& length, error_code& ec) {
      ec = {};
      b_.text.reserve(length ? static_cast<std::size_t>(std::min<std::uint64_t>(*length, b_.limit))
                             : std::min(initial_body, b_.limit));
    }
    template <class Buffers>
    std::size_t put(const Buffers& buffers, error_code& ec) {
      ec = {};
      std::string& s = b_.text;
      const std::size_t n = beast::buffer_bytes(buffers);
      if (s.capacity() - s.size() < n)
        s.reserve(std::max(std::min(std::max(2 * s.capacity(), initial_body), b_.limit), s.size() + n));
      for (auto b : beast::buffers_range_ref(buffers)) s.append(static_cast<const char*>(b.data()), b.size());
      return n;
    }
    void finish(error_code& ec) { ec = {}; }

   private:
    value_type& b_;
  };
};

using request = http::request<http::span_body<const char>>;
using response_parser = http::response_parser<bounded_body>;

// Whether a failure on a kept-alive connection means the server had closed it meanwhile (it may,
// at any time after an answer): then the request is sent again on a new connection, once.
bool closed_meanwhile(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == ssl::error::stream_truncated;
}

}  // namespace

struct http_session::impl {
  impl(std::string_view text, http_session_options o) : url(util::parse_url(text)), opts(o) {
    if (url.scheme != "http" && url.scheme != "https")
      throw std::invalid_argument(fmt::format("\"{}\": not an http:// or https:// URL", text));
    if (url.host.empty()) throw std::invalid_argument(fmt::format("\"{}\": no host", text));
    tls = url.scheme == "https";
    const bool ipv6 = url.host.find(':') != std::string::npos;
    host_header = ipv6 ? "[" + url.host + "]" : url.host;
    if (url.port != (tls ? 443 : 80)) host_header += fmt::format(":{}", url.port);
    if (!url.user.empty() || !url.password.empty()) {
      authorization = "Basic ";
      util::append_base64(authorization, url.user + ":" + url.password);
    }
    if (tls) {
      ssl_ctx.emplace(ssl::context::tls_client);
      ssl_ctx->set_default_verify_paths();
      ssl_ctx->set_verify_mode(ssl::verify_peer);
    }
  }

  bool open() const { return tls ? secure.has_value() : plain.has_value(); }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*secure) : *plain; }

  void close() {
    if (open()) {
      error_code ignored;
      lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
      lowest().close();
    }
    plain.reset();
    secure.reset();
    buffer.clear();
  }

  // Runs what was started until it completed (the stream's expiry bounds it).
  void run() {
    io.restart();
    io.run();
  }

  std::string failure(std::string_view what, const error_code& ec, std::chrono::milliseconds timeout) const {
    if (ec == beast::error::timeout) return fmt::format("{}: timed out after {} ms", what, timeout.count());
    return fmt::format("{}: {}", what, ec.message());
  }

  void connect(clock::time_point deadline, std::chrono::milliseconds timeout) {
    tcp::resolver resolver(io);
    error_code ec;
    auto endpoints = resolver.resolve(url.host, std::to_string(url.port), ec);
    if (ec) throw http_error(fmt::format("resolving {}: {}", url.host, ec.message()));
    if (tls) secure.emplace(io, *ssl_ctx);
    else plain.emplace(io);
    auto connect_deadline = deadline;
    if (opts.connect_timeout.count() > 0) {
      connect_deadline = std::min(deadline, clock::now() + opts.connect_timeout);
      timeout = std::min(timeout, opts.connect_timeout);
    }
    lowest().expires_at(connect_deadline);
    lowest().async_connect(endpoints, [&ec](error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) {
      close();
      throw http_error(failure("connecting", ec, timeout));
    }
    lowest().socket().set_option(tcp::no_delay(true), ec);
    if (!tls) return;
    if (!SSL_set_tlsext_host_name(secure->native_handle(), url.host.c_str())) {
      close();
      throw http_error("TLS: cannot set the server name");
    }
    secure->set_verify_callback(ssl::host_name_verification(url.host));
    secure->async_handshake(ssl::stream_base::client, [&ec](error_code e) { ec = e; });
    run();
    if (ec) {
      close();
      throw http_error(failure("TLS handshake", ec, timeout));
    }
  }

  template <class Stream>
  error_code exchange(Stream& s, request& req, response_parser& parser, bool& writing) {
    error_code ec;
    writing = true;
    http::async_write(s, req, [&ec](error_code e, std::size_t) { ec = e; });
    run();
    if (ec) return ec;
    writing = false;
    http::async_read(s, buffer, parser, [&ec](error_code e, std::size_t) { ec = e; });
    run();
    return ec;
  }

  http_answer post(std::string_view target, std::string_view content_type, std::string_view body,
                     std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    request req{http::verb::post, target.empty() ? url.target() : std::string(target), 11};
    req.set(http::field::host, host_header);
    req.set(http::field::content_type, content_type);
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    req.body() = {body.data(), body.size()};
    req.prepare_payload();
    for (int attempt = 0;; ++attempt) {
      const bool reused = open();
      if (!reused) connect(deadline, timeout);
      response_parser parser;
      parser.header_limit(64 * 1024);
      parser.body_limit(opts.max_body);
      parser.get().body().limit = opts.max_body;
      lowest().expires_at(deadline);
      bool writing = false;
      error_code ec = tls ? exchange(*secure, req, parser, writing) : exchange(*plain, req, parser, writing);
      if (!ec) {
        auto res = parser.release();
        if (!res.keep_alive()) close();
        return {static_cast<int>(res.result_int()), std::move(res.body().text)};
      }
      close();
      if (reused && attempt == 0 && !parser.got_some() && closed_meanwhile(ec)) continue;
      if (ec == http::error::body_limit)
        throw http_body_too_large(fmt::format("the answer is larger than {} bytes", opts.max_body));
      throw http_error(failure(writing ? "sending the request" : "reading the answer", ec, timeout));
    }
  }

  asio::io_context io;
  util::url url;
  http_session_options opts;
  bool tls = false;
  std::string host_header;
  std::string authorization;
  std::optional<ssl::context> ssl_ctx;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> secure;
  beast::flat_buffer buffer;
};

http_session::http_session(std::string_view url, http_session_options options)
    : impl_(std::make_unique<impl>(url, options)) {}

http_session::~http_session() = default;

http_answer http_session::post(std::string_view target, std::string_view content_type, std::string_view body,
                                 std::optional<std::chrono::milliseconds> timeout) {
  return impl_->post(target, content_type, body, timeout.value_or(impl_->opts.timeout));
}

void http_session::close() { impl_->close(); }

}  // namespace pipekit::net
