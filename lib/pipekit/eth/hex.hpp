#pragma once
// Hex conversion for byte strings: lowercase output, "0x"-prefixed by default.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace pipekit::eth {

using bytes = std::vector<std::uint8_t>;

// Lowercase hex of `data`, with a leading "0x" when `prefix`.
std::string to_hex(std::span<const std::uint8_t> data, bool prefix = true);

// Parses hex with an optional "0x"/"0X" prefix; upper and lower case digits.
// Throws abi_error on a non-hex character (naming it and its 1-based position in `text`), else on an odd
// number of digits.
bytes from_hex(std::string_view text);

// Index of the first character of `digits` that is not a hex digit, or npos.
std::size_t find_non_hex(std::string_view digits) noexcept;

// Low-level form for hot paths: decodes `digits` (no prefix, even length) into `out`, which must hold
// digits.size() / 2 bytes. Returns the index of the first invalid character, or npos when all were valid.
std::size_t decode_hex_digits(std::string_view digits, std::uint8_t* out) noexcept;

// Appends the lowercase hex digits of `data` (no prefix) to `out`.
void append_hex(std::string& out, std::span<const std::uint8_t> data);

}  // namespace pipekit::eth
