#pragma once
#include <optional>
#include <string>
#include <string_view>

// Base64 (RFC 4648): the standard alphabet with padding for output, and a decoder that takes
// either alphabet ("+/" or the URL-safe "-_"), with or without padding (JWTs carry none).
namespace pipekit::util {

void append_base64(std::string& out, std::string_view bytes);
// Nothing when `text` is not base64 (a character outside the alphabet, a bad length, or
// padding anywhere but at the end).
std::optional<std::string> base64_decode(std::string_view text);

}  // namespace pipekit::util
