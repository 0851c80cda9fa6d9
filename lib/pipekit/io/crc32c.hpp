#pragma once
#include <cstdint>
#include <string_view>

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), as snappy's framing format, iSCSI and
// ext4 use it. Written by hand: no Debian library offers it (zlib's crc32 is the IEEE polynomial).
// On x86-64 CPUs with SSE4.2 the crc32 instruction computes it; elsewhere a slicing-by-8 table.
namespace pipekit::io {

// The CRC-32C of data, continuing from crc (the value returned for the bytes before; 0 to start).
// crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::string_view data, std::uint32_t crc = 0) noexcept;

// The two implementations, for tests: crc32c() picks one at run time.
std::uint32_t crc32c_table(std::string_view data, std::uint32_t crc = 0) noexcept;
bool crc32c_hw_available() noexcept;
// REQUIRES: crc32c_hw_available().
std::uint32_t crc32c_hw(std::string_view data, std::uint32_t crc = 0) noexcept;

// Snappy's framing format stores checksums masked (a CRC of data that holds CRCs is weak).
constexpr std::uint32_t crc32c_mask(std::uint32_t crc) noexcept {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace pipekit::io
