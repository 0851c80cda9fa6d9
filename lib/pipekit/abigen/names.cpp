#include "pipekit/abigen/names.hpp"

#include <algorithm>
#include <iterator>
#include <cstdio>

namespace pipekit::abigen {

namespace {
constexpr std::string_view keywords[] = {
    "alignas",   "alignof",      "and",          "and_eq",      "asm",         "auto",      "bitand",
    "bitor",     "bool",         "break",        "case",        "catch",       "char",      "char16_t",
    "char32_t",  "char8_t",      "class",        "co_await",    "co_return",   "co_yield",  "compl",
    "concept",   "const",        "const_cast",   "consteval",   "constexpr",   "constinit", "continue",
    "decltype",  "default",      "delete",       "do",          "double",      "dynamic_cast", "else",
    "enum",      "explicit",     "export",       "extern",      "false",       "final",     "float",
    "for",       "friend",       "goto",         "if",          "import",      "inline",    "int",
    "long",      "module",       "mutable",      "namespace",   "new",         "noexcept",  "not",
    "not_eq",    "nullptr",      "operator",     "or",          "or_eq",       "override",  "private",
    "protected", "public",       "register",     "reinterpret_cast", "requires", "return",  "short",
    "signed",    "sizeof",       "static",       "static_assert", "static_cast", "struct",  "switch",
    "template",  "this",         "thread_local", "throw",       "true",        "try",       "typedef",
    "typeid",    "typename",     "union",        "unsigned",    "using",       "virtual",   "void",
    "volatile",  "wchar_t",      "while",        "xor",         "xor_eq",      "NULL"};
}  // namespace

bool is_identifier(std::string_view s) {
  if (s.empty()) return false;
  const auto alpha = [](char c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; };
  if (!alpha(s[0])) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alpha(c) || (c >= '0' && c <= '9'); });
}

bool is_keyword(std::string_view s) {
  // final, override, import and module are contextual, but as names they only confuse; NULL is a macro.
  return std::find(std::begin(keywords), std::end(keywords), s) != std::end(keywords);
}

std::string string_literal(std::string_view s) {
  std::string out = "\"";
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c >= 0x20 && c < 0x7f && c != '?') {  // '?': no trigraphs
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\%03o", c);
      out += buf;
    }
  }
  return out + "\"";
}

std::string upper_first(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

}  // namespace pipekit::abigen
