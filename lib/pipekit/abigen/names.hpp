#pragma once
// What makes a name usable in generated C++: identifiers, keywords, escaping into literals.
#include <string>
#include <string_view>

namespace pipekit::abigen {

// [A-Za-z_][A-Za-z0-9_]*
bool is_identifier(std::string_view s);
// C++20 keywords and alternative tokens (and, or, not...).
bool is_keyword(std::string_view s);
// A C++ string literal, quotes included, holding exactly s (octal escapes outside printable ASCII).
std::string string_literal(std::string_view s);
// "balanceOf" -> "BalanceOf".
std::string upper_first(std::string s);
// Quotes for a shell word in a hint: 'f(string)=fString'.
std::string shell_quote(std::string_view s);

}  // namespace pipekit::abigen
