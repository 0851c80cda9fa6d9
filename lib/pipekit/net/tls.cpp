#include "pipekit/net/tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <boost/asio/ip/address.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>

#include "pipekit/cli/error.hpp"

namespace pipekit::net {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

namespace {

int protocol_version(std::string_view name) {
  if (name == "tls1.0") return TLS1_VERSION;
  if (name == "tls1.1") return TLS1_1_VERSION;
  if (name == "tls1.2") return TLS1_2_VERSION;
  if (name == "tls1.3") return TLS1_3_VERSION;
  return 0;
}

// OpenSSL's reasons for the last failures, oldest first ("no certificate or crl found").
std::string openssl_errors() {
  std::string out;
  while (unsigned long e = ERR_get_error()) {
    const char* r = ERR_reason_error_string(e);
    if (!out.empty()) out += "; ";
    out += r ? r : "unknown error";
  }
  return out.empty() ? "not understood" : out;
}

using kind = option_error::kind;

// Option names (tls_cert), as option_error takes them: a program shows its flags (--tls-cert).
// A file the option names must be readable before OpenSSL is asked to parse it, so that a missing
// file (66) and a malformed one (78) end differently.
void must_read(const char* option, const std::string& file) {
  std::ifstream f(file);
  if (!f) throw option_error(kind::no_input, {option}, fmt::format("{{}} {}: cannot read: {}", file, std::strerror(errno)));
}

void set_min_version(ssl::context& ctx, const std::string& name) {
  int v = protocol_version(name);
  if (v == 0)
    throw option_error(kind::config, {"tls_min_version"},
                       fmt::format("{{}} {}: want tls1.0, tls1.1, tls1.2 or tls1.3", name));
  SSL_CTX_set_min_proto_version(ctx.native_handle(), v);
}

void load_verify_file(ssl::context& ctx, const std::string& file) {
  must_read("tls_root_ca_file", file);
  ERR_clear_error();
  if (SSL_CTX_load_verify_locations(ctx.native_handle(), file.c_str(), nullptr) != 1)
    throw option_error(kind::config, {"tls_root_ca_file"},
                       fmt::format("{{}} {}: no PEM certificate read: {}", file, openssl_errors()));
}

void load_cert_and_key(ssl::context& ctx, const std::string& cert, const std::string& key) {
  must_read("tls_cert", cert);
  must_read("tls_key", key);
  ERR_clear_error();
  if (SSL_CTX_use_certificate_chain_file(ctx.native_handle(), cert.c_str()) != 1)
    throw option_error(kind::config, {"tls_cert"}, fmt::format("{{}} {}: not a PEM certificate: {}", cert, openssl_errors()));
  const auto mismatch = [&] {
    return option_error(kind::config, {"tls_key", "tls_cert"}, fmt::format("{{}} {} does not match {{}} {}", key, cert));
  };
  if (SSL_CTX_use_PrivateKey_file(ctx.native_handle(), key.c_str(), SSL_FILETYPE_PEM) != 1) {
    if (ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH) throw mismatch();
    throw option_error(kind::config, {"tls_key"}, fmt::format("{{}} {}: not a PEM private key: {}", key, openssl_errors()));
  }
  if (SSL_CTX_check_private_key(ctx.native_handle()) != 1) throw mismatch();
}

// "require": any client certificate will do (Go's RequireAnyClientCert), so the chain is not checked.
int accept_any_certificate(int, X509_STORE_CTX*) { return 1; }

}  // namespace

bool valid_tls_min_version(std::string_view name) { return protocol_version(name) != 0; }

struct tls_context::impl {
  explicit impl(ssl::context::method m) : ctx(m) {}
  ssl::context ctx;
  bool verify_host = false;
};

tls_context::tls_context(std::unique_ptr<impl> i) : impl_(std::move(i)) {}
tls_context::~tls_context() = default;
ssl::context& tls_context::native() noexcept { return impl_->ctx; }

std::shared_ptr<tls_context> tls_context::server(const tls_server_options& o) {
  if (o.cert_file.empty() || o.key_file.empty())
    throw option_error(kind::config, {"tls_cert", "tls_key"}, "{} and {} go together; both name PEM files");
  auto i = std::make_unique<impl>(ssl::context::tls_server);
  ssl::context& ctx = i->ctx;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::single_dh_use);
  set_min_version(ctx, o.min_version);
  load_cert_and_key(ctx, o.cert_file, o.key_file);
  if (!o.root_ca_file.empty()) {
    load_verify_file(ctx, o.root_ca_file);
    // Tells clients which CAs their certificate should come from.
    if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(o.root_ca_file.c_str()))
      SSL_CTX_set_client_CA_list(ctx.native_handle(), names);
  } else if (o.client_auth_policy == "require-verify") {
    ctx.set_default_verify_paths();
  }
  static const unsigned char session_context[] = "pipekit";
  SSL_CTX_set_session_id_context(ctx.native_handle(), session_context, sizeof session_context - 1);
  if (o.client_auth_policy.empty()) {
    ctx.set_verify_mode(ssl::verify_none);
  } else if (o.client_auth_policy == "require") {
    SSL_CTX_set_verify(ctx.native_handle(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, accept_any_certificate);
  } else if (o.client_auth_policy == "require-verify") {
    ctx.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    throw option_error(kind::config, {"tls_client_auth_policy"},
                       fmt::format("{{}} {}: want require or require-verify", o.client_auth_policy));
  }
  return std::shared_ptr<tls_context>(new tls_context(std::move(i)));
}

std::shared_ptr<tls_context> tls_context::client(const tls_client_options& o) {
  if (o.cert_file.empty() != o.key_file.empty())
    throw option_error(kind::usage, {"tls_cert", "tls_key"}, "{} and {} go together; both name PEM files");
  auto i = std::make_unique<impl>(ssl::context::tls_client);
  ssl::context& ctx = i->ctx;
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3);
  set_min_version(ctx, o.min_version);
  if (!o.cert_file.empty()) load_cert_and_key(ctx, o.cert_file, o.key_file);
  if (o.insecure_skip_verify) {
    ctx.set_verify_mode(ssl::verify_none);
  } else {
    if (!o.root_ca_file.empty()) load_verify_file(ctx, o.root_ca_file);
    else ctx.set_default_verify_paths();
    ctx.set_verify_mode(ssl::verify_peer);
    i->verify_host = true;
  }
  return std::shared_ptr<tls_context>(new tls_context(std::move(i)));
}

// --- a session -------------------------------------------------------------------------------

struct tls_session::impl {
  impl(tcp::socket& s, ssl::context& c) : socket(s), stream(s, c), timer(s.get_executor()) {}
  tcp::socket& socket;
  ssl::stream<tcp::socket&> stream;
  asio::steady_timer timer;
  bool server = false;
  bool timed_out = false;
};

void set_peer_host(SSL* s, const tls_context& ctx, const std::string& host) {
  if (host.empty()) return;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(host, ec);
  if (ec) SSL_set_tlsext_host_name(s, host.c_str());  // SNI: names only, never addresses (RFC 6066)
  if (!ctx.get().verify_host) return;
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s), ip.to_string().c_str());
  } else {
    SSL_set_hostflags(s, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(s, host.c_str());
  }
}

std::string describe_failure(const SSL* s, const boost::system::error_code& ec) {
  std::string why = ec.message();
  long v = SSL_get_verify_result(s);
  if (v != X509_V_OK) why += std::string(": ") + X509_verify_cert_error_string(v);
  return why;
}

tls_session::tls_session(tcp::socket& socket, tls_context& ctx, bool server, const std::string& host)
    : impl_(std::make_shared<impl>(socket, ctx.get().ctx)) {
  impl_->server = server;
  if (!server) set_peer_host(impl_->stream.native_handle(), ctx, host);
}

tls_session::~tls_session() {
  boost::system::error_code ignored;
  impl_->timer.cancel();
}

void tls_session::async_handshake(std::chrono::milliseconds timeout, done_handler h) {
  std::weak_ptr<impl> w = impl_;
  impl_->timer.expires_after(timeout);
  impl_->timer.async_wait([w](const boost::system::error_code& ec) {
    auto i = w.lock();
    if (ec || !i) return;
    i->timed_out = true;
    boost::system::error_code ignored;
    i->socket.close(ignored);  // the handshake ends with operation_aborted
  });
  impl_->stream.async_handshake(impl_->server ? ssl::stream_base::server : ssl::stream_base::client,
                                [i = impl_, h = std::move(h)](const boost::system::error_code& ec) {
                                  i->timer.cancel();
                                  h(ec);
                                });
}

void tls_session::async_read_some(asio::mutable_buffer b, io_handler h) {
  impl_->stream.async_read_some(b, std::move(h));
}

void tls_session::async_write(asio::const_buffer b, io_handler h) { asio::async_write(impl_->stream, b, std::move(h)); }

tls_state tls_session::state() const {
  tls_state st;
  SSL* s = impl_->stream.native_handle();
  switch (SSL_version(s)) {
    case TLS1_VERSION: st.version = "TLS1.0"; break;
    case TLS1_1_VERSION: st.version = "TLS1.1"; break;
    case TLS1_2_VERSION: st.version = "TLS1.2"; break;
    case TLS1_3_VERSION: st.version = "TLS1.3"; break;
    default: st.version = "Unknown " + std::to_string(SSL_version(s));
  }
  if (const SSL_CIPHER* c = SSL_get_current_cipher(s)) {
    const char* name = SSL_CIPHER_standard_name(c);  // IANA names, as Go's tls.CipherSuiteName
    st.cipher_suite = name ? name : SSL_CIPHER_get_name(c);
  }
  const unsigned char* alpn = nullptr;
  unsigned int alpn_len = 0;
  SSL_get0_alpn_selected(s, &alpn, &alpn_len);
  if (alpn) st.negotiated_protocol.assign(reinterpret_cast<const char*>(alpn), alpn_len);
  st.negotiated_protocol_is_mutual = true;  // Go: "Deprecated: this value is always true"
  if (X509* peer = SSL_get1_peer_certificate(s)) {  // as nsqd passes it to the auth server
    char cn[256];
    int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof cn);
    if (n > 0) st.peer_common_name.assign(cn, static_cast<std::size_t>(n));
    X509_free(peer);
  }
  return st;
}

std::string tls_session::describe(const boost::system::error_code& ec) const {
  if (impl_->timed_out) return "TLS handshake timed out";
  return describe_failure(impl_->stream.native_handle(), ec);
}

}  // namespace pipekit::net
