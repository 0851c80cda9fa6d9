#pragma once
// UTF-8 as RFC 3629 allows it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing past
// U+10FFFF. The one validator for the library (nsq-tail's bodies, the log's escaping).
#include <cstddef>
#include <string_view>

namespace pipekit::util {

// The length of the valid character at the start of s: 1 for ASCII, 2..4 for a well-formed
// multi-byte sequence, 0 when s is empty or does not start with one (a stray continuation byte,
// an overlong form, a surrogate, a sequence cut short).
std::size_t utf8_char_length(std::string_view s) noexcept;

// Whether all of s is valid UTF-8. Runs of ASCII are checked 8 bytes at a time.
bool valid_utf8(std::string_view s) noexcept;

}  // namespace pipekit::util
