// ethcall keccak, ethcall selector.
#include <CLI/CLI.hpp>

#include "commands.hpp"
#include "common.hpp"

namespace ethcall {
namespace {

struct keccak_cmd {
  common_flags common;
  std::string data;

  // Bytes when given as 0x-hex, else the UTF-8 text (as cast keccak).
  static json hash(const std::string& text) {
    if (text.starts_with("0x") || text.starts_with("0X")) return hex_of(eth::keccak256(hex_arg(text, "data")));
    return hex_of(eth::keccak256(std::string_view(text)));
  }
  int run() {
    if (data == "-") return run_lines(common, [](const json& req) { return hash(string_or_field(req, "data")); });
    return print_result(hash(data), common);
  }
};

struct selector_cmd {
  common_flags common;
  std::string sig;

  int run() {
    if (sig != "-") return print_result(hex_of(eth::parse_signature(sig).selector()), common);
    signature_cache cache;
    return run_lines(common, [&](const json& req) { return json(hex_of(cache.get(string_or_field(req, "sig")).selector())); });
  }
};

}  // namespace

void add_keccak_commands(CLI::App& app, command_table& commands) {
  static keccak_cmd keccak;
  static selector_cmd selector;

  auto* k = app.add_subcommand("keccak", "Keccak-256 of text, or of bytes given as 0x-hex");
  add_text_result_flags(k, keccak.common);
  k->add_option("DATA", keccak.data, "Text or 0x-hex bytes; '-' reads JSON Lines requests")->required();
  commands.add(k, [] { return keccak.run(); });

  auto* s = app.add_subcommand("selector", "4-byte selector of a function or error signature");
  add_text_result_flags(s, selector.common);
  s->add_option("SIG", selector.sig, "Signature such as 'transfer(address,uint256)'; '-' reads JSON Lines")->required();
  commands.add(s, [] { return selector.run(); });
}

}  // namespace ethcall
