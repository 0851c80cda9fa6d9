#pragma once
#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

// Parsing one line of JSON input, safely: every program that reads JSON Lines goes through here.
namespace pipekit::json {

constexpr std::size_t max_depth = 128;

struct parse_result {
  nlohmann::json value;
  std::string error;  // empty on success, else e.g. "invalid JSON at column 17: unexpected '}'"
  bool ok() const { return error.empty(); }
};

// Parses text as one JSON value. Unlike a plain nlohmann::json::parse:
//  - nesting deeper than max_depth is an error (a deep value would later overflow the stack
//    of anything that walks it recursively, dump() included);
//  - integers that do not fit in 64 bits stay exact, as decimal strings (nlohmann would turn
//    them into doubles and lose digits); floats stay floats.
parse_result parse(std::string_view text);

}  // namespace pipekit::json
