#pragma once
// TLS settings of the daemons (nsq-broker, ws-push) and of the clients (nsq-pub, nsq-tail,
// ws-push connect), kept apart from tls.hpp (Asio, OpenSSL) so that the programs' option structs
// can hold them cheaply. The flag names are nsqd's, which every program copies.
#include <string>
#include <string_view>

namespace pipekit::net {

// nsqd's --tls-min-version names: tls1.0, tls1.1, tls1.2, tls1.3. pipekit's default is tls1.2.
inline constexpr std::string_view default_tls_min_version = "tls1.2";
bool valid_tls_min_version(std::string_view name);

// A server's side (nsqd's --tls-* flags).
struct tls_server_options {
  std::string cert_file;           // PEM certificate (chain); with key_file, enables TLS
  std::string key_file;            // PEM private key
  std::string root_ca_file;        // CAs that client certificates are verified against
  std::string client_auth_policy;  // "" (no client certificate asked), "require", "require-verify"
  std::string min_version{default_tls_min_version};
};

// A client's side (nsq-pub's --tls, --tls-root-ca-file, --tls-cert, --tls-key, ...).
struct tls_client_options {
  bool enabled = false;               // NSQ: ask for tls_v1 in IDENTIFY; refuse a broker that does not offer it
  std::string root_ca_file;           // empty: the system's store
  std::string cert_file;              // client certificate, for brokers that require one
  std::string key_file;
  bool insecure_skip_verify = false;  // no certificate or host name check (tests only)
  std::string min_version{default_tls_min_version};
  // --tls, or any flag that only means something with TLS (a CA, a client certificate, skipping
  // verification): TLS is never left off when the user named how to verify it.
  bool wanted() const noexcept { return enabled || !root_ca_file.empty() || !cert_file.empty() || insecure_skip_verify; }
};

}  // namespace pipekit::net
