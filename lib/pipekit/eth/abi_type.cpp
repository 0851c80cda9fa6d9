// Types and human-readable signatures: parsing, canonical forms, selectors.

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <charconv>

namespace pipekit::eth {
namespace {

bool is_ident_start(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}
bool is_ident_char(char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); }

// Parses a decimal width such as the "256" of "uint256": digits only, no leading zero.
std::optional<unsigned> parse_width(std::string_view s) {
  if (s.empty() || s.size() > 3 || s[0] == '0') return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  return v;
}

std::optional<abi_type> elementary(std::string_view word) {
  abi_type t;
  auto int_type = [&](abi_kind kind, std::string_view width) -> std::optional<abi_type> {
    t.kind = kind;
    if (width.empty()) return t;  // uint / int
    auto bits = parse_width(width);
    if (!bits || *bits % 8 != 0 || *bits < 8 || *bits > 256) return std::nullopt;
    t.bits = static_cast<std::uint16_t>(*bits);
    return t;
  };
  auto fixed_type = [&](abi_kind kind, std::string_view rest) -> std::optional<abi_type> {
    t.kind = kind;
    t.bits = 128;
    t.decimals = 18;
    if (rest.empty()) return t;  // fixed / ufixed = fixed128x18
    const auto x = rest.find('x');
    if (x == std::string_view::npos) return std::nullopt;
    auto m = parse_width(rest.substr(0, x));
    const std::string_view n_text = rest.substr(x + 1);
    std::optional<unsigned> n = n_text == "0" ? std::optional<unsigned>(0) : parse_width(n_text);
    if (!m || !n || *m % 8 != 0 || *m < 8 || *m > 256 || *n > 80) return std::nullopt;
    t.bits = static_cast<std::uint16_t>(*m);
    t.decimals = static_cast<std::uint8_t>(*n);
    return t;
  };
  if (word == "address") return t.kind = abi_kind::address, t;
  if (word == "bool") return t.kind = abi_kind::boolean, t;
  if (word == "string") return t.kind = abi_kind::string, t;
  if (word == "bytes") return t.kind = abi_kind::dynamic_bytes, t;
  if (word == "function") return t.kind = abi_kind::function, t;
  if (word.starts_with("uint")) return int_type(abi_kind::uint, word.substr(4));
  if (word.starts_with("int")) return int_type(abi_kind::sint, word.substr(3));
  if (word.starts_with("ufixed")) return fixed_type(abi_kind::ufixed, word.substr(6));
  if (word.starts_with("fixed")) return fixed_type(abi_kind::fixed, word.substr(5));
  if (word.starts_with("bytes")) {
    auto n = parse_width(word.substr(5));
    if (!n || *n < 1 || *n > 32) return std::nullopt;
    t.kind = abi_kind::fixed_bytes;
    t.size = *n;
    return t;
  }
  return std::nullopt;
}

bool is_location_word(std::string_view w) { return w == "memory" || w == "calldata" || w == "storage"; }

// Recursive-descent parser shared by parse_type and parse_signature.
class sig_parser : public text_cursor {
 public:
  sig_parser(std::string_view s, std::string_view what) : text_cursor{s}, what_(what) {}

  [[noreturn]] void fail(std::size_t at, std::string_view msg) const {
    throw abi_error("malformed " + std::string(what_) + " at column " + std::to_string(at + 1) + ": " +
                    std::string(msg));
  }

  void expect(char c) {
    if (!eat(c)) fail(pos, std::string("expected '") + c + "'" + found());
  }
  std::string found() {
    if (pos >= text.size()) return ", found the end";
    return ", found " + quote_char(text[pos]);
  }

  // An identifier at the cursor, or empty.
  std::string_view ident() {
    skip_ws();
    if (pos >= text.size() || !is_ident_start(text[pos])) return {};
    const std::size_t start = pos;
    while (pos < text.size() && is_ident_char(text[pos])) ++pos;
    return text.substr(start, pos - start);
  }
  std::string_view peek_ident() {
    const std::size_t save = pos;
    auto w = ident();
    pos = save;
    return w;
  }

  abi_type type(std::size_t depth) {
    if (depth > max_type_depth) fail(pos, "types nested deeper than " + std::to_string(max_type_depth));
    skip_ws();
    const std::size_t start = pos;
    abi_type t;
    if (eat('(')) {
      t = tuple(start, depth);
    } else {
      const std::string_view word = ident();
      if (word.empty()) fail(pos, "expected a type" + found());
      if (word == "tuple") {
        expect('(');
        t = tuple(start, depth);
      } else {
        auto e = elementary(word);
        if (!e) {
          std::string msg = "unknown type \"" + std::string(word) + "\"";
          if (start != 0) msg += " at column " + std::to_string(start + 1);
          throw abi_error(msg);
        }
        t = std::move(*e);
        if (t.kind == abi_kind::address && peek_ident() == "payable") ident();
      }
    }
    return array_suffixes(std::move(t), depth);
  }

  // "[k]" and "[]" suffixes at the cursor, each wrapping `t`: "T[2][]" is an array of T[2].
  abi_type array_suffixes(abi_type t, std::size_t depth) {
    while (eat('[')) {
      if (++depth > max_type_depth) fail(pos, "types nested deeper than " + std::to_string(max_type_depth));
      skip_ws();
      const std::size_t num_start = pos;
      while (pos < text.size() && text[pos] >= '0' && text[pos] <= '9') ++pos;
      abi_type outer;
      if (pos == num_start) {
        outer.kind = abi_kind::array;
      } else {
        std::size_t k = 0;
        auto [p, ec] = std::from_chars(text.data() + num_start, text.data() + pos, k);
        (void)p;
        if (ec != std::errc() || k == 0 || text[num_start] == '0')
          fail(num_start, "array length must be a positive number without leading zeros");
        if (k > max_static_size / t.head_size()) fail(num_start, "fixed array too large");
        outer.kind = abi_kind::fixed_array;
        outer.size = k;
      }
      expect(']');
      outer.element = std::make_shared<const abi_type>(std::move(t));
      t = std::move(outer);
    }
    return t;
  }

  // After '(': components up to ')'.
  abi_type tuple(std::size_t start, std::size_t depth) {
    abi_type t;
    t.kind = abi_kind::tuple;
    t.components = params(depth + 1, start);
    if (t.components.empty()) fail(start, "empty tuple");
    return t;
  }

  // After '(': "type [indexed|memory|calldata|storage] [name]" separated by ',' up to ')'.
  std::vector<abi_param> params(std::size_t depth, std::size_t open) {
    std::vector<abi_param> out;
    if (eat(')')) return out;
    std::size_t head = 0;
    for (;;) {
      abi_param p;
      p.type = type(depth);
      for (std::string_view w = ident(); !w.empty(); w = ident()) {
        if (w == "indexed") {
          p.indexed = true;
        } else if (!is_location_word(w)) {
          if (!p.name.empty()) fail(pos - w.size(), "expected ',' or ')' after parameter name");
          p.name = std::string(w);
        }
      }
      head += p.type.head_size();
      if (head > max_static_size) fail(open, "parameter list too large");
      out.push_back(std::move(p));
      if (eat(',')) continue;
      if (eat(')')) return out;
      fail(pos, "expected ',' or ')'" + found());
    }
  }

 private:
  std::string_view what_;
};

void append_type(std::string& out, const abi_type& t, bool json_style) {
  switch (t.kind) {
    case abi_kind::uint:
    case abi_kind::sint:
      out += t.kind == abi_kind::uint ? "uint" : "int";
      out += std::to_string(t.bits);
      return;
    case abi_kind::fixed:
    case abi_kind::ufixed:
      out += t.kind == abi_kind::fixed ? "fixed" : "ufixed";
      out += std::to_string(t.bits);
      out += 'x';
      out += std::to_string(t.decimals);
      return;
    case abi_kind::address: out += "address"; return;
    case abi_kind::boolean: out += "bool"; return;
    case abi_kind::fixed_bytes: out += "bytes" + std::to_string(t.size); return;
    case abi_kind::dynamic_bytes: out += "bytes"; return;
    case abi_kind::string: out += "string"; return;
    case abi_kind::function: out += "function"; return;
    case abi_kind::array:
      append_type(out, *t.element, json_style);
      out += "[]";
      return;
    case abi_kind::fixed_array:
      append_type(out, *t.element, json_style);
      out += '[' + std::to_string(t.size) + ']';
      return;
    case abi_kind::tuple:
      if (json_style) {
        out += "tuple";
        return;
      }
      out += '(';
      for (std::size_t i = 0; i < t.components.size(); ++i) {
        if (i != 0) out += ',';
        append_type(out, t.components[i].type, false);
      }
      out += ')';
      return;
  }
}

}  // namespace

std::string signature_of(std::string_view name, std::span<const abi_param> params) {
  std::string out(name);
  out += '(';
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i != 0) out += ',';
    append_type(out, params[i].type, false);
  }
  out += ')';
  return out;
}

parsed_signature parse_signature_full(std::string_view text) {
  sig_parser p(text, "signature");
  parsed_signature out;
  std::string_view word = p.peek_ident();
  if (word == "function" || word == "event" || word == "error" || word == "constructor") {
    out.keyword = std::string(p.ident());
  }
  if (out.keyword != "constructor") out.function.name = std::string(p.ident());
  const std::size_t open = p.pos;
  p.expect('(');
  out.function.inputs = p.params(1, open);
  bool have_outputs = false;
  while (!p.at_end()) {
    const std::size_t at = p.pos;
    if (p.peek() == '(' && !have_outputs) {
      p.expect('(');
      out.function.outputs = p.params(1, at);
      have_outputs = true;
      continue;
    }
    const std::string_view w = p.ident();
    if (w == "returns" && !have_outputs) {
      const std::size_t paren = p.pos;
      p.expect('(');
      out.function.outputs = p.params(1, paren);
      have_outputs = true;
    } else if (w == "view" || w == "pure" || w == "payable" || w == "nonpayable") {
      out.function.state_mutability = std::string(w);
    } else if (w == "external" || w == "public" || w == "internal" || w == "private" || w == "virtual" ||
               w == "override") {
    } else if (w == "anonymous") {
      out.anonymous = true;
    } else if (w.empty()) {
      p.fail(at, "unexpected " + quote_char(text[at]));
    } else {
      p.fail(at, "unexpected \"" + std::string(w) + "\"");
    }
  }
  return out;
}

bool abi_type::is_dynamic() const {
  switch (kind) {
    case abi_kind::dynamic_bytes:
    case abi_kind::string:
    case abi_kind::array: return true;
    case abi_kind::fixed_array: return element->is_dynamic();
    case abi_kind::tuple:
      for (const auto& c : components)
        if (c.type.is_dynamic()) return true;
      return false;
    default: return false;
  }
}

std::size_t abi_type::head_size() const {
  if (kind == abi_kind::fixed_array) {
    return element->is_dynamic() ? 32 : size * element->head_size();
  }
  if (kind == abi_kind::tuple) {
    if (is_dynamic()) return 32;
    std::size_t n = 0;
    for (const auto& c : components) n += c.type.head_size();
    return n;
  }
  return 32;
}

std::string abi_type::canonical() const {
  std::string out;
  append_type(out, *this, false);
  return out;
}

std::string abi_type::json_type() const {
  std::string out;
  append_type(out, *this, true);
  return out;
}

abi_type parse_type(std::string_view text) {
  sig_parser p(text, "type");
  abi_type t = p.type(0);
  if (!p.at_end()) p.fail(p.pos, "unexpected " + quote_char(text[p.pos]) + " after the type");
  return t;
}

abi_type apply_array_suffixes(abi_type element, std::string_view text, std::size_t pos, std::size_t depth) {
  sig_parser p(text, "type");
  p.pos = pos;
  abi_type t = p.array_suffixes(std::move(element), depth);
  if (!p.at_end()) p.fail(p.pos, "unexpected " + quote_char(text[p.pos]) + " after the type");
  return t;
}

abi_function parse_signature(std::string_view text) { return parse_signature_full(text).function; }

abi_event parse_event(std::string_view text) {
  parsed_signature s = parse_signature_full(text);
  if (!s.function.outputs.empty()) throw abi_error("malformed event signature: events have no outputs");
  abi_event e;
  e.name = std::move(s.function.name);
  e.inputs = std::move(s.function.inputs);
  e.anonymous = s.anonymous;
  return e;
}

std::string abi_function::signature() const { return signature_of(name, inputs); }

std::array<std::uint8_t, 4> abi_function::selector() const { return selector_of(signature()); }

std::string abi_event::signature() const { return signature_of(name, inputs); }

std::array<std::uint8_t, 32> abi_event::topic0() const { return keccak256(signature()); }

std::string abi_error_def::signature() const { return signature_of(name, inputs); }

std::array<std::uint8_t, 4> abi_error_def::selector() const { return selector_of(signature()); }

std::array<std::uint8_t, 4> selector_of(std::string_view signature) {
  const hash256 h = keccak256(signature);
  return {h[0], h[1], h[2], h[3]};
}

}  // namespace pipekit::eth
