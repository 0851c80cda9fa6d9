// Error-message text: value paths and safe previews of user input.
//
// Messages end up in JSON reject records and on terminals, so user input is shown bounded (a 1 MB string
// or a value nested 100k deep must not be dumped) and as valid UTF-8 (dump() throws on invalid UTF-8).

#include "pipekit/eth/abi_internal.hpp"

#include <nlohmann/json.hpp>

namespace pipekit::eth {
namespace {

using json = nlohmann::json;

constexpr std::size_t max_shown = 80;  // bytes of user input in a message, "..." included

void describe(std::string& out, const where* w) {
  if (w == nullptr) return;
  describe(out, w->parent);
  switch (w->how) {
    case where::step::arg: out += "arg " + std::to_string(w->index + 1); break;
    case where::step::value: out += "value " + std::to_string(w->index + 1); break;
    case where::step::field:
      out += '.';
      out += w->name.empty() ? std::to_string(w->index) : std::string(w->name);
      break;
    case where::step::element: out += '[' + std::to_string(w->index) + ']'; break;
  }
  out += " (" + w->type->json_type() + ")";
}

// Largest n' <= n that does not split a UTF-8 sequence of `s`.
std::size_t utf8_cut(std::string_view s, std::size_t n) {
  if (n >= s.size()) return s.size();
  std::size_t back = 0;
  while (n > 0 && back < 3 && (static_cast<unsigned char>(s[n]) & 0xc0) == 0x80) --n, ++back;
  return n;
}

// `s` cut to max_shown bytes ("..." included) at a UTF-8 boundary.
std::string cut(std::string s) {
  if (s.size() <= max_shown) return s;
  s.resize(utf8_cut(s, max_shown - 3));
  return s + "...";
}

}  // namespace

void fail(const where* w, std::string_view what) {
  std::string msg;
  describe(msg, w);
  if (!msg.empty()) msg += ": ";
  msg += what;
  throw abi_error(msg);
}

std::string quote_text(std::string_view text) {
  // Dump only a prefix: enough to fill the preview, never the whole (possibly huge) string.
  const std::string_view head = text.substr(0, utf8_cut(text, max_shown));
  return cut(json(std::string(head)).dump(-1, ' ', false, json::error_handler_t::replace));
}

std::string clip_text(std::string_view text) {
  std::string s = cut(std::string(text.substr(0, utf8_cut(text, max_shown + 1))));
  if (!valid_utf8(reinterpret_cast<const std::uint8_t*>(s.data()), s.size())) return quote_text(text);
  return s;
}

std::string preview(const json& v) {
  switch (v.type()) {
    case json::value_t::string: return quote_text(v.get_ref<const std::string&>());
    case json::value_t::array: {
      const std::size_t n = v.size();
      return n == 0 ? "an empty array" : "an array of " + std::to_string(n) + (n == 1 ? " element" : " elements");
    }
    case json::value_t::object: {
      const std::size_t n = v.size();
      return n == 0 ? "an empty object" : "an object with " + std::to_string(n) + (n == 1 ? " member" : " members");
    }
    case json::value_t::binary: return "binary data";
    case json::value_t::discarded: return "discarded";
    default: return cut(v.dump());  // null, bool, number: scalars, no recursion
  }
}

std::string quote_char(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string{'\'', c, '\''};
  constexpr char digits[] = "0123456789abcdef";
  return std::string{'\'', '\\', 'x', digits[u >> 4], digits[u & 0x0f], '\''};
}

}  // namespace pipekit::eth
