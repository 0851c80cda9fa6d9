#include "pipekit/push/jwt.hpp"

#include <array>
#include <cctype>
#include <memory>
#include <stdexcept>

#include <jwt.h>
#include <nlohmann/json.hpp>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pipekit/util/base64.hpp"

namespace pipekit::push {

namespace {

struct alg_name {
  jwt_algorithm alg;
  std::string_view name;
  jwt_alg_t lib;
};
constexpr std::array<alg_name, 9> algs{{
    {jwt_algorithm::hs256, "HS256", JWT_ALG_HS256},
    {jwt_algorithm::hs384, "HS384", JWT_ALG_HS384},
    {jwt_algorithm::hs512, "HS512", JWT_ALG_HS512},
    {jwt_algorithm::rs256, "RS256", JWT_ALG_RS256},
    {jwt_algorithm::rs384, "RS384", JWT_ALG_RS384},
    {jwt_algorithm::rs512, "RS512", JWT_ALG_RS512},
    {jwt_algorithm::es256, "ES256", JWT_ALG_ES256},
    {jwt_algorithm::es384, "ES384", JWT_ALG_ES384},
    {jwt_algorithm::es512, "ES512", JWT_ALG_ES512},
}};

const alg_name& find(jwt_algorithm a) {
  for (const auto& n : algs)
    if (n.alg == a) return n;
  throw std::logic_error("unknown jwt_algorithm");
}

// The PEM must hold a public key of the family the algorithm needs.
void check_public_key(const std::string& pem, jwt_algorithm alg) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                               BIO_free);
  if (!bio) throw std::bad_alloc();
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr),
                                                          EVP_PKEY_free);
  if (!key) throw std::invalid_argument("not a PEM public key (\"-----BEGIN PUBLIC KEY-----\")");
  const int id = EVP_PKEY_get_base_id(key.get());
  const bool rsa = alg == jwt_algorithm::rs256 || alg == jwt_algorithm::rs384 || alg == jwt_algorithm::rs512;
  if (rsa && id != EVP_PKEY_RSA) throw std::invalid_argument("an RS* algorithm needs an RSA public key");
  if (!rsa && id != EVP_PKEY_EC) throw std::invalid_argument("an ES* algorithm needs an EC public key");
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
    check_public_key(opts_.key, opts_.algorithm);
  }
  if (opts_.user_claim.empty()) throw std::invalid_argument("the user claim name is empty");
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

  // Then the signature, by libjwt.
  const std::string nul_terminated(token);
  jwt_t* raw = nullptr;
  const int rc = jwt_decode(&raw, nul_terminated.c_str(), reinterpret_cast<const unsigned char*>(opts_.key.data()),
                            static_cast<int>(opts_.key.size()));
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  if (rc != 0 || !jwt) return refuse(jwt_refusal::bad_signature);
  if (jwt_get_alg(jwt.get()) != find(opts_.algorithm).lib) return refuse(jwt_refusal::wrong_algorithm);

  // Then the claims (from the payload we have verified; parsed here, not by libjwt's getters,
  // so types are checked).
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
