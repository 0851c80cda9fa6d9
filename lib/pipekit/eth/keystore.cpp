#include "pipekit/eth/keystore.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/error.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/io/read_file.hpp"

namespace pipekit::eth {
namespace {

namespace io = pipekit::io;

using nlohmann::json;

constexpr std::size_t max_secret_file = 64 * 1024;     // key and password files
constexpr std::size_t max_keystore_file = 1024 * 1024;

// Bytes that are wiped when they go: a file's content, a derived key, a decrypted secret.
class secret_bytes {
 public:
  secret_bytes() = default;
  explicit secret_bytes(std::size_t n) : b_(n) {}
  ~secret_bytes() { wipe(); }
  secret_bytes(const secret_bytes&) = delete;
  secret_bytes& operator=(const secret_bytes&) = delete;
  void wipe() {
    if (!b_.empty()) OPENSSL_cleanse(b_.data(), b_.size());
  }
  std::vector<std::uint8_t>& get() { return b_; }
  std::uint8_t* data() { return b_.data(); }
  std::size_t size() const { return b_.size(); }
  std::string_view text() const { return {reinterpret_cast<const char*>(b_.data()), b_.size()}; }

 private:
  std::vector<std::uint8_t> b_;
};

// A path as messages may show it: not when it looks like a private key itself (given by mistake
// as --private-key-file), which would put the key on the terminal and in logs.
std::string shown_path(const std::string& path) {
  std::string_view p = path;
  auto trimmed = p.substr(0, p.find_last_not_of(" \t\r\n") + 1);
  if (trimmed.starts_with("0x") || trimmed.starts_with("0X")) trimmed.remove_prefix(2);
  if (trimmed.size() == 64 && find_non_hex(trimmed) == std::string_view::npos) return "(a path that looks like a key; not shown)";
  return path;
}

// Reads a whole file into `out` (sized once, so no copy of it is left behind by growth).
void read_file(const std::string& path, std::size_t limit, secret_bytes& out) {
  try {
    io::read_file(path, limit, out.get());
  } catch (const io::file_error& e) {
    throw error(e.too_large() ? error_kind::invalid_input : error_kind::unreadable,
                fmt::format("{}: {}", shown_path(path), e.what()), path);
  }
}

const json& member(const json& obj, const char* name, std::string_view where) {
  if (!obj.is_object() || !obj.contains(name)) throw keystore_error(fmt::format("{}{}: missing", where, name));
  return obj[name];
}

std::string string_member(const json& obj, const char* name, std::string_view where) {
  const json& v = member(obj, name, where);
  if (!v.is_string()) throw keystore_error(fmt::format("{}{}: must be a string", where, name));
  return v.get<std::string>();
}

std::uint64_t uint_member(const json& obj, const char* name, std::string_view where, std::uint64_t lo, std::uint64_t hi) {
  const json& v = member(obj, name, where);
  if (!v.is_number_unsigned()) throw keystore_error(fmt::format("{}{}: must be a positive integer", where, name));
  auto n = v.get<std::uint64_t>();
  if (n < lo || n > hi) throw keystore_error(fmt::format("{}{}: {} is outside {}..{}", where, name, n, lo, hi));
  return n;
}

bytes hex_member(const json& obj, const char* name, std::string_view where) {
  try {
    return from_hex(string_member(obj, name, where));
  } catch (const abi_error& e) {
    throw keystore_error(fmt::format("{}{}: {}", where, name, e.what()));
  }
}

void derive_key(const json& crypto, std::string_view password, secret_bytes& dk) {
  std::string kdf = string_member(crypto, "kdf", "crypto.");
  const json& params = member(crypto, "kdfparams", "crypto.");
  const std::string where = "crypto.kdfparams.";
  bytes salt = hex_member(params, "salt", where);
  std::size_t dklen = uint_member(params, "dklen", where, 32, 64);
  dk.get().assign(dklen, 0);
  if (kdf == "scrypt") {
    std::uint64_t n = uint_member(params, "n", where, 2, std::uint64_t{1} << 30);
    // r and p bound the time (p runs sequentially here); real files use r = 8, p = 1 (geth's light
    // setting: p = 6).
    std::uint64_t r = uint_member(params, "r", where, 1, max_scrypt_r);
    std::uint64_t p = uint_member(params, "p", where, 1, max_scrypt_p);
    if ((n & (n - 1)) != 0) throw keystore_error(fmt::format("{}n: {} is not a power of 2", where, n));
    // OpenSSL refuses (returns 0) when the parameters would need more than maxmem.
    if (EVP_PBE_scrypt(password.data(), password.size(), salt.data(), salt.size(), n, r, p, max_scrypt_memory,
                       dk.data(), dk.size()) != 1)
      throw keystore_error(fmt::format("{}: scrypt n={} r={} p={} needs more than {} MiB of memory, or is invalid",
                                       where.substr(0, where.size() - 1), n, r, p, max_scrypt_memory >> 20));
  } else if (kdf == "pbkdf2") {
    std::string prf = string_member(params, "prf", where);
    if (prf != "hmac-sha256") throw keystore_error(fmt::format("{}prf: \"{}\" is not supported (hmac-sha256 is)", where, prf));
    std::uint64_t c = uint_member(params, "c", where, 1, max_pbkdf2_rounds);
    if (PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()), salt.data(), static_cast<int>(salt.size()),
                          static_cast<int>(c), EVP_sha256(), static_cast<int>(dk.size()), dk.data()) != 1)
      throw keystore_error("crypto.kdfparams: pbkdf2 failed");
  } else {
    throw keystore_error(fmt::format("crypto.kdf: \"{}\" is not supported (scrypt and pbkdf2 are)", kdf));
  }
}

}  // namespace

private_key decrypt_keystore(std::string_view json_text, std::string_view password) {
  json doc = json::parse(json_text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) throw keystore_error("not a JSON object");
  if (!doc.contains("version") || doc["version"] != 3) throw keystore_error("version: only keystore version 3 is supported");
  // geth writes "crypto"; some old tools wrote "Crypto".
  const json& crypto = doc.contains("crypto") ? doc["crypto"] : member(doc, "Crypto", "");
  std::string cipher = string_member(crypto, "cipher", "crypto.");
  if (cipher != "aes-128-ctr") throw keystore_error(fmt::format("crypto.cipher: \"{}\" is not supported (aes-128-ctr is)", cipher));
  bytes iv = hex_member(member(crypto, "cipherparams", "crypto."), "iv", "crypto.cipherparams.");
  if (iv.size() != 16) throw keystore_error("crypto.cipherparams.iv: must be 16 bytes");
  bytes ciphertext = hex_member(crypto, "ciphertext", "crypto.");
  if (ciphertext.size() != 32) throw keystore_error("crypto.ciphertext: must be 32 bytes");
  bytes mac = hex_member(crypto, "mac", "crypto.");
  if (mac.size() != 32) throw keystore_error("crypto.mac: must be 32 bytes");

  secret_bytes dk;
  derive_key(crypto, password, dk);
  // MAC = keccak256(derivedKey[16..32] ++ ciphertext)
  secret_bytes mac_input(16 + ciphertext.size());
  std::memcpy(mac_input.data(), dk.data() + 16, 16);
  std::memcpy(mac_input.data() + 16, ciphertext.data(), ciphertext.size());
  hash256 want = keccak256(mac_input.get());
  if (CRYPTO_memcmp(want.data(), mac.data(), want.size()) != 0)
    throw keystore_error("wrong password or corrupt keystore (MAC mismatch)", true);

  secret_bytes plain(ciphertext.size());
  std::unique_ptr<EVP_CIPHER_CTX, decltype(&EVP_CIPHER_CTX_free)> ctx(EVP_CIPHER_CTX_new(), EVP_CIPHER_CTX_free);
  int len = 0, tail = 0;
  if (!ctx || EVP_DecryptInit_ex(ctx.get(), EVP_aes_128_ctr(), nullptr, dk.data(), iv.data()) != 1 ||
      EVP_DecryptUpdate(ctx.get(), plain.data(), &len, ciphertext.data(), static_cast<int>(ciphertext.size())) != 1 ||
      EVP_DecryptFinal_ex(ctx.get(), plain.data() + len, &tail) != 1 || len + tail != 32)
    throw keystore_error("crypto: aes-128-ctr decryption failed");

  std::optional<private_key> key;
  try {
    key.emplace(std::span<const std::uint8_t, 32>(plain.data(), 32));
  } catch (const std::invalid_argument& e) {
    throw keystore_error(fmt::format("crypto: the decrypted key is {}", e.what()));
  }
  if (doc.contains("address") && doc["address"].is_string()) {
    std::string want_addr = doc["address"].get<std::string>();
    if (want_addr.starts_with("0x")) want_addr.erase(0, 2);
    std::string have = to_hex(key->addr(), false);
    bool same = want_addr.size() == have.size() &&
                std::equal(have.begin(), have.end(), want_addr.begin(),
                           [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
    if (!same) throw keystore_error(fmt::format("address: the key decrypts to 0x{}, not to the file's address", have));
  }
  return std::move(*key);
}

private_key load_key_file(const std::string& path) {
  secret_bytes text;
  read_file(path, max_secret_file, text);
  try {
    return private_key::from_hex(text.text());
  } catch (const std::invalid_argument& e) {
    throw error(error_kind::invalid_input, fmt::format("{}: {}", shown_path(path), e.what()), path);
  }
}

private_key load_key_env(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr) throw error(error_kind::invalid_argument, fmt::format("{} is not set", name));
  try {
    return private_key::from_hex(v);
  } catch (const std::invalid_argument& e) {
    throw error(error_kind::invalid_input, fmt::format("{}: {}", name, e.what()));
  }
}

private_key load_keystore(const std::string& keystore_path, const std::string& password_path) {
  secret_bytes doc, password;
  read_file(keystore_path, max_keystore_file, doc);
  read_file(password_path, max_secret_file, password);
  std::string_view pw = password.text();
  if (pw.ends_with('\n')) pw.remove_suffix(1);
  if (pw.ends_with('\r')) pw.remove_suffix(1);
  try {
    return decrypt_keystore(doc.text(), pw);
  } catch (const keystore_error& e) {
    throw error(error_kind::invalid_input, fmt::format("{}: {}", keystore_path, e.what()), keystore_path);
  }
}

}  // namespace pipekit::eth
