#include "pipekit/push/node_answer.hpp"

namespace pipekit::push {
namespace {

// A JSON number as ws-push writes an unsigned integer (no sign, no leading zero, no fraction, no
// exponent), of at most 18 digits, taken off the front of `rest`.
bool take_number(std::string_view& rest, std::size_t& out) {
  auto digit = [&](std::size_t i) { return i < rest.size() && rest[i] >= '0' && rest[i] <= '9'; };
  std::size_t n = 0;
  while (n < 18 && digit(n)) ++n;
  if (n == 0 || digit(n) || (n > 1 && rest[0] == '0')) return false;
  out = 0;
  for (std::size_t i = 0; i < n; ++i) out = out * 10 + static_cast<std::size_t>(rest[i] - '0');
  rest.remove_prefix(n);
  return true;
}

bool take(std::string_view& rest, std::string_view what) {
  if (!rest.starts_with(what)) return false;
  rest.remove_prefix(what.size());
  return true;
}

}  // namespace

std::optional<std::size_t> delivered_to_all(std::string_view answer) {
  std::size_t line = 0, delivered = 0;
  if (take(answer, R"({"line":)") && take_number(answer, line) && take(answer, R"(,"delivered":)") &&
      take_number(answer, delivered) && answer == "}")
    return delivered;
  return std::nullopt;
}

}  // namespace pipekit::push
