#pragma once
// Where signing keys come from: a hex key file, the environment, or a geth keystore v3 file
// (scrypt or pbkdf2 key derivation, aes-128-ctr, keccak256 MAC) unlocked with a password file.

#include "pipekit/eth/tx.hpp"

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace pipekit::eth {

// A keystore that cannot be used. wrong_password: the MAC did not match.
struct keystore_error : std::runtime_error {
  keystore_error(std::string message, bool wrong_password_ = false)
      : std::runtime_error(std::move(message)), wrong_password(wrong_password_) {}
  bool wrong_password;
};

// Bounds a keystore file must respect, so that a hostile one cannot take all memory or hours:
// scrypt needs about 128 * r * n bytes (geth's standard n = 2^18, r = 8 needs 256 MiB).
constexpr std::uint64_t max_scrypt_memory = 512ull << 20;
constexpr std::uint64_t max_scrypt_r = 32;
constexpr std::uint64_t max_scrypt_p = 16;
constexpr std::uint64_t max_pbkdf2_rounds = 10'000'000;

// Decrypts a keystore v3 JSON document with `password`. Throws keystore_error naming the field
// ("crypto.kdfparams.n: ..."), or "wrong password or corrupt keystore (MAC mismatch)".
// When the file holds an "address", the key must match it.
private_key decrypt_keystore(std::string_view json_text, std::string_view password);

// Loaders that throw eth::error with a message naming the file or variable (subject(): the
// file's path), never quoting a secret: unreadable when a file is missing or unreadable,
// invalid_input when it is too large, its content is not a key or the keystore cannot be
// decrypted (wrong password included), invalid_argument when the variable is not set.
// A file holding a hex private key: 64 hex digits, optional 0x, surrounding whitespace ignored.
private_key load_key_file(const std::string& path);
// The same text held in environment variable `name`.
private_key load_key_env(const char* name);
// A keystore v3 file and a password file (its trailing newline, "\n" or "\r\n", is not part of
// the password, as geth reads it).
private_key load_keystore(const std::string& keystore_path, const std::string& password_path);

}  // namespace pipekit::eth
