#include "pipekit/push/jwt.hpp"

#include <array>
#include <cctype>
#include <memory>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include "pipekit/util/base64.hpp"

namespace pipekit::push {

namespace {

enum class family { hmac, rsa, ecdsa };

struct alg_info {
  jwt_algorithm alg;
  std::string_view name;
  family fam;
  int hash_bits;   // SHA-256, -384 or -512
  int curve_bits;  // ES*: P-256, P-384, P-521 (RFC 7518 3.4); R and S take (bits + 7) / 8 bytes each
};
constexpr std::array<alg_info, 9> algs{{
    {jwt_algorithm::hs256, "HS256", family::hmac, 256, 0},
    {jwt_algorithm::hs384, "HS384", family::hmac, 384, 0},
    {jwt_algorithm::hs512, "HS512", family::hmac, 512, 0},
    {jwt_algorithm::rs256, "RS256", family::rsa, 256, 0},
    {jwt_algorithm::rs384, "RS384", family::rsa, 384, 0},
    {jwt_algorithm::rs512, "RS512", family::rsa, 512, 0},
    {jwt_algorithm::es256, "ES256", family::ecdsa, 256, 256},
    {jwt_algorithm::es384, "ES384", family::ecdsa, 384, 384},
    {jwt_algorithm::es512, "ES512", family::ecdsa, 512, 521},
}};

const alg_info& find(jwt_algorithm a) {
  for (const auto& n : algs)
    if (n.alg == a) return n;
  throw std::logic_error("unknown jwt_algorithm");
}

const EVP_MD* digest(const alg_info& a) {
  return a.hash_bits == 256 ? EVP_sha256() : a.hash_bits == 384 ? EVP_sha384() : EVP_sha512();
}

// The PEM must hold a public key of the family (and for ES*, the curve) the algorithm needs.
std::shared_ptr<EVP_PKEY> read_public_key(const std::string& pem, const alg_info& a) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                               BIO_free);
  if (!bio) throw std::bad_alloc();
  std::shared_ptr<EVP_PKEY> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), EVP_PKEY_free);
  if (!key) throw std::invalid_argument("not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
  const int id = EVP_PKEY_get_base_id(key.get());
  if (a.fam == family::rsa && id != EVP_PKEY_RSA) throw std::invalid_argument("an RS* algorithm needs an RSA public key");
  if (a.fam == family::ecdsa && id != EVP_PKEY_EC) throw std::invalid_argument("an ES* algorithm needs an EC public key");
  if (a.fam == family::ecdsa && EVP_PKEY_get_bits(key.get()) != a.curve_bits)
    throw std::invalid_argument(std::string(a.name) + " needs an EC key on P-" + std::to_string(a.curve_bits));
  return key;
}

// JWS's ECDSA signature (R and S, big-endian, fixed width) as the DER that OpenSSL verifies.
std::optional<std::string> ecdsa_der(const std::string& rs, int curve_bits) {
  const std::size_t half = static_cast<std::size_t>(curve_bits + 7) / 8;
  if (rs.size() != 2 * half) return std::nullopt;
  const auto* p = reinterpret_cast<const unsigned char*>(rs.data());
  std::unique_ptr<ECDSA_SIG, decltype(&ECDSA_SIG_free)> sig(ECDSA_SIG_new(), ECDSA_SIG_free);
  BIGNUM* r = BN_bin2bn(p, static_cast<int>(half), nullptr);
  BIGNUM* s = BN_bin2bn(p + half, static_cast<int>(half), nullptr);
  if (!sig || !r || !s || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    throw std::bad_alloc();
  }
  const int n = i2d_ECDSA_SIG(sig.get(), nullptr);
  if (n <= 0) return std::nullopt;
  std::string der(static_cast<std::size_t>(n), '\0');
  auto* out = reinterpret_cast<unsigned char*>(der.data());
  if (i2d_ECDSA_SIG(sig.get(), &out) != n) return std::nullopt;
  return der;
}

// A NumericDate: a JSON number (integer or not) of seconds since the epoch.
std::optional<std::chrono::system_clock::time_point> numeric_date(const nlohmann::json& claims, const char* name,
                                                                  bool& bad) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::nullopt;
  if (!it->is_number() || it->get<double>() < 0 || it->get<double>() > 253402300799.0) {  // year 9999
    bad = true;
    return std::nullopt;
  }
  return std::chrono::system_clock::time_point{
      std::chrono::seconds{static_cast<long long>(it->get<double>())}};
}

}  // namespace

std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name) {
  for (const auto& n : algs) {
    if (n.name.size() != name.size()) continue;
    bool same = true;
    for (std::size_t i = 0; i < name.size() && same; ++i)
      same = std::toupper(static_cast<unsigned char>(name[i])) == n.name[i];
    if (same) return n.alg;
  }
  return std::nullopt;
}

std::string_view to_string(jwt_algorithm alg) { return find(alg).name; }

bool is_hmac(jwt_algorithm alg) {
  return alg == jwt_algorithm::hs256 || alg == jwt_algorithm::hs384 || alg == jwt_algorithm::hs512;
}

std::string_view to_string(jwt_refusal r) {
  switch (r) {
    case jwt_refusal::none: return "none";
    case jwt_refusal::malformed: return "malformed";
    case jwt_refusal::wrong_algorithm: return "wrong_algorithm";
    case jwt_refusal::bad_signature: return "bad_signature";
    case jwt_refusal::expired: return "expired";
    case jwt_refusal::not_yet_valid: return "not_yet_valid";
    case jwt_refusal::wrong_audience: return "wrong_audience";
    case jwt_refusal::wrong_issuer: return "wrong_issuer";
    case jwt_refusal::no_user: return "no_user";
  }
  return "unknown";
}

bool valid_user_id(std::string_view user) {
  if (user.empty() || user.size() > jwt_verifier::max_user_size) return false;
  for (unsigned char c : user)
    if (c < 0x20 || c == 0x7f) return false;
  return true;
}

jwt_verifier::jwt_verifier(jwt_options opts) : opts_(std::move(opts)) {
  if (is_hmac(opts_.algorithm)) {
    // RFC 7518 3.2: a key at least as long as the hash.
    if (opts_.key.size() < 32) throw std::invalid_argument("an HS* secret must have at least 32 bytes");
  } else {
    public_key_ = read_public_key(opts_.key, find(opts_.algorithm));
  }
  if (opts_.user_claim.empty()) throw std::invalid_argument("the user claim name is empty");
}

bool jwt_verifier::signature_ok(std::string_view signed_part, const std::string& signature) const {
  const alg_info& a = find(opts_.algorithm);
  const auto* data = reinterpret_cast<const unsigned char*>(signed_part.data());
  if (a.fam == family::hmac) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    if (!HMAC(digest(a), opts_.key.data(), static_cast<int>(opts_.key.size()), data, signed_part.size(), mac, &mac_size))
      return false;
    return signature.size() == mac_size && CRYPTO_memcmp(mac, signature.data(), mac_size) == 0;
  }
  std::optional<std::string> der;
  const std::string* sig = &signature;
  if (a.fam == family::ecdsa) {
    der = ecdsa_der(signature, a.curve_bits);
    if (!der) return false;
    sig = &*der;
  }
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx) throw std::bad_alloc();
  if (EVP_DigestVerifyInit(ctx.get(), nullptr, digest(a), nullptr, public_key_.get()) != 1) return false;
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()), sig->size(), data,
                          signed_part.size()) == 1;
}

jwt_verdict jwt_verifier::verify(std::string_view token, std::chrono::system_clock::time_point now) const {
  jwt_verdict v;
  auto refuse = [&](jwt_refusal r) {
    v.refusal = r;
    v.user.clear();
    v.expires.reset();
    return v;
  };
  if (token.empty() || token.size() > max_token_size) return refuse(jwt_refusal::malformed);
  const auto dot1 = token.find('.');
  const auto dot2 = dot1 == std::string_view::npos ? dot1 : token.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || token.find('.', dot2 + 1) != std::string_view::npos)
    return refuse(jwt_refusal::malformed);

  // The header's "alg" first: a token never chooses how it is checked.
  auto header_text = util::base64_decode(token.substr(0, dot1));
  if (!header_text) return refuse(jwt_refusal::malformed);
  auto header = nlohmann::json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return refuse(jwt_refusal::malformed);
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string()) return refuse(jwt_refusal::malformed);
  if (alg->get_ref<const std::string&>() != to_string(opts_.algorithm)) return refuse(jwt_refusal::wrong_algorithm);

  // Then the signature.
  auto signature = util::base64_decode(token.substr(dot2 + 1));
  if (!signature || !signature_ok(token.substr(0, dot2), *signature)) return refuse(jwt_refusal::bad_signature);

  // Then the claims (from the payload we have verified), types checked.
  auto payload_text = util::base64_decode(token.substr(dot1 + 1, dot2 - dot1 - 1));
  if (!payload_text) return refuse(jwt_refusal::malformed);
  auto claims = nlohmann::json::parse(*payload_text, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return refuse(jwt_refusal::malformed);

  bool bad = false;
  auto exp = numeric_date(claims, "exp", bad);
  auto nbf = numeric_date(claims, "nbf", bad);
  if (bad) return refuse(jwt_refusal::malformed);
  if (exp && now >= *exp + opts_.leeway) return refuse(jwt_refusal::expired);
  if (nbf && now + opts_.leeway < *nbf) return refuse(jwt_refusal::not_yet_valid);

  if (!opts_.issuer.empty()) {
    auto iss = claims.find("iss");
    if (iss == claims.end() || !iss->is_string() || iss->get_ref<const std::string&>() != opts_.issuer)
      return refuse(jwt_refusal::wrong_issuer);
  }
  if (!opts_.audience.empty()) {
    auto aud = claims.find("aud");
    bool found = false;
    if (aud != claims.end() && aud->is_string()) found = aud->get_ref<const std::string&>() == opts_.audience;
    if (aud != claims.end() && aud->is_array())
      for (const auto& a : *aud) found = found || (a.is_string() && a.get_ref<const std::string&>() == opts_.audience);
    if (!found) return refuse(jwt_refusal::wrong_audience);
  }

  auto user = claims.find(opts_.user_claim);
  if (user == claims.end()) return refuse(jwt_refusal::no_user);
  if (user->is_string()) v.user = user->get<std::string>();
  else if (user->is_number_integer()) v.user = user->dump();
  if (!valid_user_id(v.user)) return refuse(jwt_refusal::no_user);
  v.expires = exp;
  return v;
}

}  // namespace pipekit::push
