#pragma once
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

// JSON Web Tokens verified locally (ws-push's login): the signature by OpenSSL's HMAC and
// EVP_DigestVerify (RFC 7515/7518: ES* signatures are R||S, turned into DER for OpenSSL), the
// algorithm from the configuration only (a token's own "alg" is checked against it before any
// key is used, so alg:none and algorithm confusion are refused), then the claims by this file:
// exp/nbf with a leeway, an optional audience and issuer, and the user id from one claim.
namespace pipekit::push {

enum class jwt_algorithm { hs256, hs384, hs512, rs256, rs384, rs512, es256, es384, es512 };

// "HS256" ... "ES512" (case-insensitive); nothing for any other name, "none" included.
std::optional<jwt_algorithm> parse_jwt_algorithm(std::string_view name);
std::string_view to_string(jwt_algorithm alg);
bool is_hmac(jwt_algorithm alg);

struct jwt_options {
  jwt_algorithm algorithm = jwt_algorithm::hs256;
  std::string key;  // HS*: the secret's bytes; RS*/ES*: a PEM public key
  std::chrono::seconds leeway{5};
  std::string user_claim = "sub";
  std::string audience;  // when set, "aud" (a string or an array) must contain it
  std::string issuer;    // when set, "iss" must equal it
};

// Why a token was refused. The client is told little (one close code for all); the log gets this.
enum class jwt_refusal {
  none,
  malformed,         // not three base64url parts of JSON, or too large
  wrong_algorithm,   // "alg" is not the configured one (alg:none, confusion)
  bad_signature,
  expired,
  not_yet_valid,
  wrong_audience,
  wrong_issuer,
  no_user,           // the user claim is missing, not a string or an integer, empty, longer than
                     // max_user_size, or holds a control character
};
std::string_view to_string(jwt_refusal r);

struct jwt_verdict {
  jwt_refusal refusal = jwt_refusal::none;
  std::string user;
  // "exp" when the token has one: a connection must log in again before it.
  std::optional<std::chrono::system_clock::time_point> expires;

  bool ok() const { return refusal == jwt_refusal::none; }
};

// A user id goes into Redis keys and log lines: not empty, at most 256 bytes, no control
// characters. The one rule for a JWT's user claim and an auth service's "user".
bool valid_user_id(std::string_view user);

class jwt_verifier {
 public:
  // Throws std::invalid_argument when the key does not suit the algorithm (a secret shorter than
  // 32 bytes, a PEM that is not a public key of the right kind, an EC key on another curve than
  // the algorithm's).
  explicit jwt_verifier(jwt_options opts);
  jwt_verdict verify(std::string_view token, std::chrono::system_clock::time_point now) const;
  const jwt_options& options() const { return opts_; }

  static constexpr std::size_t max_token_size = 8192;
  static constexpr std::size_t max_user_size = 256;

 private:
  bool signature_ok(std::string_view signed_part, const std::string& signature) const;

  jwt_options opts_;
  std::shared_ptr<evp_pkey_st> public_key_;  // RS*/ES*; read-only once made, shared by copies
};

}  // namespace pipekit::push
