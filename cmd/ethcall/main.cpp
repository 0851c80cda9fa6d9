// ethcall: talk to Ethereum contracts from a shell. Flags and wiring only; the work is in
// lib/pipekit/eth and in one file per group of subcommands.
#include <string_view>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "pipekit/cli/app.hpp"

namespace {
constexpr std::string_view tool = "ethcall";
}

int main(int argc, char** argv) {
  CLI::App app{"Encode, decode and send Ethereum contract calls; JSON Lines in and out."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  app.require_subcommand(1);
  app.fallthrough();    // global flags may follow the command
  app.allow_extras();   // calldata/abi-encode ARGS; every other command rejects extras

  ethcall::command_table commands;
  ethcall::add_keccak_commands(app, commands);
  ethcall::add_encode_commands(app, commands);
  ethcall::add_decode_commands(app, commands);
  ethcall::add_decode_event_command(app, commands);
  ethcall::add_node_commands(app, commands);
  ethcall::add_batch_command(app, commands);
  ethcall::add_send_commands(app, commands);
  ethcall::add_logs_command(app, commands);

  // Everything after "--" is an argument, even "-v": CLI11 would still let the parent take it
  // as a flag (fallthrough), so the tail is split off here and handed over as ARGS.
  int parsed_argc = argc;
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      commands.set_trailing_args({argv + i + 1, argv + argc});
      parsed_argc = i;
      break;
    }
  }
  return pipekit::cli::run_main(app, log, parsed_argc, argv, [&] { return commands.run_selected(app); });
}
