#pragma once
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace ethcall {

// Subcommands as rows: the CLI11 subcommand and what runs when it is chosen. Arguments CLI11
// does not recognise are left in app.remaining(): only commands that take a variable argument
// list (calldata, abi-encode) accept them, and none that looks like a long flag.
class command_table {
 public:
  static constexpr bool takes_extra_args = true;
  void add(CLI::App* sub, std::function<int()> run, bool extra_args = false) {
    rows_.push_back({sub, std::move(run), extra_args});
  }
  // The arguments after "--": ARGS for commands that take them, whatever they look like.
  void set_trailing_args(std::vector<std::string> args) { trailing_ = std::move(args); }
  // ARGS of the chosen command: what CLI11 left over, then the arguments after "--".
  std::vector<std::string> extra_args(const CLI::App& app) const;
  // Runs the chosen command; a pipekit::eth::abi_error from a command-line request exits 65.
  int run_selected(const CLI::App& app) const;

 private:
  struct row {
    CLI::App* sub;
    std::function<int()> run;
    bool extra_args;
  };
  std::vector<row> rows_;
  std::vector<std::string> trailing_;
};

void add_keccak_commands(CLI::App& app, command_table& commands);        // keccak, selector
void add_encode_commands(CLI::App& app, command_table& commands);        // calldata, abi-encode
void add_decode_commands(CLI::App& app, command_table& commands);        // abi-decode, decode-calldata, decode-error
void add_decode_event_command(CLI::App& app, command_table& commands);   // decode-event
void add_node_commands(CLI::App& app, command_table& commands);          // rpc, chain-id, balance, call, ...
void add_batch_command(CLI::App& app, command_table& commands);          // batch
void add_send_commands(CLI::App& app, command_table& commands);          // send, deploy, estimate
void add_logs_command(CLI::App& app, command_table& commands);           // logs

}  // namespace ethcall
