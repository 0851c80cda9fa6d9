// nsq-broker's TLS: the options as nsqd reads them, and a connection's upgrade after IDENTIFY
// (nsqd's clientV2.UpgradeTLS): the IDENTIFY response in plain text, the server-side handshake
// (5 s at most, as nsqd), then an "OK" inside TLS, then any compression on top of TLS.
#include <algorithm>
#include <cctype>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/broker/server_internal.hpp"

namespace pipekit::broker {

namespace {
constexpr std::chrono::milliseconds handshake_timeout{5000};  // nsqd's tlsConn.SetDeadline
}  // namespace

bool parse_tls_required(std::string_view text, tls_required_mode& out) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "tcp-https") out = tls_required_mode::tcp_https;
  else if (s == "true" || s == "1" || s == "t") out = tls_required_mode::yes;
  else if (s == "false" || s == "0" || s == "f") out = tls_required_mode::no;
  else return false;
  return true;
}

void server::impl::load_tls() {
  // nsqd: a client certificate policy makes TLS required.
  if (!opts.tls_client_auth_policy.empty() && opts.tls_required == tls_required_mode::no)
    opts.tls_required = tls_required_mode::yes;
  if (opts.tls_cert.empty() && opts.tls_key.empty()) {
    if (opts.tls_required != tls_required_mode::no)
      throw option_error(option_error::kind::config, {"tls_cert", "tls_key"},
                         "cannot require TLS client connections without TLS key and cert ({}, {})");
    if (!opts.tls_root_ca_file.empty())
      throw option_error(option_error::kind::config, {"tls_root_ca_file", "tls_cert", "tls_key"}, "{} needs {} and {}");
    return;
  }
  net::tls_server_options o;
  o.cert_file = opts.tls_cert;
  o.key_file = opts.tls_key;
  o.root_ca_file = opts.tls_root_ca_file;
  o.client_auth_policy = opts.tls_client_auth_policy;
  o.min_version = opts.tls_min_version;
  tls = net::tls_context::server(o);
  log::info("TLS: offered to TCP clients (min {}{}{})", opts.tls_min_version,
            opts.tls_client_auth_policy.empty() ? "" : ", client certificates: ", opts.tls_client_auth_policy);
}

void connection::begin_tls() {
  tls_plain_.swap(out_);  // everything framed so far, the IDENTIFY response last, goes out in plain text
  out_.clear();
  tls_pending_ = true;
}

void connection::after_identify_tls(std::size_t parsed) {
  if (parsed < in_len_) {
    // A client waits for the IDENTIFY response before its ClientHello: bytes already here are not TLS.
    log::warn("TCP: client({}): data after IDENTIFY before the TLS handshake; closing", info.remote_address);
    return close();
  }
  in_len_ = 0;
  switch_input_ = false;  // deflate, if negotiated too, starts inside TLS: nothing to inflate yet
  flush();                // the plain response; then start_tls_handshake()
}

void connection::start_tls_handshake() {
  if (tls_ || closed_) return;
  log::debug("TCP: client({}): upgrading connection to TLS", info.remote_address);
  tls_ = std::make_unique<net::tls_session>(socket_, *b_.tls, true);
  tls_->async_handshake(handshake_timeout, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      // The client is told nothing more: a peer that cannot finish a handshake gets no plain text.
      log::warn("TCP: client({}): TLS handshake failed: {}", self->info.remote_address, self->tls_->describe(ec));
      return self->close();
    }
    self->tls_pending_ = false;
    self->info.tls = true;
    self->info.tls_info = self->tls_->state();
    log::debug("TCP: client({}): {} {}", self->info.remote_address, self->info.tls_info.version,
               self->info.tls_info.cipher_suite);
    self->flush();  // "OK", then whatever was framed meanwhile
    self->read();
  });
}

// nsqd's enforceTLSPolicy: any command but IDENTIFY, before TLS, is a fatal E_INVALID naming it.
bool connection::tls_refuses(std::string_view input) {
  auto nl = input.find('\n');
  if (nl == std::string_view::npos) return false;  // the parser waits for (or rejects) the line
  std::string_view line = input.substr(0, nl);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::string_view name = line.substr(0, line.find(' '));
  if (name == "IDENTIFY") return false;
  fail(client_error{"E_INVALID", "cannot " + std::string(name) + " in current state (TLS required)", true});
  return true;
}

}  // namespace pipekit::broker
