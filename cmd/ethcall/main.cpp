// ethcall: talk to Ethereum contracts from a shell. Flags and wiring only; the work is in
// lib/pipekit/eth and in one file per group of subcommands.
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
  ethcall::add_offline_commands(app, commands);

  return pipekit::cli::run_main(app, log, argc, argv, [&] { return commands.run_selected(app); });
}
