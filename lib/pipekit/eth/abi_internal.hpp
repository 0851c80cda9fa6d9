#pragma once
// Helpers shared by the ABI translation units; not part of the public API.

#include "pipekit/eth/abi.hpp"

namespace pipekit::eth {

struct parsed_signature {
  abi_function function;
  std::string keyword;  // "function", "event", "error", "constructor" or empty
  bool anonymous = false;
};

parsed_signature parse_signature_full(std::string_view text);
std::string signature_of(std::string_view name, std::span<const abi_param> params);
std::array<std::uint8_t, 4> selector_of(std::string_view signature);

// True when every param has a non-empty name and no two share one (results become objects).
bool all_named(std::span<const abi_param> params);

// Whether an indexed value of this type is stored in its topic as a hash (bytes, string, arrays, tuples).
bool is_hashed_topic(const abi_type& type);

}  // namespace pipekit::eth
