#include "pipekit/eth/keccak.hpp"

#include <bit>
#include <cstring>

// Keccak-f[1600] following the Keccak reference ("The Keccak reference", version 3.0, section 1.2):
// 24 rounds of theta, rho+pi, chi, iota over a 5x5 state of 64-bit lanes, sponge with rate 136 bytes.

namespace pipekit::eth {
namespace {

constexpr std::size_t rate = 136;  // (1600 - 2 * 256) / 8
constexpr int rounds = 24;

constexpr std::uint64_t round_constants[rounds] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL};

// Rotation offsets and lane order of the combined rho+pi step, walking the lanes from (1,0).
constexpr int rho_offsets[24] = {1,  3,  6,  10, 15, 21, 28, 36, 45, 55, 2,  14,
                                 27, 41, 56, 8,  25, 43, 62, 18, 39, 61, 20, 44};
constexpr int pi_lanes[24] = {10, 7,  11, 17, 18, 3, 5,  16, 8,  21, 24, 4,
                              15, 23, 19, 13, 12, 2, 20, 14, 22, 9,  6,  1};

void keccak_f(std::uint64_t (&a)[25]) noexcept {
  for (int r = 0; r < rounds; ++r) {
    std::uint64_t c[5];
    for (int x = 0; x < 5; ++x) c[x] = a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20];
    for (int x = 0; x < 5; ++x) {
      const std::uint64_t d = c[(x + 4) % 5] ^ std::rotl(c[(x + 1) % 5], 1);
      for (int y = 0; y < 25; y += 5) a[y + x] ^= d;
    }
    std::uint64_t carry = a[1];
    for (int i = 0; i < 24; ++i) {
      const int j = pi_lanes[i];
      const std::uint64_t next = a[j];
      a[j] = std::rotl(carry, rho_offsets[i]);
      carry = next;
    }
    for (int y = 0; y < 25; y += 5) {
      std::uint64_t row[5];
      for (int x = 0; x < 5; ++x) row[x] = a[y + x];
      for (int x = 0; x < 5; ++x) a[y + x] = row[x] ^ (~row[(x + 1) % 5] & row[(x + 2) % 5]);
    }
    a[0] ^= round_constants[r];
  }
}

std::uint64_t load_le64(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
  return v;
}

void absorb_block(std::uint64_t (&state)[25], const std::uint8_t* block) noexcept {
  for (std::size_t i = 0; i < rate / 8; ++i) state[i] ^= load_le64(block + 8 * i);
  keccak_f(state);
}

}  // namespace

hash256 keccak256(std::span<const std::uint8_t> data) noexcept {
  std::uint64_t state[25] = {};
  const std::uint8_t* p = data.data();
  std::size_t left = data.size();
  for (; left >= rate; left -= rate, p += rate) absorb_block(state, p);

  std::uint8_t last[rate] = {};
  if (left != 0) std::memcpy(last, p, left);
  last[left] ^= 0x01;
  last[rate - 1] ^= 0x80;
  absorb_block(state, last);

  hash256 out;
  for (std::size_t i = 0; i < 4; ++i)
    for (std::size_t b = 0; b < 8; ++b) out[8 * i + b] = static_cast<std::uint8_t>(state[i] >> (8 * b));
  return out;
}

hash256 keccak256(std::string_view data) noexcept {
  return keccak256(std::span(reinterpret_cast<const std::uint8_t*>(data.data()), data.size()));
}

}  // namespace pipekit::eth
