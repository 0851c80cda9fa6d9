// pipekit::push::jwt_verifier (OpenSSL). Tokens are minted with libjwt, another implementation,
// and keys made with OpenSSL here;
// the hostile ones (alg:none, algorithm confusion, tampering) are written by hand.
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <catch2/catch.hpp>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "pipekit/push/jwt.hpp"
#include "pipekit/util/base64.hpp"

namespace push = pipekit::push;
using namespace std::chrono_literals;
using sys_clock = std::chrono::system_clock;

namespace {

const std::string secret(40, 's');

std::string b64url(std::string_view bytes) {
  std::string out;
  pipekit::util::append_base64(out, bytes);
  for (char& c : out) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!out.empty() && out.back() == '=') out.pop_back();
  return out;
}

std::string mint(jwt_alg_t alg, const std::string& key, const std::string& claims_json) {
  jwt_t* raw = nullptr;
  REQUIRE(jwt_new(&raw) == 0);
  std::unique_ptr<jwt_t, decltype(&jwt_free)> jwt(raw, jwt_free);
  REQUIRE(jwt_add_grants_json(jwt.get(), claims_json.c_str()) == 0);
  REQUIRE(jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                      static_cast<int>(key.size())) == 0);
  char* out = jwt_encode_str(jwt.get());
  REQUIRE(out != nullptr);
  std::string token(out);
  std::free(out);  // libjwt 1.10 has no jwt_free_str
  return token;
}

struct key_pair {
  std::string private_pem, public_pem;
};

key_pair make_keys(EVP_PKEY* key) {
  REQUIRE(key != nullptr);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> k(key, EVP_PKEY_free);
  auto pem = [&](bool priv) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    REQUIRE((priv ? PEM_write_bio_PrivateKey(bio.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr)
                  : PEM_write_bio_PUBKEY(bio.get(), k.get())) == 1);
    char* data = nullptr;
    long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
  };
  return {pem(true), pem(false)};
}

push::jwt_options opts(push::jwt_algorithm alg, std::string key) {
  push::jwt_options o;
  o.algorithm = alg;
  o.key = std::move(key);
  return o;
}

long long now_s() { return std::chrono::duration_cast<std::chrono::seconds>(sys_clock::now().time_since_epoch()).count(); }

std::string claims(std::string extra = "") {
  return "{\"sub\":\"alice\",\"exp\":" + std::to_string(now_s() + 600) + extra + "}";
}

}  // namespace

TEST_CASE("base64 decode takes both alphabets, with or without padding", "[util]") {
  using pipekit::util::base64_decode;
  CHECK(base64_decode("QQ==") == "A");
  CHECK(base64_decode("QQ") == "A");
  CHECK(base64_decode("QUI=") == "AB");
  CHECK(base64_decode("QUJD") == "ABC");
  CHECK(base64_decode("-_8") == "\xfb\xff");
  CHECK(base64_decode("+/8=") == "\xfb\xff");
  CHECK(base64_decode("") == "");
  CHECK_FALSE(base64_decode("Q"));
  CHECK_FALSE(base64_decode("Q==="));
  CHECK_FALSE(base64_decode("QQ=A"));
  CHECK_FALSE(base64_decode("Q Q="));
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  std::string enc;
  pipekit::util::append_base64(enc, all);
  CHECK(base64_decode(enc) == all);
}

TEST_CASE("jwt: HS256 tokens verified, refusals by reason", "[push]") {
  push::jwt_verifier v(opts(push::jwt_algorithm::hs256, secret));
  const auto now = sys_clock::now();

  auto ok = v.verify(mint(JWT_ALG_HS256, secret, claims()), now);
  CHECK(to_string(ok.refusal) == "none");
  CHECK(ok.user == "alice");
  REQUIRE(ok.expires);

  CHECK(v.verify(mint(JWT_ALG_HS256, std::string(40, 't'), claims()), now).refusal ==
        push::jwt_refusal::bad_signature);
  CHECK(v.verify(mint(JWT_ALG_HS512, secret, claims()), now).refusal == push::jwt_refusal::wrong_algorithm);

  // alg:none, with and without a signature part.
  const std::string none_header = b64url(R"({"alg":"none","typ":"JWT"})");
  const std::string payload = b64url(claims());
  CHECK(v.verify(none_header + "." + payload + ".", now).refusal == push::jwt_refusal::wrong_algorithm);
  CHECK(v.verify(b64url(R"({"alg":"hs256"})") + "." + payload + ".x", now).refusal ==
        push::jwt_refusal::wrong_algorithm);

  // Tampering with the payload of a good token.
  auto good = mint(JWT_ALG_HS256, secret, claims());
  const auto d1 = good.find('.'), d2 = good.rfind('.');
  auto forged = good.substr(0, d1 + 1) + b64url(R"({"sub":"mallory"})") + good.substr(d2);
  CHECK(v.verify(forged, now).refusal == push::jwt_refusal::bad_signature);

  for (const char* junk : {"", "a", "a.b", "a.b.c.d", "!!.!!.!!", "e30.e30.", "bnVsbA.e30.x"})
    CHECK(v.verify(junk, now).refusal == push::jwt_refusal::malformed);
  CHECK(v.verify(std::string(9000, 'a'), now).refusal == push::jwt_refusal::malformed);
}

TEST_CASE("jwt: time claims with leeway, audience, issuer, user claim", "[push]") {
  const long long t = now_s();
  const auto now = sys_clock::time_point{std::chrono::seconds{t}};
  push::jwt_options o = opts(push::jwt_algorithm::hs256, secret);
  o.leeway = 5s;
  push::jwt_verifier v(o);
  auto with = [&](const std::string& body) { return v.verify(mint(JWT_ALG_HS256, secret, body), now); };

  CHECK(with(R"({"sub":"a","exp":)" + std::to_string(t - 60) + "}").refusal == push::jwt_refusal::expired);
  CHECK(with(R"({"sub":"a","exp":)" + std::to_string(t - 2) + "}").ok());  // within the leeway
  CHECK(with(R"({"sub":"a","nbf":)" + std::to_string(t + 60) + "}").refusal == push::jwt_refusal::not_yet_valid);
  CHECK(with(R"({"sub":"a","nbf":)" + std::to_string(t + 2) + "}").ok());
  CHECK(with(R"({"sub":"a","exp":"tomorrow"})").refusal == push::jwt_refusal::malformed);
  CHECK(with(R"({"sub":"a"})").ok());  // no exp: valid until refused otherwise
  CHECK(with(R"({"exp":)" + std::to_string(t + 60) + "}").refusal == push::jwt_refusal::no_user);
  CHECK(with(R"({"sub":""})").refusal == push::jwt_refusal::no_user);
  CHECK(with(R"({"sub":"a\nb"})").refusal == push::jwt_refusal::no_user);
  CHECK(with(R"({"sub":{"id":1}})").refusal == push::jwt_refusal::no_user);
  CHECK(with(R"({"sub":42})").user == "42");

  o.audience = "push";
  o.issuer = "auth.example";
  o.user_claim = "uid";
  push::jwt_verifier strict(o);
  auto strict_with = [&](const std::string& body) { return strict.verify(mint(JWT_ALG_HS256, secret, body), now); };
  CHECK(strict_with(R"({"uid":"b","aud":["x","push"],"iss":"auth.example"})").user == "b");
  CHECK(strict_with(R"({"uid":"b","aud":"push","iss":"auth.example"})").ok());
  CHECK(strict_with(R"({"uid":"b","aud":"other","iss":"auth.example"})").refusal == push::jwt_refusal::wrong_audience);
  CHECK(strict_with(R"({"uid":"b","aud":"push"})").refusal == push::jwt_refusal::wrong_issuer);
  CHECK(strict_with(R"({"sub":"b","aud":"push","iss":"auth.example"})").refusal == push::jwt_refusal::no_user);
}

TEST_CASE("jwt: RS256 and ES256 with public keys; algorithm confusion refused", "[push]") {
  const auto now = sys_clock::now();
  auto rsa = make_keys(EVP_RSA_gen(2048));
  auto ec = make_keys(EVP_EC_gen("P-256"));

  push::jwt_verifier rs(opts(push::jwt_algorithm::rs256, rsa.public_pem));
  CHECK(rs.verify(mint(JWT_ALG_RS256, rsa.private_pem, claims()), now).user == "alice");
  // The public key used as an HMAC secret: the classic confusion attack.
  CHECK(rs.verify(mint(JWT_ALG_HS256, rsa.public_pem, claims()), now).refusal == push::jwt_refusal::wrong_algorithm);
  auto other = make_keys(EVP_RSA_gen(2048));
  CHECK(rs.verify(mint(JWT_ALG_RS256, other.private_pem, claims()), now).refusal == push::jwt_refusal::bad_signature);

  push::jwt_verifier es(opts(push::jwt_algorithm::es256, ec.public_pem));
  CHECK(es.verify(mint(JWT_ALG_ES256, ec.private_pem, claims()), now).user == "alice");
  CHECK(es.verify(mint(JWT_ALG_RS256, rsa.private_pem, claims()), now).refusal == push::jwt_refusal::wrong_algorithm);

  CHECK_THROWS_WITH(push::jwt_verifier(opts(push::jwt_algorithm::es256, rsa.public_pem)), Catch::Contains("EC public key"));
  CHECK_THROWS_WITH(push::jwt_verifier(opts(push::jwt_algorithm::rs256, rsa.private_pem)), Catch::Contains("PEM public key"));
  CHECK_THROWS_WITH(push::jwt_verifier(opts(push::jwt_algorithm::hs256, "short")), Catch::Contains("32 bytes"));
  CHECK(push::parse_jwt_algorithm("es256") == push::jwt_algorithm::es256);
  CHECK_FALSE(push::parse_jwt_algorithm("none"));
}

TEST_CASE("jwt: every algorithm's signature checked; ES* keys on the algorithm's curve only", "[push]") {
  const auto now = sys_clock::now();
  auto rsa = make_keys(EVP_RSA_gen(2048));
  struct row {
    push::jwt_algorithm alg;
    jwt_alg_t lib;
    std::string verify_key, sign_key;
  };
  std::vector<row> rows{{push::jwt_algorithm::hs384, JWT_ALG_HS384, secret, secret},
                        {push::jwt_algorithm::hs512, JWT_ALG_HS512, secret, secret},
                        {push::jwt_algorithm::rs384, JWT_ALG_RS384, rsa.public_pem, rsa.private_pem},
                        {push::jwt_algorithm::rs512, JWT_ALG_RS512, rsa.public_pem, rsa.private_pem}};
  for (auto [alg, lib, curve] : {std::tuple{push::jwt_algorithm::es256, JWT_ALG_ES256, "P-256"},
                                 std::tuple{push::jwt_algorithm::es384, JWT_ALG_ES384, "P-384"},
                                 std::tuple{push::jwt_algorithm::es512, JWT_ALG_ES512, "P-521"}}) {
    auto ec = make_keys(EVP_EC_gen(curve));
    rows.push_back({alg, lib, ec.public_pem, ec.private_pem});
  }
  for (const auto& r : rows) {
    INFO(push::to_string(r.alg));
    push::jwt_verifier v(opts(r.alg, r.verify_key));
    const std::string token = mint(r.lib, r.sign_key, claims());
    CHECK(v.verify(token, now).user == "alice");
    // One bit of the signature flipped; the signature cut short.
    const auto dot = token.rfind('.');
    auto sig = pipekit::util::base64_decode(std::string_view(token).substr(dot + 1));
    REQUIRE(sig);
    (*sig)[sig->size() / 2] = static_cast<char>((*sig)[sig->size() / 2] ^ 1);
    CHECK(v.verify(token.substr(0, dot + 1) + b64url(*sig), now).refusal == push::jwt_refusal::bad_signature);
    CHECK(v.verify(token.substr(0, token.size() - 4), now).refusal == push::jwt_refusal::bad_signature);
    CHECK(v.verify(token.substr(0, dot + 1), now).refusal == push::jwt_refusal::bad_signature);
  }
  auto p384 = make_keys(EVP_EC_gen("P-384"));
  CHECK_THROWS_WITH(push::jwt_verifier(opts(push::jwt_algorithm::es256, p384.public_pem)), Catch::Contains("P-256"));
}
