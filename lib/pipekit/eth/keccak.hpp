#pragma once
// Keccak-256 as Ethereum uses it (original Keccak padding 0x01, not SHA3-256's 0x06).

#include <array>
#include <cstdint>
#include <span>
#include <string_view>

namespace pipekit::eth {

using hash256 = std::array<std::uint8_t, 32>;

hash256 keccak256(std::span<const std::uint8_t> data) noexcept;
hash256 keccak256(std::string_view data) noexcept;

}  // namespace pipekit::eth
