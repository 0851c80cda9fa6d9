// ethcall logs: decoded event logs as JSON Lines (design section 7), over a block range or
// followed as new blocks come (--follow), resumable from a checkpoint file, reorgs undone with
// "removed":true records. Flags and wiring: the follower is lib/pipekit/eth/log_follower.hpp.
#include <unistd.h>

#include <chrono>

#include <boost/asio/io_context.hpp>
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/event_log.hpp"
#include "pipekit/eth/log_follower.hpp"
#include "pipekit/eth_cli/errors.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
namespace log = pipekit::log;
using pipekit::fatal;

struct logs_options {
  rpc_flags rpc;
  std::vector<std::string> addresses;
  std::string abi_path, event;
  std::vector<std::string> topics;
  std::string from_block, to_block = "latest";
  std::uint64_t chunk_size = eth::default_chunk_size;
  bool follow = false;
  std::string poll_interval = "2s";
  std::string checkpoint;
  std::uint64_t confirmations = 0;
};

int run_logs(const logs_options& o) {
  if (o.follow && o.to_block != "latest") fatal(exit_code::usage, "logs: --to-block cannot be used with --follow");
  if (o.chunk_size == 0) fatal(exit_code::usage, "logs: --chunk-size must be at least 1");
  eth::follow_options f;
  try {
    f.poll_interval = std::chrono::duration_cast<std::chrono::milliseconds>(pipekit::util::parse_duration(o.poll_interval));
  } catch (const std::invalid_argument& e) {
    fatal(exit_code::usage, "--poll-interval: {}", e.what());
  }
  if (f.poll_interval.count() <= 0) fatal(exit_code::usage, "--poll-interval: must be more than 0");
  if (!o.from_block.empty()) f.from_block = block_param(o.from_block, "--from-block");
  f.to_block = block_param(o.to_block, "--to-block");
  f.chunk_size = o.chunk_size;
  f.follow = o.follow;
  f.checkpoint = o.checkpoint;
  f.confirmations = o.confirmations;
  auto abi = load_abi(o.abi_path);
  // The library names no flag: its messages say "event X", "address X", "topic X"; here they
  // become --event, --address, --topic.
  if (!abi && !o.event.empty() && o.event.find('(') == std::string::npos)
    throw eth::abi_error(fmt::format("--event {}: a name needs --abi FILE; or give a signature such as '{}(uint256 indexed a)'",
                                     o.event, o.event));
  eth::log_decoder matcher(abi ? &*abi : nullptr, o.event);  // an unknown event: 65, as call's unknown function
  try {
    f.filter = eth::log_filter(o.addresses, matcher, o.topics);
  } catch (const eth::abi_error& e) {
    fatal(exit_code::usage, "logs: --{}", e.what());
  }

  pipekit::io::line_writer out(STDOUT_FILENO);
  boost::asio::io_context io;
  bool stop = false;
  pipekit::util::on_stop_signals(io, [&stop](int signo) {
    log::info("signal {}: finishing the current blocks", signo);
    stop = true;
  });
  eth::log_sink sink{
      .write = [&out](const json& rec) { return out.write_line(rec.dump(-1, ' ', false, json::error_handler_t::replace)); },
      .flush = [&out] { return out.flush(); },
      .stopping = [&io, &stop] {
        io.poll();
        return stop;
      }};
  try {
    eth::log_follower follower(o.rpc.connect(), std::move(matcher), std::move(f));
    follower.run(sink);
  } catch (const eth::error& e) {
    pipekit::eth_cli::fatal(e, e.subject() == o.checkpoint && !o.checkpoint.empty() ? "--checkpoint" : "");
  }
  return exit_code::ok;
}

}  // namespace

void add_logs_command(CLI::App& app, command_table& commands) {
  static logs_options o;
  auto* s = app.add_subcommand("logs", "Decoded event logs as JSON Lines: a block range, or --follow new blocks");
  add_rpc_flags(s, o.rpc);
  s->add_option("--address", o.addresses, "Only logs of this contract (repeatable: any of them)")
      ->type_name("ADDRESS")
      ->allow_extra_args(false);
  s->add_option("--abi", o.abi_path, "JSON ABI file: decode every log whose event is in it")->type_name("FILE");
  s->add_option("--event", o.event,
                "Only this event: a name in --abi (all its overloads) or a signature such as "
                "'Transfer(address indexed from,address indexed to,uint256 value)'")
      ->type_name("NAME|SIG");
  s->add_option("--topic", o.topics,
                "Next topic position (after the event's topic 0): 32-byte 0x-hex, 'null' for any, or a comma-separated list "
                "(any of them); repeatable")
      ->type_name("TOPIC")
      ->allow_extra_args(false);
  s->add_option("--from-block", o.from_block,
                "First block: number or tag (default: latest; with an existing --checkpoint, the block after it)")
      ->type_name("BLOCK");
  s->add_option("--to-block", o.to_block, "Last block: number or tag (not with --follow)")->type_name("BLOCK")->capture_default_str();
  s->add_option("--chunk-size", o.chunk_size, "Blocks per eth_getLogs request; halved when the node says too large")
      ->capture_default_str();
  s->add_flag("--follow,-f", o.follow, "Keep going: emit the logs of new blocks as they come");
  s->add_option("--poll-interval", o.poll_interval, "--follow over http: how often to ask for new blocks")
      ->type_name("DURATION")
      ->capture_default_str();
  s->add_option("--confirmations", o.confirmations, "Only blocks this many blocks below the head (fewer reorgs)")
      ->capture_default_str();
  s->add_option("--checkpoint", o.checkpoint,
                "Record the last block fully written here, and resume after it (atomic writes; reorgs checked)")
      ->type_name("FILE");
  commands.add(s, [] { return run_logs(o); });
}

}  // namespace ethcall
