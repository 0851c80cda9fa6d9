#include <CLI/CLI.hpp>

#include "pipekit/nsq/tls_options.hpp"

namespace pipekit::nsq {

void add_tls_client_flags(CLI::App& app, tls_client_options& o) {
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
