#include "pipekit/nsq/client_flags.hpp"

#include <CLI/CLI.hpp>

#include "pipekit/cli/app.hpp"

namespace pipekit::nsq {

connection_settings client_flags::resolved() const {
  connection_settings s = settings;
  s.deflate_level = deflate ? deflate_level : 0;
  s.auth_secret = cli::read_secret(auth_secret_file, "NSQ_AUTH_SECRET", "--auth-secret-file");
  return s;
}

void add_client_flags(CLI::App& app, client_flags& f) {
  auto* deflate = app.add_flag("--deflate", f.deflate, "Negotiate deflate compression in IDENTIFY (TCP connections)");
  app.add_option("--deflate-level", f.deflate_level, "Deflate level asked for (1-9; the broker may cap it)")
      ->check(CLI::Range(1, 9))
      ->default_str("6");
  app.add_flag("--snappy", f.settings.snappy, "Negotiate snappy compression in IDENTIFY (TCP connections)")->excludes(deflate);
  app.add_option("--auth-secret-file", f.auth_secret_file,
                 "File holding the secret for AUTH, when the broker requires it (else env NSQ_AUTH_SECRET)");
  net::tls_client_options& o = f.settings.tls;
  app.add_flag("--tls", o.enabled, "Negotiate TLS with the broker (IDENTIFY tls_v1); refuse one that does not offer it");
  app.add_option("--tls-root-ca-file", o.root_ca_file,
                 "CA certificates (PEM) to verify the broker's certificate against (default: the system's store); "
                 "implies --tls");
  app.add_option("--tls-cert", o.cert_file, "Client certificate (PEM) for brokers that require one; implies --tls");
  app.add_option("--tls-key", o.key_file, "Private key (PEM file) of --tls-cert");
  app.add_flag("--tls-insecure-skip-verify", o.insecure_skip_verify,
               "Do not verify the broker's certificate or host name (insecure; tests only); implies --tls");
  app.add_option("--tls-min-version", o.min_version, "Minimum TLS version: tls1.0, tls1.1, tls1.2 or tls1.3")
      ->capture_default_str()
      ->check(CLI::IsMember({"tls1.0", "tls1.1", "tls1.2", "tls1.3"}));
}

}  // namespace pipekit::nsq
