// ethcall: talk to Ethereum contracts from a shell. Flags and wiring only; the work is in
// lib/pipekit/eth and in one file per group of subcommands.
#include <algorithm>
#include <initializer_list>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "pipekit/cli/app.hpp"

namespace {
constexpr std::string_view tool = "ethcall";

// The subcommands, by the function that adds each group of them.
struct command_group {
  void (*add)(CLI::App&, ethcall::command_table&);
  std::initializer_list<std::string_view> names;
};
const command_group groups[] = {
    {ethcall::add_keccak_commands, {"keccak", "selector"}},
    {ethcall::add_encode_commands, {"calldata", "abi-encode"}},
    {ethcall::add_decode_commands, {"abi-decode", "decode-calldata", "decode-error"}},
    {ethcall::add_decode_event_command, {"decode-event"}},
    {ethcall::add_node_commands,
     {"rpc", "chain-id", "block-number", "balance", "nonce", "block", "tx", "receipt", "call"}},
    {ethcall::add_batch_command, {"batch"}},
    {ethcall::add_send_commands, {"send", "deploy", "estimate"}},
    {ethcall::add_logs_command, {"logs"}},
};

// Which groups to build for this command line: the group of the command it names (the first
// argument that names one: a command's own arguments come after it); none for a bare --version,
// which needs no command; every group otherwise (`ethcall --help`, `--completions`, a mistyped
// or missing command), so help lists them all and CLI11 reports what is wrong as it always did.
std::vector<const command_group*> groups_to_build(int argc, char** argv) {
  if (argc == 2 && std::string_view(argv[1]) == "--version") return {};
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    for (const auto& g : groups)
      if (std::find(g.names.begin(), g.names.end(), arg) != g.names.end()) return {&g};
  }
  std::vector<const command_group*> all;
  for (const auto& g : groups) all.push_back(&g);
  return all;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Encode, decode and send Ethereum contract calls; JSON Lines in and out."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);
  app.require_subcommand(1);
  app.fallthrough();    // global flags may follow the command
  app.allow_extras();   // calldata/abi-encode ARGS; every other command rejects extras

  // Only the chosen command's group gets its flags built: building CLI11's tree of every command
  // and flag took about 0.3 ms of each call a script makes (issue 16). The other commands are not
  // needed to parse the command line: a second command name after the chosen one is an argument
  // of it (or an unexpected one), as it was when all were built.
  ethcall::command_table commands;
  for (const command_group* g : groups_to_build(argc, argv)) g->add(app, commands);

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
