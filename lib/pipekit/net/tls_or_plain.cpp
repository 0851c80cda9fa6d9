#include "pipekit/net/tls_or_plain.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/beast/websocket/teardown.hpp>

namespace pipekit::net {

template <class Next>
void tls_or_plain<Next>::read_erased(const buffer_list<boost::asio::mutable_buffer>& b, io_handler h) {
  if (auto* t = tls()) t->async_read_some(b, std::move(h));
  else std::get<0>(s_).async_read_some(b, std::move(h));
}

template <class Next>
void tls_or_plain<Next>::write_erased(const buffer_list<boost::asio::const_buffer>& b, io_handler h) {
  if (auto* t = tls()) t->async_write_some(b, std::move(h));
  else std::get<0>(s_).async_write_some(b, std::move(h));
}

template <class Next>
void tls_or_plain<Next>::teardown_erased(boost::beast::role_type role, boost::beast::error_code& ec) {
  using boost::beast::websocket::teardown;
  if (auto* t = tls()) teardown(role, *t, ec);
  else teardown(role, std::get<0>(s_), ec);
}

template <class Next>
void tls_or_plain<Next>::async_teardown_erased(boost::beast::role_type role, io_handler h) {
  using boost::beast::websocket::async_teardown;
  const auto ex = h.get_executor();
  auto done = boost::asio::bind_executor(ex, [h = std::move(h)](boost::beast::error_code ec) mutable { h(ec, 0); });
  if (auto* t = tls()) async_teardown(role, *t, std::move(done));
  else async_teardown(role, std::get<0>(s_), std::move(done));
}

template class tls_or_plain<boost::asio::ip::tcp::socket>;
template class tls_or_plain<boost::beast::tcp_stream>;

}  // namespace pipekit::net
