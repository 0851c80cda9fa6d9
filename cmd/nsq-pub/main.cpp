// nsq-pub: publish lines to NSQ (nsq's to_nsq, with batching, several brokers and nothing lost).
// Flags and wiring only; the work is in lib/pipekit/nsq/publisher.
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <string_view>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/nsq/client_flags.hpp"
#include "pipekit/nsq/publisher.hpp"

namespace {
constexpr std::string_view tool = "nsq-pub";

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Publish lines (JSON by default) to NSQ topics; each line is acknowledged by its broker or "
               "reported as a reject."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);

  pipekit::nsq::publish_options o;
  std::chrono::milliseconds defer{0};
  std::string mode = "round-robin";
  app.add_option("inputs", o.inputs, "Files to read, in order; - is stdin (default: stdin)");
  app.add_option("-t,--topic", o.topic, "Topic to publish to")->envname("NSQ_TOPIC");
  app.add_option("--topic-pointer", o.topic_pointer, "JSON Pointer to each line's topic, e.g. /topic");
  app.add_option("--body-pointer", o.body_pointer, "JSON Pointer to the part of each line to publish");
  app.add_option("-m,--message", o.message, "Publish this one message instead of reading lines");
  app.add_option("--nsqd-tcp-address", o.nsqd_tcp_addresses, "Broker TCP address host:port (repeatable)")
      ->allow_extra_args(false)
      ->envname("NSQD_TCP_ADDRESS")
      ->default_str("127.0.0.1:4150");
  auto* http_flag = app.add_option("--nsqd-http-address", o.nsqd_http_addresses,
                                   "Broker HTTP address host:port, for nsqd's /pub and /mpub (repeatable)")
                        ->allow_extra_args(false);
  app.add_option("--mode", mode, "Several brokers: round-robin, failover or all (every message to each)")
      ->check(CLI::IsMember({"round-robin", "failover", "all"}))
      ->default_str("round-robin");
  app.add_option("--batch-size", o.batch_size, "Messages per MPUB")->check(CLI::Range(1, 100000))->default_str("200");
  pipekit::cli::add_duration_option(app, "--batch-timeout", o.batch_timeout, "Longest a partial batch waits");
  app.add_option("--in-flight", o.in_flight, "Commands awaiting an answer per connection")
      ->check(CLI::Range(1, 10000))
      ->default_str("8");
  auto* defer_flag = pipekit::cli::add_duration_option(app, "--defer", defer, "Deliver after this delay (DPUB), e.g. 30s")
                         ->default_str("");
  app.add_option("--rate", o.rate, "Messages per second at most (0: no limit)")->check(CLI::NonNegativeNumber);
  app.add_flag("--raw", o.raw, "Publish lines as they are (default: each must be valid JSON)");
  app.add_option("--rejects", o.rejects_path, "Write rejected lines to FILE as JSON Lines (they are always logged)");
  pipekit::cli::add_duration_option(app, "--retry-timeout", o.retry_timeout, "Give up on a message not published within this");
  pipekit::cli::add_duration_option(app, "--connect-timeout", o.connect_timeout, "Timeout for each connection attempt");
  pipekit::nsq::client_flags conn;
  pipekit::nsq::add_client_flags(app, conn);
  app.add_flag("--stats", o.stats, "Print counts and the rate to stderr at the end");

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    if (o.message && !o.inputs.empty()) pipekit::fatal(pipekit::exit_code::usage, "--message and input files exclude each other");
    if (defer_flag->count() > 0) o.defer = defer;
    o.connection = conn.resolved();
    // Only HTTP addresses given: the TCP default does not apply.
    if (http_flag->count() > 0 && app.count("--nsqd-tcp-address") == 0 && !std::getenv("NSQD_TCP_ADDRESS"))
      o.nsqd_tcp_addresses.clear();
    o.mode = mode == "all" ? pipekit::nsq::publish_mode::all
             : mode == "failover" ? pipekit::nsq::publish_mode::failover
                                  : pipekit::nsq::publish_mode::round_robin;
    o.progress = ::isatty(2) && !log.quiet;
    auto r = pipekit::nsq::publish(o);
    if (o.stats || r.rejected > 0) {
      pipekit::log::info("{} lines: {} published, {} rejected, {} empty skipped; {:.3f} s, {:.0f} msg/s", r.lines,
                         r.published, r.rejected, r.empty, r.seconds,
                         r.seconds > 0 ? static_cast<double>(r.published) / r.seconds : 0.0);
    }
    return pipekit::nsq::exit_status(r);
  });
}
