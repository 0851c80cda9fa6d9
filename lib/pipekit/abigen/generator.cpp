// The generator proper: names (checked, escaped, clashes refused), then the header (and .cpp).
// The API it writes is described in abigen-cpp(1); eth/contract.hpp is what it stands on.
#include "pipekit/abigen/generator.hpp"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "pipekit/abigen/names.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/abi.hpp"

namespace pipekit::abigen {

namespace {

using nlohmann::json;
using eth::abi_kind;
using eth::abi_param;
using eth::abi_type;

constexpr std::size_t line_limit = 120;
const std::string eth_ns = "pipekit::eth::";
const std::string sol_ns = "pipekit::eth::sol::";

template <class... Args>
[[noreturn]] void data_error(fmt::format_string<Args...> format, Args&&... args) {
  throw fatal_error(exit_code::data_error, fmt::format(format, std::forward<Args>(args)...));
}

// Names no generated identifier may take: they would hide what the generated code refers to.
const std::set<std::string> namespace_reserved = {"std", "pipekit", "nlohmann", "boost", "filter"};
// Locals and parameters of the generated bodies: a type (struct, event, error) so named would be hidden.
const std::set<std::string> body_locals = {"e",    "args", "signature", "data",   "message", "out", "r",
                                           "v",    "j",    "f",         "fn",     "parsed",  "record", "at",
                                           "from", "value", "options",  "client"};
// eth::contract's data members: a method's parameter so named would shadow one (-Wshadow).
const std::set<std::string> base_data_members = {"client_", "address_", "abi_", "on_revert_"};
// Members every generated class has (its own and its base's).
const std::set<std::string> class_members = {
    "abi",          "abi_json",      "abi_json_text", "bytecode", "bytecode_text",    "deploy",        "addr",        "client",
    "logs",         "follow",        "on_revert",   "call_function", "send_function", "estimate_function",
    "deploy_code",  "event_records", "follow_event", "record_args",  "record_meta", "rethrow_typed",
    "revert_handler", "contract"};

// ---- the parsed inputs: abi_file entries with their place in the JSON ----------------------

struct contract_model;

struct struct_def {
  std::string name;       // C++
  std::string qualified;  // from internalType ("Shapes.Point"); empty when it had none
  std::string shape;      // what two tuples must share to be one struct
  const abi_type* type = nullptr;
  std::string where;      // its first place, for messages
  std::vector<std::string> fields;
};

struct param_names {
  std::vector<std::string> names;  // C++, aligned with the params
};

struct function_model {
  const eth::abi_function* fn = nullptr;
  std::size_t index = 0;  // in the JSON ABI
  std::string name;       // C++
  bool view = false, payable = false;
  std::vector<std::string> params;
  std::string result;          // C++ type of the typed result ("void", a type, or a result struct)
  std::string result_struct;   // the struct's name when several outputs (nested in the class)
  std::vector<std::string> result_fields;
};

struct event_model {
  const eth::abi_event* ev = nullptr;
  std::size_t index = 0;
  std::string name;
  std::vector<std::string> fields;
};

struct error_model {
  const eth::abi_error_def* er = nullptr;
  std::size_t index = 0;
  std::string name;
  std::vector<std::string> fields, ctor_params;
};

struct result_def {
  std::string name;
  const eth::abi_function* fn = nullptr;
  std::vector<std::string> fields;
};

struct contract_model {
  const contract_input* in = nullptr;
  eth::abi_file abi;
  std::string name;
  std::vector<function_model> functions;
  std::vector<event_model> events;
  std::vector<error_model> errors;
  std::vector<result_def> results;
  std::optional<std::size_t> ctor_index;
  std::vector<std::string> ctor_params;
  bool ctor_payable = false;
};

// ---- aliases ----------------------------------------------------------------------------------

class alias_table {
 public:
  explicit alias_table(const std::vector<std::pair<std::string, std::string>>& aliases) {
    for (const auto& [from, to] : aliases) {
      if (!is_identifier(to) || is_keyword(to))
        throw fatal_error(exit_code::usage, fmt::format("--alias {}: \"{}\" is not a usable C++ identifier (a keyword, or "
                                                        "not [A-Za-z_][A-Za-z0-9_]*)",
                                                        shell_quote(from + "=" + to), to));
      map_[from] = to;
    }
  }
  // The alias for the first of keys that has one, else fallback.
  std::string apply(std::initializer_list<std::string> keys, const std::string& fallback) {
    for (const auto& k : keys) {
      if (k.empty()) continue;
      auto it = map_.find(k);
      if (it != map_.end()) {
        used_.insert(k);
        return it->second;
      }
    }
    return fallback;
  }
  void check_all_used() const {
    for (const auto& [from, to] : map_)
      if (!used_.count(from))
        throw fatal_error(exit_code::usage,
                          fmt::format("--alias {}: no function, event, error, struct or contract is \"{}\" (a name, a "
                                      "signature such as f(uint256), or a struct's Contract.Name)",
                                      shell_quote(from + "=" + to), from));
  }

 private:
  std::map<std::string, std::string> map_;
  std::set<std::string> used_;
};

// ---- C++ types ------------------------------------------------------------------------------

class type_namer {
 public:
  explicit type_namer(alias_table& aliases) : aliases_(aliases) {}

  // Registers every tuple inside t (components first); `where` names the place for messages.
  void visit(const abi_type& t, const std::string& where) {
    if (t.kind == abi_kind::array || t.kind == abi_kind::fixed_array) return visit(*t.element, where);
    if (t.kind != abi_kind::tuple) return;
    for (std::size_t i = 0; i < t.components.size(); ++i)
      visit(t.components[i].type, where + ".components[" + std::to_string(i) + "]");
    const std::string shape = shape_of(t);
    if (by_shape_.count(shape)) return;
    std::string qualified;
    if (t.internal_type.rfind("struct ", 0) == 0) qualified = t.internal_type.substr(7);
    std::string name;
    if (!qualified.empty()) {
      const auto dot = qualified.rfind('.');
      const std::string short_name = dot == std::string::npos ? qualified : qualified.substr(dot + 1);
      name = aliases_.apply({"struct:" + qualified, "struct:" + short_name, qualified, short_name}, short_name);
      if (!is_identifier(name))
        data_error("{}: struct name \"{}\" (internalType \"{}\") is not a C++ identifier; rename it: --alias {}", where,
                   name, t.internal_type, shell_quote(qualified + "=NewName"));
    } else {
      // No internalType (a hand-written ABI): Tuple0, Tuple1... in order of first appearance.
      std::string fallback = "Tuple" + std::to_string(unnamed_++);
      name = aliases_.apply({fallback}, fallback);
    }
    for (const auto& d : defs_) {
      if (d.name != name) continue;
      const std::string key = !qualified.empty() ? qualified : name;
      data_error("{}: struct {} {} differs from struct {} {} at {}; two structs cannot share the name: rename one, "
                 "e.g. --alias {}",
                 where, name, t.canonical(), d.name, d.type->canonical(), d.where,
                 shell_quote(key + "=" + upper_first(key.substr(0, key.find('.'))) + name));
    }
    struct_def d;
    d.name = name;
    d.qualified = qualified;
    d.shape = shape;
    d.type = &t;
    d.where = where;
    by_shape_[shape] = defs_.size();
    defs_.push_back(std::move(d));
  }

  const std::string& struct_name(const abi_type& t) const { return defs_.at(by_shape_.at(shape_of(t))).name; }
  std::vector<struct_def>& defs() { return defs_; }

  std::string cpp(const abi_type& t) const {
    switch (t.kind) {
      case abi_kind::uint:
        if (t.bits <= 64) return "std::uint" + std::to_string(small_bits(t.bits)) + "_t";
        return t.bits == 256 ? eth_ns + "uint256" : eth_ns + "uint_t<" + std::to_string(t.bits) + ">";
      case abi_kind::sint:
        if (t.bits <= 64) return "std::int" + std::to_string(small_bits(t.bits)) + "_t";
        return t.bits == 256 ? eth_ns + "int256" : eth_ns + "int_t<" + std::to_string(t.bits) + ">";
      case abi_kind::address: return eth_ns + "address";
      case abi_kind::boolean: return "bool";
      case abi_kind::fixed_bytes: return eth_ns + "fixed_bytes<" + std::to_string(t.size) + ">";
      case abi_kind::dynamic_bytes: return eth_ns + "bytes";
      case abi_kind::string: return "std::string";
      case abi_kind::function: return eth_ns + "fixed_bytes<24>";
      case abi_kind::fixed:
      case abi_kind::ufixed: return "std::string";
      case abi_kind::array: return "std::vector<" + cpp(*t.element) + ">";
      case abi_kind::fixed_array: return "std::array<" + cpp(*t.element) + ", " + std::to_string(t.size) + ">";
      case abi_kind::tuple: return struct_name(t);
    }
    return {};
  }

  std::string tag(const abi_type& t) const {
    switch (t.kind) {
      case abi_kind::uint: return sol_ns + "uint<" + std::to_string(t.bits) + ">";
      case abi_kind::sint: return sol_ns + "int_<" + std::to_string(t.bits) + ">";
      case abi_kind::address: return sol_ns + "address_";
      case abi_kind::boolean: return sol_ns + "bool_";
      case abi_kind::fixed_bytes: return sol_ns + "bytes_n<" + std::to_string(t.size) + ">";
      case abi_kind::dynamic_bytes: return sol_ns + "bytes_";
      case abi_kind::string: return sol_ns + "string_";
      case abi_kind::function: return sol_ns + "function_";
      case abi_kind::fixed:
      case abi_kind::ufixed:
        return sol_ns + (t.kind == abi_kind::fixed ? "fixed<" : "ufixed<") + std::to_string(t.bits) + ", " +
               std::to_string(t.decimals) + ">";
      case abi_kind::array: return sol_ns + "array<" + tag(*t.element) + ">";
      case abi_kind::fixed_array: return sol_ns + "array_n<" + tag(*t.element) + ", " + std::to_string(t.size) + ">";
      case abi_kind::tuple: return sol_ns + "tuple<" + struct_name(t) + ">";
    }
    return {};
  }

  // How a parameter of type t is passed: small values by value, the rest by const reference.
  std::string param(const abi_type& t, const std::string& name) const {
    const bool small = ((t.kind == abi_kind::uint || t.kind == abi_kind::sint) && t.bits <= 64) ||
                       t.kind == abi_kind::boolean;
    return small ? cpp(t) + " " + name : "const " + cpp(t) + "& " + name;
  }

 private:
  static unsigned small_bits(unsigned bits) { return bits <= 8 ? 8 : bits <= 16 ? 16 : bits <= 32 ? 32 : 64; }

  // The tuple's struct name (from internalType) and its components' names and types, nested.
  static std::string shape_of(const abi_type& t) {
    switch (t.kind) {
      case abi_kind::array: return shape_of(*t.element) + "[]";
      case abi_kind::fixed_array: return shape_of(*t.element) + "[" + std::to_string(t.size) + "]";
      case abi_kind::tuple: {
        std::string s = t.internal_type.rfind("struct ", 0) == 0 ? t.internal_type.substr(7) : std::string();
        const auto brackets = s.find('[');
        if (brackets != std::string::npos) s.resize(brackets);
        const auto dot = s.rfind('.');
        if (dot != std::string::npos) s = s.substr(dot + 1);
        s += "{";
        for (const auto& c : t.components) s += shape_of(c.type) + " " + c.name + ",";
        return s + "}";
      }
      default: return t.canonical();
    }
  }

  alias_table& aliases_;
  std::vector<struct_def> defs_;
  std::map<std::string, std::size_t> by_shape_;
  unsigned unnamed_ = 0;
};

// C++ names for params/fields: Solidity's where usable, `prefix<i>` for unnamed (or not an
// identifier), a trailing '_' for keywords, reserved names and repeats.
std::vector<std::string> local_names(const std::vector<abi_param>& params, const std::string& prefix,
                                     const std::set<std::string>& reserved, const std::set<std::string>& types) {
  std::vector<std::string> out;
  std::set<std::string> used;
  for (std::size_t i = 0; i < params.size(); ++i) {
    std::string n = params[i].name;
    if (!is_identifier(n)) n = prefix + std::to_string(i);
    if (is_keyword(n) || reserved.count(n) || types.count(n) || namespace_reserved.count(n)) n += "_";
    while (used.count(n) || base_data_members.count(n)) n += "_";
    used.insert(n);
    out.push_back(n);
  }
  return out;
}

// A name's suffix that tells an overload: its first parameter's type ("String", "Uint8array").
std::string suffix_of(const std::vector<abi_param>& ps) {
  if (ps.empty()) return "0";
  std::string out;
  for (const char c : ps[0].type.canonical())
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) out += c;
    else if (c == '[') out += "Array";
  return upper_first(ps[0].type.kind == abi_kind::tuple ? std::string("Tuple") : out);
}

// One spelling per C++ type, to compare parameter lists: eth::bytes is std::vector<std::uint8_t>.
std::string same_type_key(std::string t) {
  const std::string alias = eth_ns + "bytes";
  for (auto at = t.find(alias); at != std::string::npos; at = t.find(alias, at + 1)) {
    const std::size_t end = at + alias.size();
    if (end < t.size() && (std::isalnum(static_cast<unsigned char>(t[end])) || t[end] == '_')) continue;
    t.replace(at, alias.size(), "std::vector<std::uint8_t>");
  }
  return t;
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (std::size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// Text from the input that may go into a comment as it is.
bool safe_for_comment(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '$';
  });
}

bool indexed_dynamic(const abi_param& p) { return p.indexed && (p.type.is_dynamic() || p.type.kind == abi_kind::tuple || p.type.kind == abi_kind::fixed_array); }

// ---- output ---------------------------------------------------------------------------------

// `head(params...)tail` at `indent`, wrapped after commas, aligned after '(' when too long.
std::string call_line(const std::string& indent, const std::string& head, const std::vector<std::string>& params,
                      const std::string& tail) {
  const std::string one = indent + head + "(" + join(params, ", ") + ")" + tail;
  if (one.size() <= line_limit || params.size() < 2) return one + "\n";
  std::string out = indent + head + "(";
  const std::string align(out.size(), ' ');
  std::size_t col = out.size();
  for (std::size_t i = 0; i < params.size(); ++i) {
    const std::string piece = params[i] + (i + 1 < params.size() ? "," : ")" + tail);
    if (i > 0) {
      if (col + 1 + piece.size() > line_limit) {
        out += "\n" + align;
        col = align.size();
      } else {
        out += " ";
        col += 1;
      }
    }
    out += piece;
    col += piece.size();
  }
  return out + "\n";
}

class emitter {
 public:
  emitter(std::vector<contract_model>& contracts, type_namer& types, const generate_options& o)
      : contracts_(contracts), types_(types), o_(o), split_(!o.split_header.empty()) {}

  generated run() {
    std::string h = "// Generated by abigen-cpp " + o_.version + " from " + o_.inputs + ". Do not edit.\n";
    h += "#pragma once\n";
    for (const char* inc : {"array", "cstdint", "optional", "span", "string", "string_view", "utility", "vector"})
      h += std::string("#include <") + inc + ">\n";
    h += "\n#include <nlohmann/json.hpp>\n#include <pipekit/eth/contract.hpp>\n\n";
    h += "namespace " + o_.ns + " {\n";
    for (const auto& d : types_.defs()) h += "\n" + struct_decl(d);
    for (const auto& c : contracts_) h += "\n" + class_decl(c);

    std::string defs;
    for (const auto& d : types_.defs()) defs += "\n" + struct_bodies(d);
    for (const auto& c : contracts_) defs += class_bodies(c);

    generated g;
    if (split_) {
      h += "\n}  // namespace " + o_.ns + "\n";
      g.source = "// Generated by abigen-cpp " + o_.version + " from " + o_.inputs + ". Do not edit.\n";
      g.source += "#include " + string_literal(o_.split_header) + "\n\nnamespace " + o_.ns + " {\n" + defs +
                  "\n}  // namespace " + o_.ns + "\n";
    } else {
      h += defs + "\n}  // namespace " + o_.ns + "\n";
    }
    g.header = std::move(h);
    return g;
  }

 private:
  std::string inl() const { return split_ ? "" : "inline "; }

  std::string struct_decl(const struct_def& d) {
    std::string s = "// " + (safe_for_comment(d.qualified) ? "struct " + d.qualified + " " : "") + "(" +
                    types_text(d.type->components) + ")\n";
    s += "struct " + d.name + " {\n";
    for (std::size_t i = 0; i < d.fields.size(); ++i)
      s += "  " + types_.cpp(d.type->components[i].type) + " " + d.fields[i] + "{};\n";
    s += "\n  static nlohmann::json to_abi(const " + d.name + "& v);\n";
    s += "  static " + d.name + " from_abi(const nlohmann::json& j);\n";
    s += "  bool operator==(const " + d.name + "&) const = default;\n";
    return s + "};\n";
  }

  std::string struct_bodies(const struct_def& d) {
    std::string s = inl() + "nlohmann::json " + d.name + "::to_abi(const " + d.name + "& v) {\n";
    s += "  nlohmann::json out = nlohmann::json::array();\n";
    for (std::size_t i = 0; i < d.fields.size(); ++i)
      s += "  out.push_back(" + types_.tag(d.type->components[i].type) + "::to(v." + d.fields[i] + "));\n";
    s += "  return out;\n}\n\n";
    s += inl() + d.name + " " + d.name + "::from_abi(const nlohmann::json& j) {\n";
    s += "  " + d.name + " v;\n";
    for (std::size_t i = 0; i < d.fields.size(); ++i) {
      const auto& c = d.type->components[i];
      s += "  v." + d.fields[i] + " = " + types_.tag(c.type) + "::from(" + sol_ns + "detail::component(j, " +
           std::to_string(i) + ", " + string_literal(c.name) + "));\n";
    }
    return s + "  return v;\n}\n";
  }

  // A type as comments show it: Solidity's, with tuples by their struct's name ("Point[2][]").
  std::string sol_type(const abi_type& t) const {
    switch (t.kind) {
      case abi_kind::array: return sol_type(*t.element) + "[]";
      case abi_kind::fixed_array: return sol_type(*t.element) + "[" + std::to_string(t.size) + "]";
      case abi_kind::tuple: return types_.struct_name(t);
      default: return t.canonical();
    }
  }

  std::string types_text(const std::vector<abi_param>& ps) const {
    std::vector<std::string> parts;
    for (const auto& p : ps) parts.push_back(sol_type(p.type));
    return join(parts, ", ");
  }

  std::string params_text(const std::vector<abi_param>& ps, const std::vector<std::string>& names) const {
    std::vector<std::string> parts;
    for (std::size_t i = 0; i < ps.size(); ++i) parts.push_back(sol_type(ps[i].type) + " " + names[i]);
    return join(parts, ", ");
  }

  std::vector<std::string> typed_params(const std::vector<abi_param>& ps, const std::vector<std::string>& names) const {
    std::vector<std::string> out;
    for (std::size_t i = 0; i < ps.size(); ++i) out.push_back(types_.param(ps[i].type, names[i]));
    return out;
  }

  // Declarations (defaults = true) or definitions' parameter lists of each generated method.
  std::vector<std::string> view_params(const function_model& f, bool decl) const {
    auto p = typed_params(f.fn->inputs, f.params);
    p.push_back("const " + eth_ns + "call_options& at" + std::string(decl ? " = {}" : ""));
    return p;
  }
  std::vector<std::string> send_params(const function_model& f, const std::string& last, bool decl) const {
    std::vector<std::string> p = {"const " + eth_ns + "signer& from"};
    if (f.payable) p.push_back("const " + eth_ns + "uint256& value");
    for (auto& x : typed_params(f.fn->inputs, f.params)) p.push_back(std::move(x));
    p.push_back("const " + eth_ns + last + "& options" + std::string(decl ? " = {}" : ""));
    return p;
  }
  std::vector<std::string> call_params(const function_model& f, bool decl) const {
    std::vector<std::string> p;
    if (f.payable) p.push_back("const " + eth_ns + "uint256& value");
    for (auto& x : typed_params(f.fn->inputs, f.params)) p.push_back(std::move(x));
    p.push_back("const " + eth_ns + "call_options& at" + std::string(decl ? " = {}" : ""));
    return p;
  }

  std::string class_decl(const contract_model& c) {
    const std::string& n = c.name;
    std::string s = "// " + n + ": calls, transactions, events and errors of the contract at an address.\n";
    s += "class " + n + " : public " + eth_ns + "contract {\n public:\n";
    for (const auto& r : c.results) {
      s += "  // The outputs of " + r.fn->name + "(" + types_text(r.fn->inputs) + ").\n";
      s += "  struct " + r.name + " {\n";
      for (std::size_t i = 0; i < r.fields.size(); ++i)
        s += "    " + types_.cpp(r.fn->outputs[i].type) + " " + r.fields[i] + "{};\n";
      s += "\n    bool operator==(const " + r.name + "&) const = default;\n  };\n\n";
    }
    for (const auto& e : c.events) s += event_decl(e);
    for (const auto& e : c.errors) s += error_decl(e);

    s += "  " + n + "(" + eth_ns + "rpc_client& client, const " + eth_ns + "address& at)\n";
    s += "      : " + eth_ns + "contract(client, at, abi(), &on_revert) {}\n\n";
    s += "  // The contract's JSON ABI (abi_json), parsed once.\n";
    s += "  static const " + eth_ns + "abi_file& abi();\n";
    // Arrays, then views of them: a string_view of a literal would count its length in a constexpr
    // loop, which compilers bound (g++: 262144 steps, an ABI of 256 KiB).
    s += "  static constexpr char abi_json_text[] = " + raw_abi(*c.in) + ";\n";
    s += "  static constexpr std::string_view abi_json{abi_json_text, sizeof abi_json_text - 1};\n";
    if (!c.in->bytecode.empty()) {
      s += "  static constexpr char bytecode_text[] = \"0x" + c.in->bytecode + "\";\n";
      s += "  static constexpr std::string_view bytecode{bytecode_text, sizeof bytecode_text - 1};\n\n";
      s += "  // Deploys the contract (its constructor's arguments after `from`) and waits for the receipt.\n";
      s += call_line("  ", "static " + n + " deploy", deploy_params(c, true), ";");
    }
    for (const auto& f : c.functions) {
      s += "\n  // " + f.fn->name + "(" + params_text(f.fn->inputs, f.params) + ")";
      if (!f.fn->outputs.empty())
        s += " returns (" + types_text(f.fn->outputs) + ")";
      s += " " + (f.fn->state_mutability.empty() ? std::string("nonpayable") : f.fn->state_mutability) + "\n";
      if (f.view) {
        s += call_line("  ", f.result + " " + f.name, view_params(f, true), " const;");
      } else {
        s += call_line("  ", eth_ns + "receipt " + f.name, send_params(f, "send_options", true), " const;");
        s += call_line("  ", f.result + " call_" + f.name, call_params(f, true), " const;");
        s += call_line("  ", "std::uint64_t estimate_" + f.name, send_params(f, "tx_options", true), " const;");
      }
    }
    s += "\n private:\n";
    s += "  // Throws the custom error the revert data holds; returns for any other.\n";
    s += "  static void on_revert(const " + eth_ns + "bytes& data, const std::string& message);\n";
    return s + "};\n";
  }

  std::vector<std::string> deploy_params(const contract_model& c, bool decl) const {
    std::vector<std::string> p = {eth_ns + "rpc_client& client", "const " + eth_ns + "signer& from"};
    if (c.ctor_payable) p.push_back("const " + eth_ns + "uint256& value");
    if (const auto* ctor = c.abi.constructor())
      for (auto& x : typed_params(ctor->inputs, c.ctor_params)) p.push_back(std::move(x));
    p.push_back("const " + eth_ns + "send_options& options" + std::string(decl ? " = {}" : ""));
    return p;
  }

  static std::string raw_abi(const contract_input& in) {
    std::string body = "[\n";
    for (std::size_t i = 0; i < in.abi.size(); ++i)
      body += in.abi[i].dump(-1, ' ', true) + (i + 1 < in.abi.size() ? ",\n" : "\n");
    body += "]";
    std::string delim = "abi";
    for (int k = 0; body.find(")" + delim + "\"") != std::string::npos; ++k) delim = "abi" + std::to_string(k);
    return "R\"" + delim + "(" + body + ")" + delim + "\"";
  }

  std::string event_decl(const event_model& e) {
    const auto& ins = e.ev->inputs;
    std::string s = "  // event " + e.ev->name + "(";
    for (std::size_t i = 0; i < ins.size(); ++i)
      s += (i ? ", " : "") + sol_type(ins[i].type) + (ins[i].indexed ? " indexed " : " ") + e.fields[i];
    s += ")" + std::string(e.ev->anonymous ? " anonymous" : "") + "\n";
    s += "  struct " + e.name + " {\n";
    for (std::size_t i = 0; i < ins.size(); ++i)
      s += "    " + (indexed_dynamic(ins[i]) ? eth_ns + "hash" : types_.cpp(ins[i].type)) + " " + e.fields[i] + "{};" +
           (indexed_dynamic(ins[i]) ? "  // indexed: the value's hash" : "") + "\n";
    s += "    " + eth_ns + "log_meta log;\n\n";
    s += "    // The indexed inputs to match (unset: any).\n    struct filter {\n";
    for (std::size_t i = 0; i < ins.size(); ++i)
      if (ins[i].indexed) s += "      std::optional<" + types_.cpp(ins[i].type) + "> " + e.fields[i] + "{};\n";
    s += "    };\n";
    s += "    static const " + eth_ns + "abi_event& event();\n";
    s += "    static nlohmann::json filter_args(const filter& f);\n";
    s += "    static " + e.name + " from_record(const nlohmann::json& record);\n";
    return s + "  };\n\n";
  }

  std::string error_decl(const error_model& e) {
    const auto& ins = e.er->inputs;
    std::string s = "  // error " + e.er->name + "(" + params_text(ins, e.fields) + ")\n";
    s += "  struct " + e.name + " : " + eth_ns + "contract_error {\n";
    std::vector<std::string> ps = {"std::string message", eth_ns + "bytes data"};
    for (std::size_t i = 0; i < ins.size(); ++i) ps.push_back(types_.cpp(ins[i].type) + " " + e.ctor_params[i]);
    s += call_line("    ", e.name, ps, "");
    std::vector<std::string> inits = {eth_ns + "contract_error(std::move(message), std::move(data))"};
    for (std::size_t i = 0; i < ins.size(); ++i) inits.push_back(e.fields[i] + "(std::move(" + e.ctor_params[i] + "))");
    const std::string one = "        : " + join(inits, ", ") + " {}";
    if (one.size() <= line_limit) s += one + "\n";
    else s += "        : " + join(inits, ",\n          ") + " {}\n";
    for (std::size_t i = 0; i < ins.size(); ++i) s += "    " + types_.cpp(ins[i].type) + " " + e.fields[i] + ";\n";
    return s + "  };\n\n";
  }

  std::string args_lines(const std::vector<abi_param>& ps, const std::vector<std::string>& names) const {
    if (ps.empty()) return "  const nlohmann::json args = nlohmann::json::array();\n";
    std::string s = "  nlohmann::json args = nlohmann::json::array();\n";
    for (std::size_t i = 0; i < ps.size(); ++i)
      s += "  args.push_back(" + types_.tag(ps[i].type) + "::to(" + names[i] + "));\n";
    return s;
  }

  std::string lookup_line(const function_model& f) const {
    return "  static const " + eth_ns + "abi_function& fn = abi().function(" + string_literal(f.fn->signature()) + ");\n";
  }

  // The typed result from `out` (the decoded outputs), as a return statement.
  std::string result_lines(const contract_model& c, const function_model& f) const {
    const auto& outs = f.fn->outputs;
    if (outs.empty()) return "";
    if (outs.size() == 1) return "  return " + types_.tag(outs[0].type) + "::from(out.at(0));\n";
    std::string s = "  " + c.name + "::" + f.result_struct + " r;\n";
    for (std::size_t i = 0; i < outs.size(); ++i)
      s += "  r." + f.result_fields[i] + " = " + types_.tag(outs[i].type) + "::from(out.at(" + std::to_string(i) + "));\n";
    return s + "  return r;\n";
  }

  std::string qualified_result(const contract_model& c, const function_model& f) const {
    return f.result_struct.empty() ? f.result : c.name + "::" + f.result_struct;
  }

  std::string class_bodies(const contract_model& c) {
    const std::string& n = c.name;
    std::string s = "\n// ---- " + n + " ----\n\n";
    s += inl() + "const " + eth_ns + "abi_file& " + n + "::abi() {\n";
    s += "  static const " + eth_ns + "abi_file parsed = " + eth_ns + "abi_file::parse(nlohmann::json::parse(abi_json));\n";
    s += "  return parsed;\n}\n";
    if (!c.in->bytecode.empty()) {
      s += "\n" + call_line("", inl() + n + " " + n + "::deploy", deploy_params(c, false), " {");
      const auto* ctor = c.abi.constructor();
      s += ctor ? args_lines(ctor->inputs, c.ctor_params) : "  const nlohmann::json args = nlohmann::json::array();\n";
      s += "  const " + eth_ns + "receipt r = deploy_code(client, abi(), &on_revert, bytecode, args, " +
           std::string(c.ctor_payable ? "value" : "std::nullopt") + ", from, options);\n";
      s += "  return " + n + "(client, r.contract_address.value());\n}\n";
    }
    for (const auto& f : c.functions) {
      const std::string value = f.payable ? "value" : "std::nullopt";
      const std::string ret = qualified_result(c, f);
      if (f.view) {
        s += "\n" + call_line("", inl() + ret + " " + n + "::" + f.name, view_params(f, false), " const {");
        s += lookup_line(f) + args_lines(f.fn->inputs, f.params);
        if (f.fn->outputs.empty()) {
          s += "  call_function(fn, args, " + value + ", at);\n}\n";
        } else {
          s += "  const nlohmann::json out = call_function(fn, args, " + value + ", at);\n" + result_lines(c, f) + "}\n";
        }
        continue;
      }
      s += "\n" + call_line("", inl() + eth_ns + "receipt " + n + "::" + f.name, send_params(f, "send_options", false),
                            " const {");
      s += lookup_line(f) + args_lines(f.fn->inputs, f.params);
      s += "  return send_function(from, fn, args, " + value + ", options);\n}\n";
      s += "\n" + call_line("", inl() + ret + " " + n + "::call_" + f.name, call_params(f, false), " const {");
      s += lookup_line(f) + args_lines(f.fn->inputs, f.params);
      if (f.fn->outputs.empty()) {
        s += "  call_function(fn, args, " + value + ", at);\n}\n";
      } else {
        s += "  const nlohmann::json out = call_function(fn, args, " + value + ", at);\n" + result_lines(c, f) + "}\n";
      }
      s += "\n" + call_line("", inl() + "std::uint64_t " + n + "::estimate_" + f.name,
                            send_params(f, "tx_options", false), " const {");
      s += lookup_line(f) + args_lines(f.fn->inputs, f.params);
      s += "  return estimate_function(from, fn, args, " + value + ", options);\n}\n";
    }
    for (const auto& e : c.events) s += event_bodies(c, e);
    s += on_revert_body(c);
    return s;
  }

  std::string event_bodies(const contract_model& c, const event_model& e) {
    const auto& ins = e.ev->inputs;
    const std::string q = c.name + "::" + e.name;
    std::string s = "\n" + inl() + "const " + eth_ns + "abi_event& " + q + "::event() {\n";
    s += "  static const " + eth_ns + "abi_event& e = abi().event(" + string_literal(e.ev->signature()) + ");\n";
    s += "  return e;\n}\n";
    const bool any_indexed = std::any_of(ins.begin(), ins.end(), [](const abi_param& p) { return p.indexed; });
    s += "\n" + inl() + "nlohmann::json " + q + "::filter_args(const filter&" + (any_indexed ? " f" : "") + ") {\n";
    s += "  nlohmann::json out = nlohmann::json::array();\n";
    for (std::size_t i = 0; i < ins.size(); ++i) {
      if (!ins[i].indexed) {
        s += "  out.push_back(nullptr);\n";
        continue;
      }
      const std::string& f = e.fields[i];
      s += "  out.push_back(f." + f + " ? " + types_.tag(ins[i].type) + "::to(*f." + f + ") : nlohmann::json());\n";
    }
    s += "  return out;\n}\n";
    s += "\n" + inl() + q + " " + q + "::from_record(const nlohmann::json& record) {\n";
    if (!ins.empty()) s += "  const nlohmann::json& args = record_args(record);\n";
    s += "  " + e.name + " v;\n";
    for (std::size_t i = 0; i < ins.size(); ++i) {
      const std::string tag = indexed_dynamic(ins[i]) ? sol_ns + "bytes_n<32>" : types_.tag(ins[i].type);
      s += "  v." + e.fields[i] + " = " + tag + "::from(" + sol_ns + "detail::component(args, " + std::to_string(i) +
           ", " + string_literal(ins[i].name) + "));\n";
    }
    s += "  v.log = record_meta(record);\n  return v;\n}\n";
    return s;
  }

  std::string on_revert_body(const contract_model& c) {
    const std::string head = inl() + "void " + c.name + "::on_revert(const " + eth_ns + "bytes& ";
    if (c.errors.empty()) return "\n" + head + "/*data*/, const std::string& /*message*/) {}\n";
    std::string s = "\n" + head + "data, const std::string& message) {\n";
    s += "  if (data.size() < 4) return;\n";
    s += "  const " + eth_ns + "abi_error_def* e = abi().error_by_selector({data[0], data[1], data[2], data[3]});\n";
    s += "  if (e == nullptr) return;\n";
    s += "  nlohmann::json args;\n  try {\n";
    s += "    args = " + eth_ns + "decode(e->inputs, std::span<const std::uint8_t>(data).subspan(4));\n";
    s += "  } catch (const " + eth_ns + "abi_error&) {\n";
    s += "    return;  // malformed arguments: a plain contract_error\n  }\n";
    s += "  const std::string signature = e->signature();\n";
    for (const auto& e : c.errors) {
      std::vector<std::string> ps = {"message", "data"};
      for (std::size_t i = 0; i < e.er->inputs.size(); ++i)
        ps.push_back(types_.tag(e.er->inputs[i].type) + "::from(args.at(" + std::to_string(i) + "))");
      const std::string cond = "  if (signature == " + string_literal(e.er->signature()) + ")";
      const std::string one = cond + " throw " + e.name + "(" + join(ps, ", ") + ");";
      s += one.size() <= line_limit ? one + "\n" : cond + "\n" + call_line("    ", "throw " + e.name, ps, ";");
    }
    return s + "}\n";
  }

  std::vector<contract_model>& contracts_;
  type_namer& types_;
  const generate_options& o_;
  bool split_;
};

// ---- names: aliases, checks, clashes --------------------------------------------------------

// Where each abi_file entry came from in the JSON array.
struct entry_indexes {
  std::vector<std::size_t> functions, events, errors;
  std::optional<std::size_t> ctor;
};

entry_indexes index_entries(const json& abi) {
  entry_indexes x;
  for (std::size_t i = 0; i < abi.size(); ++i) {
    const auto it = abi[i].find("type");
    const std::string kind = it != abi[i].end() && it->is_string() ? it->get<std::string>() : "function";
    if (kind == "function") x.functions.push_back(i);
    else if (kind == "event") x.events.push_back(i);
    else if (kind == "error") x.errors.push_back(i);
    else if (kind == "constructor") x.ctor = i;
  }
  return x;
}

// One identifier's claimant, for clash messages.
struct claim {
  std::string what;   // "function add(uint256) (abi[2])"
  std::string owner;  // overloads of one function share a method name: the owner's key
  std::string alias;  // the --alias key that renames the claimant
};

class scope {
 public:
  scope(std::string origin, std::string contract) : origin_(std::move(origin)), contract_(std::move(contract)) {}
  void claim_name(const std::string& id, const claim& c) {
    auto [it, fresh] = claims_.emplace(id, c);
    if (fresh || (!c.owner.empty() && it->second.owner == c.owner)) return;
    std::string key = c.alias;
    if (key == it->second.alias) key = c.what.substr(0, c.what.find(' ')) + ":" + key;  // "event:Transfer()"
    data_error("{}: {} and {} both need the C++ name {} in class {}; rename one, e.g. --alias {}", origin_, it->second.what,
               c.what, id, contract_, shell_quote(key + "=" + id + "_"));
  }

 private:
  std::string origin_, contract_;
  std::map<std::string, claim> claims_;
};

void check_name(const std::string& origin, const std::string& where, const std::string& kind, const std::string& name,
                const std::string& alias_key) {
  if (!is_identifier(name))
    data_error("{}: {}: {} name \"{}\" is not a C++ identifier; rename it: --alias {}", origin, where, kind, name,
               shell_quote(alias_key + "=NewName"));
  if (is_keyword(name))
    data_error("{}: {}: {} name \"{}\" is a C++ keyword; rename it: --alias {}", origin, where, kind, name,
               shell_quote(alias_key + "=" + name + "_"));
  if (namespace_reserved.count(name) || class_members.count(name) || (kind != "function" && body_locals.count(name)))
    data_error("{}: {}: {} name \"{}\" clashes with a name the generated code uses; rename it: --alias {}", origin,
               where, kind, name, shell_quote(alias_key + "=" + name + "_"));
}

}  // namespace

generated generate(const std::vector<contract_input>& inputs, const generate_options& o) {
  alias_table aliases(o.aliases);
  type_namer types(aliases);
  std::vector<contract_model> models;
  models.reserve(inputs.size());

  // Parse, name the contracts, register every tuple type.
  for (const auto& in : inputs) {
    contract_model m;
    m.in = &in;
    try {
      m.abi = eth::abi_file::parse(in.abi);
    } catch (const eth::abi_error& e) {
      data_error("{}: {}; is it a contract's JSON ABI (solc --abi)?", in.origin, e.what());
    }
    if (m.abi.functions().empty() && m.abi.events().empty() && m.abi.errors().empty() && !m.abi.constructor())
      data_error("{}: an empty ABI (no functions, events, errors or constructor): the binding would hold nothing; "
                 "give the contract's own ABI (solc --abi), not an empty file or an interface's",
                 in.origin);
    m.name = aliases.apply({"contract:" + in.qualified, "contract:" + in.name, in.qualified, in.name}, in.name);
    check_name(in.origin, "contract", "contract", m.name, in.name);
    const auto idx = index_entries(in.abi);
    const auto where = [&](std::size_t i) { return "abi[" + std::to_string(i) + "]"; };
    for (std::size_t k = 0; k < m.abi.functions().size(); ++k) {
      const auto& fn = m.abi.functions()[k];
      for (std::size_t i = 0; i < fn.inputs.size(); ++i)
        types.visit(fn.inputs[i].type, in.origin + ": " + where(idx.functions[k]) + ".inputs[" + std::to_string(i) + "]");
      for (std::size_t i = 0; i < fn.outputs.size(); ++i)
        types.visit(fn.outputs[i].type, in.origin + ": " + where(idx.functions[k]) + ".outputs[" + std::to_string(i) + "]");
    }
    for (std::size_t k = 0; k < m.abi.events().size(); ++k)
      for (std::size_t i = 0; i < m.abi.events()[k].inputs.size(); ++i)
        types.visit(m.abi.events()[k].inputs[i].type,
                    in.origin + ": " + where(idx.events[k]) + ".inputs[" + std::to_string(i) + "]");
    for (std::size_t k = 0; k < m.abi.errors().size(); ++k)
      for (std::size_t i = 0; i < m.abi.errors()[k].inputs.size(); ++i)
        types.visit(m.abi.errors()[k].inputs[i].type,
                    in.origin + ": " + where(idx.errors[k]) + ".inputs[" + std::to_string(i) + "]");
    if (const auto* ctor = m.abi.constructor())
      for (std::size_t i = 0; i < ctor->inputs.size(); ++i)
        types.visit(ctor->inputs[i].type, in.origin + ": " + where(*idx.ctor) + ".inputs[" + std::to_string(i) + "]");
    models.push_back(std::move(m));
  }

  // Namespace-level names: structs and classes.
  std::set<std::string> type_names;
  {
    scope ns(o.ns.empty() ? "abigen-cpp" : "namespace " + o.ns, o.ns);
    for (const auto& d : types.defs()) {
      const std::string key = d.qualified.empty() ? d.name : d.qualified;
      check_name(d.where.substr(0, d.where.find(": ")), d.where.substr(d.where.find(": ") + 2), "struct", d.name, key);
      ns.claim_name(d.name, {"struct " + key + " (" + d.where + ")", "", key});
      type_names.insert(d.name);
    }
    for (const auto& m : models) {
      ns.claim_name(m.name, {"contract " + m.in->qualified + " (" + m.in->origin + ")", "", m.in->qualified});
      type_names.insert(m.name);
    }
  }

  // Per contract: members named, checked, and their clashes refused.
  for (auto& m : models) {
    const auto& in = *m.in;
    const auto idx = index_entries(in.abi);
    const auto where = [&](std::size_t i) { return "abi[" + std::to_string(i) + "]"; };
    scope members(in.origin, m.name);
    std::set<std::string> class_types = type_names;
    members.claim_name(m.name, {"the constructor of class " + m.name, "", in.qualified});

    for (std::size_t k = 0; k < m.abi.functions().size(); ++k) {
      const auto& fn = m.abi.functions()[k];
      function_model f;
      f.fn = &fn;
      f.index = idx.functions[k];
      const std::string sig = fn.signature();
      f.name = aliases.apply({"function:" + sig, "function:" + fn.name, sig, fn.name}, fn.name);
      check_name(in.origin, where(f.index) + ".name", "function", f.name, sig);
      f.view = fn.state_mutability == "view" || fn.state_mutability == "pure";
      f.payable = fn.state_mutability == "payable";
      const std::string what = "function " + sig + " (" + where(f.index) + ")";
      members.claim_name(f.name, {what, "fn:" + f.name, sig});
      if (!f.view) {
        members.claim_name("call_" + f.name, {what + "'s call_" + f.name, "call:" + f.name, sig});
        members.claim_name("estimate_" + f.name, {what + "'s estimate_" + f.name, "estimate:" + f.name, sig});
      }
      m.functions.push_back(std::move(f));
    }
    for (std::size_t k = 0; k < m.abi.events().size(); ++k) {
      const auto& ev = m.abi.events()[k];
      event_model e;
      e.ev = &ev;
      e.index = idx.events[k];
      const std::string sig = ev.signature();
      e.name = aliases.apply({"event:" + sig, "event:" + ev.name, sig, ev.name}, ev.name);
      check_name(in.origin, where(e.index) + ".name", "event", e.name, sig);
      members.claim_name(e.name, {"event " + sig + " (" + where(e.index) + ")", "", sig});
      class_types.insert(e.name);
      m.events.push_back(std::move(e));
    }
    for (std::size_t k = 0; k < m.abi.errors().size(); ++k) {
      const auto& er = m.abi.errors()[k];
      error_model e;
      e.er = &er;
      e.index = idx.errors[k];
      const std::string sig = er.signature();
      e.name = aliases.apply({"error:" + sig, "error:" + er.name, sig, er.name}, er.name);
      check_name(in.origin, where(e.index) + ".name", "error", e.name, sig);
      members.claim_name(e.name, {"error " + sig + " (" + where(e.index) + ")", "", sig});
      class_types.insert(e.name);
      m.errors.push_back(std::move(e));
    }
    // Result structs: <Name>Result; overloads with other outputs <Name>Result2, 3...
    std::map<std::string, std::vector<std::pair<std::string, std::string>>> result_shapes;  // name -> (shape, struct)
    for (auto& f : m.functions) {
      const auto& outs = f.fn->outputs;
      if (outs.size() <= 1) continue;
      std::string shape;
      for (const auto& p : outs) shape += p.type.canonical() + " " + p.name + ",";
      auto& seen = result_shapes[f.name];
      for (const auto& [sh, st] : seen)
        if (sh == shape) f.result_struct = st;
      if (!f.result_struct.empty()) continue;
      f.result_struct = upper_first(f.name) + "Result" + (seen.empty() ? "" : std::to_string(seen.size() + 1));
      seen.emplace_back(shape, f.result_struct);
      members.claim_name(f.result_struct, {"the result of function " + f.fn->signature() + " (" + where(f.index) + ")",
                                           "", f.fn->signature()});
      class_types.insert(f.result_struct);
      m.results.push_back({f.result_struct, f.fn, {}});
    }
    // Members that clash with namespace-level names.
    for (const auto& t : type_names)
      if (t != m.name) members.claim_name(t, {"the struct or class " + t, "type:" + t, t});

    // Locals: parameters and fields.
    // What the generated methods add (from, value, options, at) and their locals.
    const auto method_reserved = [](bool view, bool payable) {
      std::set<std::string> r = {"at", "abi", "fn", "args", "out", "r"};
      if (!view) r.insert({"from", "options"});
      if (payable) r.insert("value");
      return r;
    };
    for (auto& f : m.functions) {
      f.params = local_names(f.fn->inputs, "arg", method_reserved(f.view, f.payable), class_types);
      if (f.fn->outputs.empty()) f.result = "void";
      else if (f.fn->outputs.size() == 1) f.result = types.cpp(f.fn->outputs[0].type);
      else f.result = f.result_struct;
      if (!f.result_struct.empty()) {
        f.result_fields = local_names(f.fn->outputs, "out", {}, class_types);
        for (auto& r : m.results)
          if (r.name == f.result_struct && r.fields.empty()) r.fields = f.result_fields;
      }
    }
    for (auto& e : m.events)
      e.fields = local_names(e.ev->inputs, "arg",
                             {"log", "filter", "event", "filter_args", "from_record", "record", "args", "v", "f", "out", "e"},
                             class_types);
    for (auto& e : m.errors) {
      e.fields = local_names(e.er->inputs, "arg", {"message", "data", "what", "args", "signature", "e"}, class_types);
      std::set<std::string> taken(e.fields.begin(), e.fields.end());
      for (const auto& f : e.fields) {
        std::string p = f + "_";
        while (taken.count(p)) p += "_";
        taken.insert(p);
        e.ctor_params.push_back(p);
      }
    }
    if (const auto* ctor = m.abi.constructor()) {
      m.ctor_payable = ctor->state_mutability == "payable";
      auto reserved = method_reserved(false, m.ctor_payable);
      reserved.insert("client");
      m.ctor_params = local_names(ctor->inputs, "arg", reserved, class_types);
    }

    // Overloads whose C++ parameter lists are the same.
    std::map<std::string, std::map<std::vector<std::string>, const function_model*>> lists;
    const auto add = [&](const std::string& method, std::vector<std::string> list, const function_model& f) {
      auto [it, fresh] = lists[method].emplace(std::move(list), &f);
      if (fresh) return;
      const auto& other = *it->second;
      data_error("{}: {} ({}) and {} ({}) become C++ overloads {}() with the same parameter types; rename one: "
                 "--alias {}",
                 in.origin, other.fn->signature(), where(other.index), f.fn->signature(), where(f.index), method,
                 shell_quote(f.fn->signature() + "=" + f.name + suffix_of(f.fn->inputs)));
    };
    for (const auto& f : m.functions) {
      std::vector<std::string> ts;
      for (const auto& p : f.fn->inputs) ts.push_back(same_type_key(types.cpp(p.type)));
      if (f.view) {
        ts.insert(ts.begin(), "(a call)");
        add(f.name, ts, f);
        continue;
      }
      if (f.payable) ts.insert(ts.begin(), eth_ns + "uint256");
      std::vector<std::string> sends = ts;
      sends.insert(sends.begin(), "(a transaction)");
      add(f.name, sends, f);
      add("call_" + f.name, ts, f);
    }
  }
  aliases.check_all_used();

  // Field names of structs (after all type names are known).
  std::set<std::string> all_types = type_names;
  for (const auto& m : models) {
    for (const auto& e : m.events) all_types.insert(e.name);
    for (const auto& e : m.errors) all_types.insert(e.name);
    for (const auto& r : m.results) all_types.insert(r.name);
  }
  for (auto& d : types.defs())
    d.fields = local_names(d.type->components, "field", {"v", "j", "out", "to_abi", "from_abi"}, all_types);

  emitter em(models, types, o);
  return em.run();
}

}  // namespace pipekit::abigen
