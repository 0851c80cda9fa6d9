// nsq-tail: consume a topic's channel to stdout (nsq's nsq_tail), each message FINished only once
// its line is safe. Flags and wiring only; the work is in lib/pipekit/nsq/consumer.
#include <string_view>

#include <CLI/CLI.hpp>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/nsq/client_flags.hpp"
#include "pipekit/nsq/consumer.hpp"

namespace {
constexpr std::string_view tool = "nsq-tail";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Consume an NSQ topic's channel to stdout, one line per message; a message is acknowledged "
               "only once its line was read from the pipe (or written to a file or terminal)."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);

  pipekit::nsq::tail_options o;
  std::string format = "body";
  app.add_option("-t,--topic", o.topic, "Topic to consume")->envname("NSQ_TOPIC");
  app.add_option("-c,--channel", o.channel, "Channel (default: an ephemeral tail<digits>#ephemeral)")
      ->envname("NSQ_CHANNEL");
  app.add_option("--nsqd-tcp-address", o.nsqd_tcp_addresses, "Broker TCP address host:port (repeatable)")
      ->allow_extra_args(false)
      ->envname("NSQD_TCP_ADDRESS");
  app.add_option("--lookupd-http-address", o.lookupd_http_addresses, "lookupd HTTP address host:port (repeatable)")
      ->allow_extra_args(false)
      ->envname("NSQLOOKUPD_HTTP_ADDRESS");
  pipekit::cli::add_duration_option(app, "--lookupd-poll-interval", o.lookupd_poll_interval,
                                    "How often to ask lookupd for the topic's brokers");
  app.add_option("--max-in-flight", o.max_in_flight, "Messages in flight at once, spread across the brokers (RDY)")
      ->check(CLI::Range(1, 1000000))
      ->default_str("200");
  app.add_option("-n,--count", o.count, "Exit after this many messages (the rest are handed back)");
  app.add_option("--format", format, "Output: body (one line per message) or envelope (JSON with id, attempts...)")
      ->check(CLI::IsMember({"body", "envelope"}))
      ->default_str("body");
  app.add_flag("--binary", o.binary, "In envelopes, always give the body as base64");
  pipekit::cli::add_duration_option(app, "--heartbeat-interval", o.heartbeat_interval,
                                    "Heartbeat interval asked for in IDENTIFY");
  pipekit::cli::add_duration_option(app, "--msg-timeout", o.msg_timeout,
                                    "Message timeout asked for in IDENTIFY (default: the broker's)")
      ->default_str("");
  pipekit::cli::add_duration_option(app, "--connect-timeout", o.connect_timeout, "Timeout for each connection attempt");
  pipekit::cli::add_duration_option(app, "--reader-grace", o.reader_grace,
                                    "Pipe: a reader still there this long after it read a line has processed it (FIN)");
  pipekit::nsq::client_flags conn;
  pipekit::nsq::add_client_flags(app, conn);
  app.add_option("--output-dir", o.output_dir, "Archive mode: write files in DIR (FIN after fsync) instead of stdout");
  app.add_option("--filename-format", o.filename_format, "Archive file names: <TOPIC>, <HOST>, <DATETIME>, <REV>")
      ->default_str("<TOPIC>.<HOST><REV>.<DATETIME>.log");
  app.add_option("--rotate-size", o.rotate_size, "Archive: start a new file after this many bytes (0: never)");
  pipekit::cli::add_duration_option(app, "--rotate-interval", o.rotate_interval,
                                    "Archive: start a new file after this long, e.g. 10m")
      ->default_str("");
  app.add_flag("--gzip", o.gzip, "Archive: gzip the files");
  pipekit::cli::add_duration_option(app, "--sync-interval", o.sync_interval,
                                    "Archive: fsync, then FIN, at least this often");

  return pipekit::cli::run_main(app, log, argc, argv, [&] {
    o.connection = conn.resolved();
    if (o.sync_interval.count() <= 0) pipekit::fatal(pipekit::exit_code::usage, "--sync-interval must be positive");
    if (o.reader_grace.count() <= 0) pipekit::fatal(pipekit::exit_code::usage, "--reader-grace must be positive");
    if (o.lookupd_poll_interval.count() <= 0) {
      pipekit::fatal(pipekit::exit_code::usage, "--lookupd-poll-interval must be positive");
    }
    o.format = format == "envelope" ? pipekit::nsq::tail_format::envelope : pipekit::nsq::tail_format::body;
    if (o.nsqd_tcp_addresses.empty() && o.lookupd_http_addresses.empty()) o.nsqd_tcp_addresses = {"127.0.0.1:4150"};
    auto r = pipekit::nsq::tail(o);
    if (r.requeued > 0) {
      pipekit::log::info("{} received, {} written, {} finished, {} requeued ({} of them read by the reader, which "
                         "may have processed them: possible duplicates)",
                         r.received, r.written, r.finished, r.requeued, r.duplicates);
    } else {
      pipekit::log::debug("{} received, {} written, {} finished", r.received, r.written, r.finished);
    }
    return pipekit::exit_code::ok;
  });
}
