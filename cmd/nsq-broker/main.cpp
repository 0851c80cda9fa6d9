// nsq-broker: an nsqd-compatible message broker. Flags and wiring only; the broker is
// lib/pipekit/broker/server.hpp.
#include <cstdint>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "pipekit/broker/server.hpp"
#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/util/parse.hpp"

namespace {
constexpr std::string_view tool = "nsq-broker";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"An nsqd-compatible message broker: NSQ's TCP protocol V2 and HTTP API."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  pipekit::cli::add_config_flag(app);

  pipekit::broker::options o;
  app.add_option("--tcp-address", o.tcp_address, "<addr>:<port> to listen on for TCP clients")->capture_default_str();
  app.add_option("--http-address", o.http_address, "<addr>:<port> to listen on for HTTP clients")
      ->capture_default_str();
  app.add_option("--broadcast-address", o.broadcast_address,
                 "address registered with lookupd (default: the TCP listen IP, 127.0.0.1 for any)");
  app.add_option("--lookupd-tcp-address", o.lookupd_tcp_addresses, "lookupd TCP address (may be given multiple times)");
  app.add_option("--auth-http-address", o.auth_http_addresses,
                 "<addr>:<port> or a full url to query auth server (may be given multiple times)");
  app.add_option("--data-path", o.data_path, "path to store disk-backed messages");
  app.add_flag("--durable", o.durable,
               "answer OK to PUB/MPUB/DPUB (and HTTP /pub, /mpub) only once the message is fsynced (needs --data-path)");
  app.add_option("--mem-queue-size", o.mem_queue_size, "number of messages to keep in memory (per topic/channel)")
      ->capture_default_str()
      ->check(pipekit::cli::whole_number(0, INT64_MAX));
  // NSQ's sizes are 32-bit signed on the wire (and in the disk queue's records).
  app.add_option("--max-msg-size", o.max_msg_size, "maximum size of a single message in bytes")
      ->capture_default_str()
      ->check(pipekit::cli::whole_number(1, INT32_MAX - 26));  // the disk record holds 26 bytes more
  app.add_option("--max-body-size", o.max_body_size, "maximum size of a single command body")
      ->capture_default_str()
      ->check(pipekit::cli::whole_number(1, INT32_MAX));
  app.add_option("--max-rdy-count", o.max_rdy_count, "maximum RDY count for a client")
      ->capture_default_str()
      ->check(pipekit::cli::whole_number(1, INT64_MAX));
  app.add_option("--max-connections", o.max_connections,
                 "TCP clients served at once; more are refused (0: no limit; default: from ulimit -n)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--sync-every", o.sync_every, "number of messages per diskqueue fsync")
      ->capture_default_str()
      ->check(pipekit::cli::whole_number(1, INT64_MAX));
  pipekit::cli::add_duration_option(app, "--sync-timeout", o.sync_timeout, "duration of time per diskqueue fsync");
  pipekit::cli::add_duration_option(app, "--msg-timeout", o.msg_timeout,
                                    "default duration to wait before auto-requeing a message");
  pipekit::cli::add_duration_option(app, "--max-msg-timeout", o.max_msg_timeout,
                                    "maximum duration before a message will timeout");
  pipekit::cli::add_duration_option(app, "--max-req-timeout", o.max_req_timeout,
                                    "maximum requeuing timeout for a message");
  pipekit::cli::add_duration_option(app, "--max-heartbeat-interval", o.max_heartbeat_interval,
               "maximum client configurable duration of time between client heartbeats");
  pipekit::cli::add_duration_option(app, "--msg-ttl", o.msg_ttl,
                                    "drop messages older than this instead of delivering them (0: never)");
  app.add_option_function<std::vector<std::string>>(
         "--topic-msg-ttl",
         [&o](const std::vector<std::string>& specs) {
           for (const auto& spec : specs) try {
               pipekit::broker::add_topic_msg_ttl(o, spec);
             } catch (const std::invalid_argument& e) {
               throw CLI::ValidationError("--topic-msg-ttl", spec + ": " + e.what());
             }
         },
         "--msg-ttl for one topic, overriding it (may be given multiple times; 0: never)")
      ->type_name("TOPIC=DURATION");
  std::string overflow = "hold";
  app.add_option("--ephemeral-overflow", overflow,
                 "a full #ephemeral channel (--mem-queue-size): hold messages in the topic until it drains, or drop them (counted)")
      ->check(CLI::IsMember({"hold", "drop"}))
      ->type_name("hold|drop")
      ->capture_default_str();

  // TLS (nsqd's flags). Keys and certificates are named by file, never given on the command line.
  app.add_option("--tls-cert", o.tls_cert, "path to certificate file (PEM); with --tls-key, TCP clients may negotiate TLS");
  app.add_option("--tls-key", o.tls_key, "path to key file (PEM)");
  app.add_option("--tls-root-ca-file", o.tls_root_ca_file, "path to certificate authority file (verifies client certificates)");
  app.add_option("--tls-client-auth-policy", o.tls_client_auth_policy,
                 "client certificate auth policy ('require' or 'require-verify'); makes TLS required")
      ->check(CLI::IsMember({"require", "require-verify"}));
  std::string tls_required;
  auto* tls_required_flag =
      app.add_option("--tls-required", tls_required,
                     "require TLS for client connections (true, false, tcp-https; alone: true; default: false)")
          ->expected(0, 1);
  app.add_option("--tls-min-version", o.tls_min_version,
                 "minimum TLS version acceptable ('tls1.0', 'tls1.1', 'tls1.2' or 'tls1.3')")
      ->capture_default_str()
      ->check(CLI::IsMember({"tls1.0", "tls1.1", "tls1.2", "tls1.3"}));

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    if (tls_required_flag->count() > 0 && tls_required.empty()) tls_required = "true";  // a bare --tls-required
    if (tls_required_flag->count() > 0 && !pipekit::broker::parse_tls_required(tls_required, o.tls_required))
      pipekit::fatal(pipekit::exit_code::usage, "--tls-required {}: want true, false or tcp-https", tls_required);
    o.ephemeral_overflow_policy =
        overflow == "drop" ? pipekit::broker::ephemeral_overflow::drop : pipekit::broker::ephemeral_overflow::hold;
    return pipekit::broker::run(o);
  });
}
