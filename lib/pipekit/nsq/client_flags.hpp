#pragma once
// The flags nsq-pub and nsq-tail share for every broker connection: compression, AUTH's secret
// and TLS (nsq_tail's and to_nsq's names), declared once.
#include <string>

#include "pipekit/nsq/connection_settings.hpp"

namespace CLI {
class App;
}

namespace pipekit::nsq {

struct client_flags {
  bool deflate = false;
  int deflate_level = 6;
  std::string auth_secret_file;
  connection_settings settings;  // --snappy and the --tls flags land here directly

  // After parsing: the settings to connect with: `settings` with the deflate level asked for (0
  // without --deflate) and AUTH's secret from --auth-secret-file, else NSQ_AUTH_SECRET, else ""
  // (exits 66 or 65 for an unreadable or empty file).
  connection_settings resolved() const;
};

// --deflate, --deflate-level, --snappy, --auth-secret-file, --tls, --tls-root-ca-file, --tls-cert,
// --tls-key, --tls-insecure-skip-verify, --tls-min-version.
void add_client_flags(CLI::App& app, client_flags& f);

}  // namespace pipekit::nsq
