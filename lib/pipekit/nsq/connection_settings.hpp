#pragma once
// What a client negotiates with every broker it connects to, beyond the defaults: compression,
// AUTH's secret and TLS. One struct, held by client_flags (from the command line), publish_options,
// tail_options and client_options, so the settings travel whole, never field by field.
#include <string>

#include "pipekit/net/tls_options.hpp"

namespace pipekit::nsq {

struct connection_settings {
  int deflate_level = 0;    // 1..9: ask for deflate (raw, both ways) in IDENTIFY; 0: none
  bool snappy = false;      // ask for snappy (framing format, both ways) in IDENTIFY; not with deflate
  std::string auth_secret;  // sent with AUTH when the broker's IDENTIFY answer says auth_required
  // Enabled: ask for tls_v1 in IDENTIFY and upgrade every TCP connection (verified), or fail.
  net::tls_client_options tls;
};

}  // namespace pipekit::nsq
