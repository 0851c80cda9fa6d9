// ethcall calldata, ethcall abi-encode.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace ethcall {
namespace {

struct encode_cmd {
  common_flags common;
  bool with_selector = false;  // calldata: selector + arguments
  std::string sig;
  std::string abi_path;
  std::vector<std::string> args;
  bool json_args = false;

  json encode(const eth::abi_function& fn, const json& values) const {
    return hex_of(with_selector ? eth::encode_call(fn, values) : eth::encode(fn.inputs, values));
  }

  int run() {
    auto abi = load_abi(abi_path);
    signature_cache cache;
    auto resolve = [&](const std::string& s, std::optional<std::size_t> argc) -> const eth::abi_function& {
      return abi ? abi->function(s, argc) : cache.get(s);
    };
    if (sig == "-") {
      return run_lines(common, [&](const json& req) {
        const json& values = args_of(req);
        const std::string& s = req.contains("function") ? string_field(req, "function") : string_field(req, "sig");
        return encode(resolve(s, values.size()), values);
      });
    }
    if (args.size() == 1 && args[0] == "-") {
      return run_lines(common, [&](const json& req) {
        const json& values = args_of(req);
        return encode(resolve(sig, values.size()), values);
      });
    }
    const auto& fn = resolve(sig, json_args ? std::nullopt : std::optional<std::size_t>(args.size()));
    return print_result(encode(fn, cli_args(fn.inputs, args, json_args)), common);
  }
};

void add_encode(CLI::App& app, command_table& commands, const char* name, const char* help, encode_cmd& cmd) {
  auto* c = app.add_subcommand(name, help);
  add_text_result_flags(c, cmd.common);
  c->add_option("--abi", cmd.abi_path, "JSON ABI file; SIG is then a function name or signature")->type_name("FILE");
  c->add_flag("--json-args", cmd.json_args, "ARGS is one JSON array holding all arguments");
  c->add_option("SIG", cmd.sig, "Function signature (or name with --abi); '-' reads JSON Lines requests")->required();
  c->footer("ARGS: one per parameter (cast style: 1, 0x.., true, [1,2], (a,b)); '-' reads one JSON array per line.\n"
            "An argument that starts with '-' and is not a number goes after '--', or use --json-args.");
  // ARGS are what CLI11 leaves over, untouched: an ARGS option would split "[1,2]" in two.
  commands.add(c, [&cmd, &app, &commands] {
    cmd.args = commands.extra_args(app);
    return cmd.run();
  }, command_table::takes_extra_args);
}

}  // namespace

void add_encode_commands(CLI::App& app, command_table& commands) {
  static encode_cmd calldata;
  static encode_cmd abi_encode;
  calldata.with_selector = true;
  add_encode(app, commands, "calldata", "Encode a call: selector and arguments, as 0x-hex", calldata);
  add_encode(app, commands, "abi-encode", "ABI-encode arguments (no selector), as 0x-hex", abi_encode);
}

}  // namespace ethcall
