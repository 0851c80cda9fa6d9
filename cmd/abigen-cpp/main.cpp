// abigen-cpp: typed C++ bindings from a contract's JSON ABI, as go-ethereum's abigen makes Go ones.
// Flags and wiring only; the generator is pipekit::abigen.
#include <string_view>

#include <CLI/CLI.hpp>

#include "pipekit/abigen/generator.hpp"
#include "pipekit/cli/app.hpp"

namespace {
constexpr std::string_view tool = "abigen-cpp";
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Generate typed C++ bindings (a header over pipekit::eth::contract) from a contract's JSON ABI or "
               "solc's combined JSON."};
  pipekit::cli::init_app(app, tool);
  pipekit::cli::log_flags log;
  pipekit::cli::add_log_flags(app, log);

  pipekit::abigen::options o;
  app.add_option("--abi", o.abi, "The contract's JSON ABI (solc --abi, or a Hardhat/Foundry artifact); - is stdin")
      ->type_name("FILE");
  app.add_option("--bin", o.bin, "Its creation bytecode (solc --bin): adds bytecode and deploy()")->type_name("FILE");
  app.add_option("--type", o.type, "The class to generate, with --abi (e.g. CallDemo)")->type_name("NAME");
  app.add_option("--combined-json", o.combined_json,
                 "solc --combined-json abi,bin output: one class per contract, named as the contract; - is stdin")
      ->type_name("FILE");
  app.add_option("--contract", o.contracts, "With --combined-json: only this contract (Name or path:Name; repeatable)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  app.add_option("--exclude", o.excludes, "With --combined-json: not this contract (repeatable)")
      ->type_name("NAME")
      ->allow_extra_args(false);
  app.add_option("--namespace", o.ns, "The C++ namespace of the generated code (e.g. calldemo, or a::b)")
      ->type_name("NS");
  app.add_option("--out", o.out, "The header to write (atomically); - is stdout")->type_name("FILE")->capture_default_str();
  app.add_option("--split", o.split, "Also write the method bodies to this .cpp (the header keeps declarations)")
      ->type_name("FILE.cpp");
  app.add_option("--alias", o.aliases,
                 "Rename a function, event, error, struct or contract: ORIGINAL=NEW, ORIGINAL a name or a signature "
                 "such as 'f(string)' (repeatable)")
      ->type_name("ORIG=NEW")
      ->allow_extra_args(false);
  app.add_option("--link", o.links, "Link a library into the bytecode: NAME=ADDRESS, NAME as Name or path:Name (repeatable)")
      ->type_name("NAME=ADDR")
      ->allow_extra_args(false);

  return pipekit::cli::run_main(app, log, argc, argv, [&] { return pipekit::abigen::run(o); });
}
