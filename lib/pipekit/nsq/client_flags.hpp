#pragma once
// The flags nsq-pub and nsq-tail share for every broker connection: compression, AUTH's secret
// and TLS (nsq_tail's and to_nsq's names), declared once.
#include <string>

#include "pipekit/net/tls_options.hpp"

namespace CLI {
class App;
}

namespace pipekit::nsq {

struct client_flags {
  bool deflate = false;
  int deflate_level = 6;
  bool snappy = false;
  std::string auth_secret_file;
  net::tls_client_options tls;

  // After parsing: the deflate level to ask for in IDENTIFY (0: none).
  int requested_deflate_level() const noexcept { return deflate ? deflate_level : 0; }
  // After parsing: AUTH's secret from --auth-secret-file, else NSQ_AUTH_SECRET, else "" (exits 66
  // or 65 for an unreadable or empty file).
  std::string auth_secret() const;
};

// --deflate, --deflate-level, --snappy, --auth-secret-file, --tls, --tls-root-ca-file, --tls-cert,
// --tls-key, --tls-insecure-skip-verify, --tls-min-version.
void add_client_flags(CLI::App& app, client_flags& f);

}  // namespace pipekit::nsq
