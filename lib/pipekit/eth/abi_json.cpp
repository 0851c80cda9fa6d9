// JSON ABI files, event logs, reverts and command-line argument syntax.

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/abi_internal.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

namespace pipekit::eth {
namespace {

using json = nlohmann::json;

// ---- JSON ABI ----------------------------------------------------------------------------------------

std::string string_field(const json& entry, const char* key, const std::string& where, bool required) {
  const auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) {
    if (required) throw abi_error(where + ": missing \"" + key + "\"");
    return {};
  }
  if (!it->is_string()) throw abi_error(where + "." + key + ": expected a string");
  return it->get<std::string>();
}

bool bool_field(const json& entry, const char* key, const std::string& where) {
  const auto it = entry.find(key);
  if (it == entry.end() || it->is_null()) return false;
  if (!it->is_boolean()) throw abi_error(where + "." + key + ": expected true or false");
  return it->get<bool>();
}

// Sets internal_type on an array type and its elements: "struct S[2][]" -> "struct S[2]" -> "struct S".
void apply_internal_type(abi_type& t, const std::string& internal) {
  t.internal_type = internal;
  if (!t.element || internal.empty() || internal.back() != ']') return;
  const auto open = internal.rfind('[');
  if (open == std::string::npos) return;
  auto element = std::make_shared<abi_type>(*t.element);
  apply_internal_type(*element, internal.substr(0, open));
  t.element = std::move(element);
}

std::vector<abi_param> params_from_json(const json& list, const std::string& where, std::size_t depth);

abi_type type_from_json(const json& entry, const std::string& where, std::size_t depth) {
  if (depth > max_type_depth) throw abi_error(where + ": types nested deeper than 64");
  const std::string type = string_field(entry, "type", where, true);
  abi_type t;
  if (type.starts_with("tuple")) {
    const auto comps = entry.find("components");
    if (comps == entry.end() || !comps->is_array()) throw abi_error(where + ".components: expected an array");
    t.kind = abi_kind::tuple;
    t.components = params_from_json(*comps, where + ".components", depth + 1);
    if (t.components.empty()) throw abi_error(where + ".components: empty tuple");
    std::size_t heads = 0;
    for (const auto& c : t.components) heads += c.type.head_size();
    if (heads > max_static_size) throw abi_error(where + ".components: tuple too large");
    try {
      t = apply_array_suffixes(std::move(t), type, 5, depth);  // "tuple[2][]"
    } catch (const abi_error& e) {
      throw abi_error(where + ".type: " + e.what());
    }
  } else {
    try {
      t = parse_type(type);
    } catch (const abi_error& e) {
      throw abi_error(where + ".type: " + e.what());
    }
  }
  apply_internal_type(t, string_field(entry, "internalType", where, false));
  return t;
}

std::vector<abi_param> params_from_json(const json& list, const std::string& where, std::size_t depth) {
  std::vector<abi_param> out;
  if (list.is_null()) return out;
  if (!list.is_array()) throw abi_error(where + ": expected an array");
  out.reserve(list.size());
  for (std::size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& entry = list[i];
    if (!entry.is_object()) throw abi_error(at + ": expected an object");
    abi_param p;
    p.name = string_field(entry, "name", at, false);
    p.type = type_from_json(entry, at, depth);
    p.indexed = bool_field(entry, "indexed", at);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<abi_param> params_field(const json& entry, const char* key, const std::string& where) {
  const auto it = entry.find(key);
  if (it == entry.end()) return {};
  return params_from_json(*it, where + "." + key, 0);
}

std::string mutability(const json& entry, const std::string& where) {
  std::string m = string_field(entry, "stateMutability", where, false);
  if (!m.empty()) return m;
  if (bool_field(entry, "constant", where)) return "view";
  if (bool_field(entry, "payable", where)) return "payable";
  return "nonpayable";
}

std::string candidates(const std::vector<const abi_function*>& fns) {
  std::string s;
  for (const auto* f : fns) s += (s.empty() ? "" : ", ") + f->signature();
  return s;
}

// ---- command-line arguments --------------------------------------------------------------------------

bool is_composite(const abi_type& t) {
  return t.kind == abi_kind::array || t.kind == abi_kind::fixed_array || t.kind == abi_kind::tuple;
}

// Whether `v` is JSON the encoder would take for `t` (no floats, right containers and lengths).
bool json_fits(const abi_type& t, const json& v, std::size_t depth) {
  if (depth > max_type_depth) return false;
  switch (t.kind) {
    case abi_kind::array:
    case abi_kind::fixed_array:
      if (!v.is_array() || (t.kind == abi_kind::fixed_array && v.size() != t.size)) return false;
      return std::all_of(v.begin(), v.end(), [&](const json& e) { return json_fits(*t.element, e, depth + 1); });
    case abi_kind::tuple:
      if (v.is_array()) {
        if (v.size() != t.components.size()) return false;
        for (std::size_t i = 0; i < v.size(); ++i)
          if (!json_fits(t.components[i].type, v[i], depth + 1)) return false;
        return true;
      }
      if (v.is_object()) {
        if (v.size() != t.components.size()) return false;
        for (const auto& c : t.components) {
          const auto it = v.find(c.name);
          if (it == v.end() || !json_fits(c.type, *it, depth + 1)) return false;
        }
        return true;
      }
      return false;
    case abi_kind::boolean: return v.is_boolean();
    case abi_kind::uint:
    case abi_kind::sint:
    case abi_kind::fixed:
    case abi_kind::ufixed: return v.is_number_integer() || v.is_string();
    default: return v.is_string();
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && text_cursor::is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && text_cursor::is_space(s.back())) s.remove_suffix(1);
  return s;
}

json scalar_from_text(const abi_type& t, std::string_view text, bool quoted) {
  if (t.kind == abi_kind::string || quoted) return json(std::string(text));
  const std::string_view s = trim(text);
  if (t.kind == abi_kind::boolean) {
    if (s == "true") return json(true);
    if (s == "false") return json(false);
    throw abi_error("expected true or false for bool, got " + quote_text(s));
  }
  return json(std::string(s));
}

// cast-style literals: [a,b] arrays, (a,b) tuples, bare or "quoted" scalars.
class cli_parser : text_cursor {
 public:
  explicit cli_parser(std::string_view s) : text_cursor{s} {}

  json value(const abi_type& t, std::size_t depth) {
    if (depth > max_type_depth) fail("values nested too deeply");
    skip_ws();
    if (t.kind == abi_kind::array || t.kind == abi_kind::fixed_array) {
      expect('[');
      json arr = json::array();
      skip_ws();
      if (!eat(']')) {
        for (;;) {
          arr.push_back(value(*t.element, depth + 1));
          if (eat(',')) continue;
          expect(']');
          break;
        }
      }
      return arr;
    }
    if (t.kind == abi_kind::tuple) {
      const char close = eat('(') ? ')' : (expect('['), ']');
      json arr = json::array();
      for (std::size_t i = 0; i < t.components.size(); ++i) {
        if (i != 0) expect(',');
        arr.push_back(value(t.components[i].type, depth + 1));
      }
      expect(close);
      return arr;
    }
    if (peek() == '"') return scalar_from_text(t, quoted_text(), true);
    const std::size_t start = pos;
    while (pos < text.size() && text[pos] != ',' && text[pos] != ']' && text[pos] != ')') ++pos;
    return scalar_from_text(t, trim(text.substr(start, pos - start)), false);
  }

  using text_cursor::at_end;
  [[noreturn]] void fail(std::string_view what) const {
    throw abi_error("malformed argument at column " + std::to_string(pos + 1) + ": " + std::string(what));
  }

 private:
  void expect(char c) {
    if (!eat(c)) fail(std::string("expected '") + c + "'");
  }
  // A "quoted" scalar at the cursor; backslash escapes the next character.
  std::string quoted_text() {
    ++pos;  // opening quote
    std::string out;
    while (pos < text.size() && text[pos] != '"') {
      if (text[pos] == '\\' && pos + 1 < text.size()) ++pos;
      out += text[pos++];
    }
    if (pos == text.size()) fail("unterminated string");
    ++pos;
    skip_ws();
    return out;
  }
};

// ---- reverts -----------------------------------------------------------------------------------------

constexpr std::array<std::uint8_t, 4> error_string_selector = {0x08, 0xc3, 0x79, 0xa0};  // Error(string)
constexpr std::array<std::uint8_t, 4> panic_selector = {0x4e, 0x48, 0x7b, 0x71};         // Panic(uint256)

const char* panic_meaning(std::uint64_t code) {
  switch (code) {
    case 0x00: return "generic compiler-inserted panic";
    case 0x01: return "assertion failed";
    case 0x11: return "arithmetic underflow or overflow";
    case 0x12: return "division or modulo by zero";
    case 0x21: return "conversion to an invalid enum value";
    case 0x22: return "incorrectly encoded storage byte array";
    case 0x31: return "pop() on an empty array";
    case 0x32: return "array index out of bounds";
    case 0x41: return "out of memory (too much memory allocated or array too large)";
    case 0x51: return "call to a zero-initialized internal function";
    default: return "unknown panic code";
  }
}

abi_param unnamed(std::string_view type) { return abi_param{"", parse_type(type), false}; }

}  // namespace

abi_file abi_file::parse(const json& doc) {
  const json* list = &doc;
  if (doc.is_object()) {
    const auto it = doc.find("abi");
    if (it == doc.end()) throw abi_error("expected a JSON ABI array or an object with an \"abi\" key");
    list = &*it;
  }
  if (!list->is_array()) throw abi_error("expected a JSON ABI array or an object with an \"abi\" key");
  abi_file f;
  for (std::size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    const std::string where = "abi[" + std::to_string(i) + "]";
    if (!entry.is_object()) throw abi_error(where + ": expected an object");
    std::string kind = string_field(entry, "type", where, false);
    if (kind.empty()) kind = "function";
    if (kind == "function") {
      abi_function fn;
      fn.name = string_field(entry, "name", where, true);
      fn.inputs = params_field(entry, "inputs", where);
      fn.outputs = params_field(entry, "outputs", where);
      fn.state_mutability = mutability(entry, where);
      f.function_selectors_.push_back(fn.selector());
      f.functions_.push_back(std::move(fn));
    } else if (kind == "constructor") {
      abi_function fn;
      fn.inputs = params_field(entry, "inputs", where);
      fn.state_mutability = mutability(entry, where);
      f.constructor_ = std::move(fn);
    } else if (kind == "event") {
      abi_event ev;
      ev.name = string_field(entry, "name", where, true);
      ev.inputs = params_field(entry, "inputs", where);
      ev.anonymous = bool_field(entry, "anonymous", where);
      f.event_topics_.push_back(ev.topic0());
      f.events_.push_back(std::move(ev));
    } else if (kind == "error") {
      abi_error_def er;
      er.name = string_field(entry, "name", where, true);
      er.inputs = params_field(entry, "inputs", where);
      f.error_selectors_.push_back(er.selector());
      f.errors_.push_back(std::move(er));
    } else if (kind == "fallback") {
      f.has_fallback_ = true;
    } else if (kind == "receive") {
      f.has_receive_ = true;
    } else {
      throw abi_error(where + ".type: unknown entry type " + quote_text(kind));
    }
  }
  return f;
}

const abi_function& abi_file::function(std::string_view name_or_signature,
                                       std::optional<std::size_t> arg_count) const {
  if (name_or_signature.find('(') != std::string_view::npos) {
    const std::string sig = parse_signature(name_or_signature).signature();
    for (const auto& fn : functions_)
      if (fn.signature() == sig) return fn;
    throw abi_error("no function " + sig + " in the ABI");
  }
  std::vector<const abi_function*> found;
  for (const auto& fn : functions_) {
    if (fn.name == name_or_signature && (!arg_count || fn.inputs.size() == *arg_count)) found.push_back(&fn);
  }
  if (found.size() == 1) return *found.front();
  const std::string name = quote_text(name_or_signature);
  if (found.empty()) {
    std::string msg = "no function " + name;
    if (arg_count) msg += " with " + std::to_string(*arg_count) + " arguments";
    throw abi_error(msg + " in the ABI");
  }
  throw abi_error("ambiguous function " + name + ": " + candidates(found) + "; pass a full signature");
}

const abi_function* abi_file::function_by_selector(std::array<std::uint8_t, 4> selector) const {
  for (std::size_t i = 0; i < functions_.size(); ++i)
    if (function_selectors_[i] == selector) return &functions_[i];
  return nullptr;
}

const abi_event& abi_file::event(std::string_view name_or_signature) const {
  const abi_event* match = nullptr;
  std::string sig;
  if (name_or_signature.find('(') != std::string_view::npos) {
    sig = parse_event(name_or_signature).signature();
  }
  for (const auto& ev : events_) {
    const bool hit = sig.empty() ? ev.name == name_or_signature : ev.signature() == sig;
    if (!hit) continue;
    if (match != nullptr) {
      throw abi_error("ambiguous event " + quote_text(name_or_signature) + ": " + match->signature() +
                      ", " + ev.signature() + "; pass a full signature");
    }
    match = &ev;
  }
  if (match == nullptr) throw abi_error("no event " + quote_text(name_or_signature) + " in the ABI");
  return *match;
}

const abi_event* abi_file::event_by_topic0(std::span<const std::uint8_t> topic0) const {
  if (topic0.size() != 32) return nullptr;
  for (std::size_t i = 0; i < events_.size(); ++i) {
    if (!events_[i].anonymous && std::equal(topic0.begin(), topic0.end(), event_topics_[i].begin()))
      return &events_[i];
  }
  return nullptr;
}

const abi_error_def* abi_file::error_by_selector(std::array<std::uint8_t, 4> selector) const {
  for (std::size_t i = 0; i < errors_.size(); ++i)
    if (error_selectors_[i] == selector) return &errors_[i];
  return nullptr;
}

json decode_log(const abi_event& event, std::span<const bytes> topics, std::span<const std::uint8_t> data) {
  const std::size_t first = event.anonymous ? 0 : 1;
  std::vector<abi_param> body;
  std::size_t indexed = 0;
  for (const auto& p : event.inputs) {
    if (p.indexed) {
      ++indexed;
    } else {
      body.push_back(p);
    }
  }
  if (topics.size() != first + indexed) {
    throw abi_error("expected " + std::to_string(first + indexed) + " topics for " + event.signature() +
                    ", got " + std::to_string(topics.size()));
  }
  for (std::size_t i = 0; i < topics.size(); ++i) {
    if (topics[i].size() != 32) throw abi_error("topic " + std::to_string(i) + " is not 32 bytes");
  }
  if (first == 1) {
    const auto t0 = event.topic0();
    if (!std::equal(t0.begin(), t0.end(), topics[0].begin())) {
      throw abi_error("topic 0 " + to_hex(topics[0]) + " is not " + event.signature());
    }
  }
  json values = decode(body, data);
  json result = json::array();
  std::size_t next_topic = first, next_value = 0;
  for (const auto& p : event.inputs) {
    if (!p.indexed) {
      result.push_back(std::move(values[next_value++]));
      continue;
    }
    const bytes& topic = topics[next_topic++];
    if (is_hashed_topic(p.type)) {
      result.push_back(to_hex(topic));
      continue;
    }
    try {
      result.push_back(std::move(decode(std::span(&p, 1), topic)[0]));
    } catch (const abi_error& e) {
      throw abi_error("topic " + std::to_string(next_topic - 1) + " (" + p.type.canonical() + "): " + e.what());
    }
  }
  return named_or_array(event.inputs, std::move(result));
}

json decode_revert(std::span<const std::uint8_t> data, const abi_file* abi) {
  if (data.empty()) return json{{"kind", "empty"}};
  if (data.size() < 4) return json{{"kind", "unknown"}, {"data", to_hex(data)}};
  std::array<std::uint8_t, 4> sel;
  std::copy_n(data.begin(), 4, sel.begin());
  const auto body = data.subspan(4);
  if (sel == error_string_selector) {
    static const std::vector<abi_param> params{unnamed("string")};
    json v = decode(params, body);
    return json{{"kind", "error"}, {"signature", "Error(string)"}, {"message", std::move(v[0])}};
  }
  if (sel == panic_selector) {
    static const std::vector<abi_param> params{unnamed("uint256")};
    json v = decode(params, body);
    const std::uint8_t* word = body.data();  // decode() succeeded, so 32 bytes are there
    std::size_t first = 0;
    while (first < 31 && word[first] == 0) ++first;
    const std::string code_hex = to_hex(std::span(word + first, 32 - first));
    const std::uint64_t small = v[0].is_number_unsigned() ? v[0].get<std::uint64_t>() : ~0ULL;
    return json{{"kind", "panic"}, {"code", v[0]}, {"code_hex", code_hex}, {"meaning", panic_meaning(small)}};
  }
  if (abi != nullptr) {
    if (const abi_error_def* er = abi->error_by_selector(sel)) {
      json args = named_or_array(er->inputs, decode(er->inputs, body));
      return json{{"kind", "custom"}, {"name", er->name}, {"signature", er->signature()}, {"args", std::move(args)}};
    }
  }
  return json{{"kind", "unknown"}, {"selector", to_hex(sel)}, {"data", to_hex(data)}};
}

json parse_cli_arg(const abi_type& type, std::string_view text) {
  if (!is_composite(type)) return scalar_from_text(type, text, false);
  const std::string_view t = trim(text);
  if (!t.empty() && (t.front() == '[' || t.front() == '{')) {
    json j = json::parse(t, nullptr, false);
    if (!j.is_discarded() && json_fits(type, j, 0)) return j;
  }
  cli_parser p(text);
  json v = p.value(type, 0);
  if (!p.at_end()) p.fail("unexpected text after the value");
  return v;
}

}  // namespace pipekit::eth
