// ethcall abi-decode, ethcall decode-calldata, ethcall decode-error.
#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "commands.hpp"
#include "common.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"

namespace ethcall {
namespace {

namespace exit_code = pipekit::exit_code;
using pipekit::fatal;

struct abi_decode_cmd {
  common_flags common;
  bool input = false;
  std::string sig;
  std::string data;

  json decode(const eth::abi_function& fn, const std::string& hex) const {
    const auto& params = input ? fn.inputs : fn.outputs;
    if (!input && params.empty())
      throw eth::abi_error(fmt::format("\"{}\" declares no output types: write it as f(inputs)(outputs), or use --input",
                                       fn.signature()));
    return eth::shape_result(params, eth::decode(params, hex_arg(hex, "data")));
  }

  int run() {
    if (sig != "-" && data.empty()) fatal(exit_code::usage, "abi-decode takes SIG DATA; run 'ethcall abi-decode --help'");
    signature_cache cache;
    if (sig == "-")
      return run_lines(common, [&](const json& req) { return decode(cache.get(string_field(req, "sig")), string_field(req, "data")); });
    const auto fn = eth::parse_signature(sig);
    if (data == "-") return run_lines(common, [&](const json& req) { return decode(fn, string_or_field(req, "data")); });
    return print_result(decode(fn, data), common);
  }
};

struct decode_calldata_cmd {
  common_flags common;
  std::string abi_path;
  std::vector<std::string> positionals;  // [SIG] DATA

  int run() {
    if (positionals.empty() || positionals.size() > 2)
      fatal(exit_code::usage, "decode-calldata takes [SIG] DATA; run 'ethcall decode-calldata --help'");
    auto abi = load_abi(abi_path);
    std::optional<eth::abi_function> fixed;
    if (positionals.size() == 2) fixed = abi ? abi->function(positionals[0]) : eth::parse_signature(positionals[0]);
    else if (!abi) fatal(exit_code::usage, "decode-calldata needs SIG or --abi FILE to know the function");

    auto decode = [&](const std::string& hex) -> json {
      eth::bytes data = hex_arg(hex, "data");
      if (data.size() < 4) throw eth::abi_error(fmt::format("data: {} bytes, shorter than a selector", data.size()));
      const std::array<std::uint8_t, 4> sel{data[0], data[1], data[2], data[3]};
      const eth::abi_function* fn = fixed ? &*fixed : abi->function_by_selector(sel);
      if (!fn) throw eth::abi_error(fmt::format("no function in {} has selector {}", abi_path, hex_of(sel)));
      return json{{"function", fn->name}, {"signature", fn->signature()}, {"selector", hex_of(sel)},
                  {"args", eth::named_or_array(fn->inputs, eth::decode_call(*fn, data))}};
    };
    const std::string& data = positionals.back();
    if (data == "-") return run_lines(common, [&](const json& req) { return decode(string_or_field(req, "data")); });
    return print_result(decode(data), common);
  }
};

struct decode_error_cmd {
  common_flags common;
  std::string abi_path;
  std::string data;

  int run() {
    auto abi = load_abi(abi_path);
    const eth::abi_file* file = abi ? &*abi : nullptr;
    auto decode = [&](const std::string& hex) { return eth::decode_revert(hex_arg(hex, "data"), file); };
    if (data == "-") return run_lines(common, [&](const json& req) { return decode(string_or_field(req, "data")); });
    return print_result(decode(data), common);
  }
};

}  // namespace

void add_decode_commands(CLI::App& app, command_table& commands) {
  static abi_decode_cmd abi_decode;
  static decode_calldata_cmd decode_calldata;
  static decode_error_cmd decode_error;

  auto* d = app.add_subcommand("abi-decode", "Decode ABI-encoded return data (or, with --input, arguments)");
  add_common_flags(d, abi_decode.common);
  d->add_flag("-i,--input", abi_decode.input, "Decode the signature's input types instead of its outputs");
  d->add_option("SIG", abi_decode.sig, "Signature with outputs, e.g. 'balanceOf(address)(uint256)'; '-' reads JSON Lines")
      ->required();
  d->add_option("DATA", abi_decode.data, "0x-hex data without a selector; '-' reads JSON Lines");
  commands.add(d, [] { return abi_decode.run(); });

  auto* dc = app.add_subcommand("decode-calldata", "Decode calldata (selector and arguments)");
  add_common_flags(dc, decode_calldata.common);
  dc->add_option("--abi", decode_calldata.abi_path, "JSON ABI file: the function is found by selector")->type_name("FILE");
  dc->add_option("ARGS", decode_calldata.positionals,
                 "[SIG] DATA: signature (or name with --abi) and 0x-hex calldata; DATA '-' reads JSON Lines");
  commands.add(dc, [] { return decode_calldata.run(); });

  auto* de = app.add_subcommand("decode-error", "Decode revert data: Error(string), Panic(uint256), custom errors");
  add_common_flags(de, decode_error.common);
  de->add_option("--abi", decode_error.abi_path, "JSON ABI file with the contract's custom errors")->type_name("FILE");
  de->add_option("DATA", decode_error.data, "0x-hex revert data; '-' reads JSON Lines")->required();
  commands.add(de, [] { return decode_error.run(); });
}

}  // namespace ethcall
