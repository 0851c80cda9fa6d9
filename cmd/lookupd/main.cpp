// lookupd: an nsqlookupd-compatible discovery daemon. Flags (named as nsqlookupd's) and wiring
// only; the daemon is pipekit::lookup::server.
#include <chrono>
#include <stdexcept>
#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/lookup/server.hpp"

namespace {

constexpr std::string_view tool = "lookupd";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Discovery for NSQ: brokers register their topics and channels over TCP, consumers look them up over HTTP."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  pipekit::cli::add_config_flag(app);

  pipekit::lookup::options opts;
  app.add_option("--tcp-address", opts.tcp_address, "<addr>:<port> to listen on for brokers (TCP)")
      ->type_name("ADDR")->capture_default_str();
  app.add_option("--http-address", opts.http_address, "<addr>:<port> to listen on for HTTP clients")
      ->type_name("ADDR")->capture_default_str();
  app.add_option("--broadcast-address", opts.broadcast_address,
                 "Address of this lookupd node that IDENTIFY reports (default: the host name)")
      ->type_name("HOST");
  pipekit::cli::add_duration_option(app, "--inactive-producer-timeout", opts.inactive_producer_timeout,
                                    "How long a broker stays active since its last PING; silent longer, it is dropped");
  app.add_option("--max-connections", opts.max_connections,
                 "TCP connections served at once; more are closed (0: no limit; default: from ulimit -n)")
      ->check(CLI::NonNegativeNumber);
  pipekit::cli::add_duration_option(app, "--tombstone-lifetime", opts.tombstone_lifetime,
                                    "How long a tombstoned producer stays out of /lookup");

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    if (opts.inactive_producer_timeout <= std::chrono::milliseconds::zero())
      pipekit::fatal(pipekit::exit_code::usage, "--inactive-producer-timeout: must be more than 0");
    return pipekit::lookup::run(opts);
  });
}
