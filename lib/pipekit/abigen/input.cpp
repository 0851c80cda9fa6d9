// abigen-cpp's inputs and outputs: JSON ABI and bytecode files, solc's combined JSON, library
// links, the flags' rules, and the atomic writes.
#include <cctype>
#include <cstdio>
#include <map>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "pipekit/abigen/generator.hpp"
#include "pipekit/abigen/names.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/keccak.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/io/read_file.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit_version.hpp"

namespace pipekit::abigen {

namespace {

using nlohmann::json;

constexpr std::size_t max_input_bytes = 64u << 20;

template <class... Args>
[[noreturn]] void fail(int code, fmt::format_string<Args...> format, Args&&... args) {
  throw fatal_error(code, fmt::format(format, std::forward<Args>(args)...));
}

// A file's text; "-" is stdin. `flag` and the path name it in messages.
std::string read_input(const std::string& flag, const std::string& path) {
  std::string text;
  try {
    text = io::read_file(path == "-" ? "/dev/stdin" : path, max_input_bytes);
  } catch (const io::file_error& e) {
    fail(e.code(), "{} {}: {}", flag, path, e.what());
  }
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    fail(exit_code::data_error, "{} {}: empty input; give the contract's {} (solc {})", flag, path,
         flag == "--bin" ? "bytecode" : flag == "--abi" ? "JSON ABI" : "combined JSON",
         flag == "--bin" ? "--bin" : flag == "--abi" ? "--abi" : "--combined-json abi,bin");
  return text;
}

json read_json(const std::string& flag, const std::string& path) {
  auto r = pipekit::json::parse(read_input(flag, path));
  if (!r.ok())
    fail(exit_code::data_error, "{} {}: not JSON ({}); give the contract's {}", flag, path, r.error,
         flag == "--abi" ? "JSON ABI (solc --abi)" : "solc --combined-json abi,bin output");
  return std::move(r.value);
}

std::string base_name(const std::string& path) {
  if (path == "-") return "stdin";
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// The bytecode of a .bin file: hex (0x optional, whitespace ignored), then solc's
// "// $<34 hex>$ -> path:Name" lines naming the placeholders' libraries.
std::string bytecode_of(const std::string& text, std::vector<std::string>& known) {
  std::string hex;
  std::size_t at = 0;
  while (at < text.size()) {
    auto end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + at, end - at);
    at = end + 1;
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
    if (line.rfind("//", 0) == 0) {
      const auto arrow = line.find("-> ");
      if (arrow != std::string_view::npos) {
        std::string name(line.substr(arrow + 3));
        while (!name.empty() && (name.back() == '\r' || name.back() == ' ')) name.pop_back();
        known.push_back(name);
      }
      continue;
    }
    for (const char c : line)
      if (c != ' ' && c != '\t' && c != '\r') hex += c;
  }
  if (hex.rfind("0x", 0) == 0 || hex.rfind("0X", 0) == 0) hex.erase(0, 2);
  return hex;
}

std::string new_placeholder(const std::string& qualified) {
  const auto h = eth::keccak256(qualified);
  return "__$" + eth::to_hex(std::span<const std::uint8_t>(h.data(), 17), false) + "$__";
}

std::string old_placeholder(const std::string& name) {
  std::string p = "__" + name.substr(0, 36);
  p.resize(40, '_');
  return p;
}

std::string short_name(const std::string& qualified) {
  const auto colon = qualified.rfind(':');
  return colon == std::string::npos ? qualified : qualified.substr(colon + 1);
}

std::vector<std::pair<std::string, std::string>> split_pairs(const std::vector<std::string>& items, const char* flag,
                                                             const char* example) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& item : items) {
    const auto eq = item.rfind('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
      fail(exit_code::usage, "{} {}: want ORIGINAL=NEW, e.g. {} {}", flag, shell_quote(item), flag, example);
    out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  return out;
}

bool is_address(const std::string& s) {
  if (s.size() != 42 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  for (std::size_t i = 2; i < s.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(s[i]))) return false;
  return true;
}

}  // namespace

std::string link_bytecode(std::string hex, const std::vector<std::pair<std::string, std::string>>& links,
                          const std::vector<std::string>& known, const std::string& where) {
  // Every placeholder each link stands for.
  std::map<std::string, std::string> replace;  // placeholder -> 40 hex
  for (const auto& [name, addr] : links) {
    std::string raw = addr.substr(2);
    for (auto& c : raw) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    std::vector<std::string> qualified;
    if (name.find(':') != std::string::npos) qualified.push_back(name);
    for (const auto& k : known)
      if (short_name(k) == name) qualified.push_back(k);
    for (const auto& q : qualified) {
      replace[new_placeholder(q)] = raw;
      replace[old_placeholder(q)] = raw;
    }
    replace[old_placeholder(name)] = raw;
  }
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    if (hex[i] != '_' || hex[i + 1] != '_') continue;
    const std::string p = hex.substr(i, 40);
    const auto it = replace.find(p);
    if (it != replace.end()) {
      hex.replace(i, 40, it->second);
      i += 38;
      continue;
    }
    std::string library;
    if (p.size() == 40 && p[2] == '$' && p[37] == '$') {
      for (const auto& k : known)
        if (new_placeholder(k) == p) library = k;
      if (library.empty()) library = "a library not named in the input (placeholder " + p + ")";
    } else {
      library = p.substr(2);
      while (!library.empty() && library.back() == '_') library.pop_back();
    }
    fail(exit_code::data_error,
         "{}: the bytecode needs library {} linked (at byte {}); deploy it and give its address: --link {}", where,
         library, i / 2, shell_quote((library.rfind("a library", 0) == 0 ? std::string("path:Name") : library) + "=0x..."));
  }
  for (std::size_t i = 0; i < hex.size(); ++i)
    if (!std::isxdigit(static_cast<unsigned char>(hex[i])))
      fail(exit_code::data_error, "{}: not hex bytecode: {} at character {}; give solc's --bin output", where,
           string_literal(hex.substr(i, 1)), i + 1);
  if (hex.size() % 2) fail(exit_code::data_error, "{}: bytecode of odd length ({} hex digits)", where, hex.size());
  for (auto& c : hex) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return hex;
}

int run(const options& o) {
  const bool combined = !o.combined_json.empty();
  if (combined == !o.abi.empty()) fail(exit_code::usage, "give one of --abi FILE and --combined-json FILE");
  if (combined && (!o.type.empty() || !o.bin.empty()))
    fail(exit_code::usage, "--combined-json takes the class names and bytecode from solc's output: no --type or --bin");
  if (!combined && (!o.contracts.empty() || !o.excludes.empty()))
    fail(exit_code::usage, "--contract and --exclude pick contracts of --combined-json");
  if (!combined && o.type.empty()) fail(exit_code::usage, "--abi needs --type NAME (the class to generate)");
  if (!combined && (!is_identifier(o.type) || is_keyword(o.type)))
    fail(exit_code::usage, "--type {}: not a usable C++ class name", shell_quote(o.type));
  if (o.ns.empty()) fail(exit_code::usage, "--namespace NS is required (the generated code's namespace, e.g. calldemo)");
  for (std::size_t from = 0;;) {
    const auto sep = o.ns.find("::", from);
    const std::string part = o.ns.substr(from, sep == std::string::npos ? std::string::npos : sep - from);
    if (!is_identifier(part) || is_keyword(part) || part == "pipekit" || part == "std")
      fail(exit_code::usage, "--namespace {}: \"{}\" is not a usable namespace name", shell_quote(o.ns), part);
    if (sep == std::string::npos) break;
    from = sep + 2;
  }
  if (!o.split.empty() && o.out == "-") fail(exit_code::usage, "--split needs --out FILE (the .cpp includes the header)");
  if (!o.split.empty() && o.split == o.out) fail(exit_code::usage, "--split and --out name the same file");

  const auto links = split_pairs(o.links, "--link", "'Linked.sol:MathLib=0x5FbDB2315678afecb367f032d93F642f64180aa3'");
  for (const auto& [name, addr] : links)
    if (!is_address(addr))
      fail(exit_code::usage, "--link {}: \"{}\" is not an address (0x and 40 hex digits)", shell_quote(name + "=" + addr),
           addr);

  std::vector<contract_input> inputs;
  generate_options g;
  g.ns = o.ns;
  g.aliases = split_pairs(o.aliases, "--alias", "'f(string)=fString'");
  g.version = PIPEKIT_VERSION;
  std::set<std::string> links_used;

  if (!combined) {
    contract_input in;
    in.name = in.qualified = o.type;
    in.origin = "--abi " + o.abi;
    in.abi = read_json("--abi", o.abi);
    if (in.abi.is_object() && in.abi.contains("abi")) in.abi = json(in.abi["abi"]);  // Hardhat/Foundry artifacts
    if (!in.abi.is_array())
      fail(exit_code::data_error, "--abi {}: not a JSON ABI (a JSON array of functions, events and errors); give the "
                                  "contract's ABI (solc --abi) or a Hardhat/Foundry artifact", o.abi);
    g.inputs = base_name(o.abi);
    if (!o.bin.empty()) {
      std::vector<std::string> known;
      const std::string hex = bytecode_of(read_input("--bin", o.bin), known);
      if (hex.empty()) fail(exit_code::data_error, "--bin {}: no bytecode in it", o.bin);
      in.bytecode = link_bytecode(hex, links, known, "--bin " + o.bin);
      g.inputs += " and " + base_name(o.bin);
    }
    inputs.push_back(std::move(in));
    if (!links.empty() && !o.bin.empty()) links_used.insert("all");
  } else {
    const json doc = read_json("--combined-json", o.combined_json);
    const std::string where = "--combined-json " + o.combined_json;
    if (!doc.is_object() || !doc.contains("contracts") || !doc["contracts"].is_object())
      fail(exit_code::data_error, "{}: no \"contracts\" object; give solc --combined-json abi,bin output", where);
    const json& all = doc["contracts"];
    std::vector<std::string> known;
    for (const auto& [key, value] : all.items()) known.push_back(key);
    const auto matches = [](const std::string& key, const std::string& name) {
      return key == name || short_name(key) == name;
    };
    for (const auto* list : {&o.contracts, &o.excludes})
      for (const auto& name : *list) {
        bool found = false;
        for (const auto& k : known) found = found || matches(k, name);
        if (!found) {
          std::string names;
          for (const auto& k : known) names += (names.empty() ? "" : ", ") + k;
          fail(exit_code::data_error, "{}: no contract {} (it has: {})", where, name, names);
        }
      }
    for (const auto& key : known) {
      bool picked = o.contracts.empty();
      for (const auto& n : o.contracts) picked = picked || matches(key, n);
      for (const auto& n : o.excludes) picked = picked && !matches(key, n);
      if (!picked) continue;
      const json& c = all[key];
      contract_input in;
      in.qualified = key;
      in.name = short_name(key);
      in.origin = where + ": contracts[" + string_literal(key) + "]";
      if (!c.is_object() || !c.contains("abi"))
        fail(exit_code::data_error, "{}: no \"abi\"; run solc with --combined-json abi,bin", in.origin);
      in.abi = c["abi"];
      if (in.abi.is_string()) {  // solc before 0.8.10 wrote the ABI as a JSON string
        auto r = pipekit::json::parse(in.abi.get<std::string>());
        if (!r.ok()) fail(exit_code::data_error, "{}.abi: not JSON ({})", in.origin, r.error);
        in.abi = std::move(r.value);
      }
      if (!in.abi.is_array()) fail(exit_code::data_error, "{}.abi: not a JSON ABI array", in.origin);
      if (in.abi.empty() && o.contracts.empty()) {
        log::info("{}: skipped: its ABI is empty (a library of internal functions, or an empty contract)", in.origin);
        continue;
      }
      if (c.contains("bin")) {
        if (!c["bin"].is_string()) fail(exit_code::data_error, "{}.bin: not a string of hex", in.origin);
        std::vector<std::string> k2 = known;
        std::string hex = bytecode_of(c["bin"].get<std::string>(), k2);
        if (!hex.empty()) {
          in.bytecode = link_bytecode(std::move(hex), links, k2, in.origin + ".bin");
          links_used.insert("all");
        }
      }
      inputs.push_back(std::move(in));
    }
    if (inputs.empty()) fail(exit_code::data_error, "{}: no contract to bind (all excluded, or all with empty ABIs)", where);
    g.inputs = base_name(o.combined_json);
  }
  if (!links.empty() && links_used.empty())
    fail(exit_code::usage, "--link: no bytecode to link (give --bin or a --combined-json with bin)");

  if (!o.split.empty()) g.split_header = base_name(o.out);
  const generated out = generate(inputs, g);

  if (o.out == "-") {
    if (std::fwrite(out.header.data(), 1, out.header.size(), stdout) != out.header.size() || std::fflush(stdout) != 0)
      fail(exit_code::io_error, "--out -: cannot write to stdout");
    return exit_code::ok;
  }
  if (!o.split.empty()) {
    const std::string err = io::write_file_atomic(o.split, out.source);
    if (!err.empty()) fail(exit_code::io_error, "--split {}: {}", o.split, err);
  }
  const std::string err = io::write_file_atomic(o.out, out.header);
  if (!err.empty()) fail(exit_code::io_error, "--out {}: {}", o.out, err);
  return exit_code::ok;
}

}  // namespace pipekit::abigen
