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
#include "pipekit/util/parse.hpp"

namespace {

constexpr std::string_view tool = "lookupd";

std::chrono::milliseconds duration_flag(std::string_view flag, const std::string& text) {
  try {
    return std::chrono::duration_cast<std::chrono::milliseconds>(pipekit::util::parse_duration(text));
  } catch (const std::invalid_argument& e) {
    pipekit::fatal(pipekit::exit_code::usage, "{}: {}", flag, e.what());
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Discovery for NSQ: brokers register their topics and channels over TCP, consumers look them up over HTTP."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  pipekit::cli::add_config_flag(app);

  pipekit::lookup::options opts;
  std::string inactive = "5m", tombstone = "45s";
  app.add_option("--tcp-address", opts.tcp_address, "<addr>:<port> to listen on for brokers (TCP)")
      ->type_name("ADDR")->capture_default_str();
  app.add_option("--http-address", opts.http_address, "<addr>:<port> to listen on for HTTP clients")
      ->type_name("ADDR")->capture_default_str();
  app.add_option("--broadcast-address", opts.broadcast_address,
                 "Address of this lookupd node that IDENTIFY reports (default: the host name)")
      ->type_name("HOST");
  app.add_option("--inactive-producer-timeout", inactive,
                 "How long a broker stays active since its last PING; silent longer, it is dropped")
      ->type_name("DURATION")->capture_default_str();
  app.add_option("--tombstone-lifetime", tombstone, "How long a tombstoned producer stays out of /lookup")
      ->type_name("DURATION")->capture_default_str();

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    opts.inactive_producer_timeout = duration_flag("--inactive-producer-timeout", inactive);
    opts.tombstone_lifetime = duration_flag("--tombstone-lifetime", tombstone);
    if (opts.inactive_producer_timeout <= std::chrono::milliseconds::zero())
      pipekit::fatal(pipekit::exit_code::usage, "--inactive-producer-timeout: must be more than 0");
    return pipekit::lookup::run(opts);
  });
}
