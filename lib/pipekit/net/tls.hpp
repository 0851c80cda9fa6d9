#pragma once
// TLS over TCP for the daemons and clients: a context built once per program, and a session over
// a socket the owner keeps, so that a protocol can upgrade a connection in the middle (NSQ's V2
// after IDENTIFY, see broker/tls.cpp and nsq/client.cpp) or from its first byte.
// OpenSSL through boost::asio::ssl; its headers stay in tls.cpp.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/system/error_code.hpp>

#include "pipekit/net/tls_options.hpp"

struct ssl_st;  // OpenSSL's SSL
namespace boost::asio::ssl {
class context;
}

namespace pipekit::net {

// An OpenSSL context: certificates, keys, verification policy. Built once per program.
// Throws pipekit::option_error naming the option (tls_cert, tls_key, tls_root_ca_file,
// tls_min_version, tls_client_auth_policy: a program shows them as its flags) and the file:
// kind no_input (66) for a file that cannot be read, config (78) for one that is not what it
// should be.
class tls_context {
 public:
  static std::shared_ptr<tls_context> server(const tls_server_options& o);
  static std::shared_ptr<tls_context> client(const tls_client_options& o);
  ~tls_context();
  tls_context(const tls_context&) = delete;
  tls_context& operator=(const tls_context&) = delete;

  // For streams of one's own (Beast's ssl_stream): the context to construct them with.
  boost::asio::ssl::context& native() noexcept;

  struct impl;
  impl& get() noexcept { return *impl_; }
  const impl& get() const noexcept { return *impl_; }

 private:
  explicit tls_context(std::unique_ptr<impl> i);
  std::unique_ptr<impl> impl_;
};

// What a daemon's /stats shows of a connection (nsqd's names and spellings: "TLS1.2", IANA cipher names).
struct tls_state {
  std::string version;
  std::string cipher_suite;
  std::string negotiated_protocol;
  bool negotiated_protocol_is_mutual = false;
  std::string peer_common_name;  // the subject CN of the peer's certificate, when it sent one
};

// TLS over a TCP socket that the owner keeps (and closes): a handshake, then reads and writes.
// One read and one write may be outstanding at once; handlers run on the socket's executor.
class tls_session {
 public:
  using io_handler = std::function<void(const boost::system::error_code&, std::size_t)>;
  using done_handler = std::function<void(const boost::system::error_code&)>;

  // server: answer the handshake; otherwise start it, checking the certificate against host
  // (a DNS name or an IP address) unless the context skips verification.
  tls_session(boost::asio::ip::tcp::socket& socket, tls_context& ctx, bool server, const std::string& host = {});
  ~tls_session();
  tls_session(const tls_session&) = delete;
  tls_session& operator=(const tls_session&) = delete;

  // Closes the socket if the handshake has not finished within timeout.
  void async_handshake(std::chrono::milliseconds timeout, done_handler h);
  void async_read_some(boost::asio::mutable_buffer b, io_handler h);
  void async_write(boost::asio::const_buffer b, io_handler h);  // writes all of b

  tls_state state() const;
  // Why a handshake or read failed, in OpenSSL's words plus the certificate check's verdict
  // ("certificate verify failed: unable to get local issuer certificate").
  std::string describe(const boost::system::error_code& ec) const;

  struct impl;

 private:
  std::shared_ptr<impl> impl_;
};

// For a client connection on a stream of one's own (its native_handle()), before its handshake:
// SNI for a host name, and the certificate checked against host (a DNS name or an IP address)
// unless the context skips verification. tls_session does this itself.
void set_peer_host(ssl_st* ssl, const tls_context& ctx, const std::string& host);

// Why a handshake or read failed on such a stream: ec's message, plus the certificate check's
// verdict when it failed ("certificate verify failed: unable to get local issuer certificate").
std::string describe_failure(const ssl_st* ssl, const boost::system::error_code& ec);

}  // namespace pipekit::net
