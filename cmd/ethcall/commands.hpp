#pragma once
#include <functional>
#include <utility>
#include <vector>

namespace CLI {
class App;
}

namespace ethcall {

// Subcommands as rows: the CLI11 subcommand and what runs when it is chosen.
// Arguments CLI11 does not recognise are left in app.remaining(): only commands that take a
// variable argument list (calldata, abi-encode) accept them, as long as none looks like a flag.
class command_table {
 public:
  static constexpr bool takes_extra_args = true;
  void add(CLI::App* sub, std::function<int()> run, bool extra_args = false) {
    rows_.push_back({sub, std::move(run), extra_args});
  }
  int run_selected(const CLI::App& app) const;

 private:
  struct row {
    CLI::App* sub;
    std::function<int()> run;
    bool extra_args;
  };
  std::vector<row> rows_;
};

// keccak, selector, calldata, abi-encode, abi-decode, decode-calldata, decode-error, decode-event.
void add_offline_commands(CLI::App& app, command_table& commands);

}  // namespace ethcall
