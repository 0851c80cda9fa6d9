#include "pipekit/eth/keystore.hpp"
#include "pipekit/eth/tx.hpp"
#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/error.hpp"

#include <fstream>
#include <type_traits>
#include <iterator>
#include <string>

#include <catch2/catch.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

using namespace pipekit::eth;

namespace {

const char* const anvil_key0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const char* const anvil_key1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const char* const anvil_key2 = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

std::string hex(std::span<const std::uint8_t> b) { return to_hex(b); }
bytes str(std::string_view s) { return bytes(s.begin(), s.end()); }

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(PIPEKIT_TEST_FIXTURES) + "/keystore/" + name, std::ios::binary);
  REQUIRE(in);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const std::string password = "correct horse battery staple";

}  // namespace

// The examples of the RLP page of the Ethereum wiki (ethereum.org, "Recursive-length prefix").
TEST_CASE("rlp: the spec's examples", "[sign]") {
  CHECK(hex(rlp::encode_bytes(str("dog"))) == "0x83646f67");
  std::vector<bytes> cat_dog = {rlp::encode_bytes(str("cat")), rlp::encode_bytes(str("dog"))};
  CHECK(hex(rlp::encode_list(cat_dog)) == "0xc88363617483646f67");
  CHECK(hex(rlp::encode_bytes({})) == "0x80");
  CHECK(hex(rlp::encode_list({})) == "0xc0");
  CHECK(hex(rlp::encode_uint(std::uint64_t{0})) == "0x80");
  CHECK(hex(rlp::encode_bytes(bytes{0x00})) == "0x00");
  CHECK(hex(rlp::encode_uint(std::uint64_t{15})) == "0x0f");
  CHECK(hex(rlp::encode_uint(std::uint64_t{1024})) == "0x820400");
  CHECK(hex(rlp::encode_uint(std::uint64_t{0x80})) == "0x8180");
  // the set-theoretical representation of three: [ [], [[]], [ [], [[]] ] ]
  bytes empty = rlp::encode_list({});
  std::vector<bytes> one = {empty};
  bytes l1 = rlp::encode_list(one);
  std::vector<bytes> two = {empty, l1};
  std::vector<bytes> three = {empty, l1, rlp::encode_list(two)};
  CHECK(hex(rlp::encode_list(three)) == "0xc7c0c1c0c3c0c1c0");
  // 56 bytes: the first string in the long form
  std::string lorem = "Lorem ipsum dolor sit amet, consectetur adipisicing elit";
  REQUIRE(lorem.size() == 56);
  CHECK(hex(rlp::encode_bytes(str(lorem))) == "0xb838" + to_hex(str(lorem), false));
  // a list whose payload is 56 bytes long: long form list prefix 0xf8 0x38
  std::vector<bytes> long_list = {rlp::encode_bytes(bytes(55, 0xaa))};
  CHECK(hex(rlp::encode_list(long_list)).substr(0, 10) == "0xf838b7aa");
  // 1024 bytes: two length bytes
  CHECK(hex(rlp::encode_bytes(bytes(1024, 1))).substr(0, 8) == "0xb90400");
}

TEST_CASE("u256 parsing and formatting", "[sign]") {
  CHECK(quantity_hex(parse_u256("0")) == "0x0");
  CHECK(quantity_hex(parse_u256("1000")) == "0x3e8");
  CHECK(quantity_hex(parse_u256("0x03E8")) == "0x3e8");
  CHECK(decimal(parse_u256("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff")) ==
        "115792089237316195423570985008687907853269984665640564039457584007913129639935");
  CHECK(parse_u256("115792089237316195423570985008687907853269984665640564039457584007913129639935") ==
        parse_u256("0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"));
  CHECK_THROWS_AS(parse_u256("115792089237316195423570985008687907853269984665640564039457584007913129639936"),
                  std::invalid_argument);
  CHECK_THROWS_AS(parse_u256("0x1" + std::string(64, '0')), std::invalid_argument);
  CHECK_THROWS_AS(parse_u256(""), std::invalid_argument);
  CHECK_THROWS_AS(parse_u256("0x"), std::invalid_argument);
  CHECK_THROWS_AS(parse_u256("-1"), std::invalid_argument);
  CHECK_THROWS_AS(parse_u256("1e18"), std::invalid_argument);
  CHECK(u256::of(0x3e8) == parse_u256("1000"));
  CHECK(parse_u256("18446744073709551615").to_u64() == std::optional<std::uint64_t>(UINT64_MAX));
  CHECK_FALSE(parse_u256("18446744073709551616").to_u64());
  CHECK(parse_u256("255") < parse_u256("256"));
  // EIP-1559 suggestion: 2 * base + priority, saturating
  CHECK(decimal(suggested_max_fee(parse_u256("1000000000"), parse_u256("1500000000"))) == "3500000000");
  const u256 max = parse_u256("0x" + std::string(64, 'f'));
  CHECK(suggested_max_fee(max, u256::of(1)) == max);
}

// A key cannot be printed, formatted or copied by accident.
static_assert(!fmt::is_formattable<private_key>::value);
static_assert(!std::is_copy_constructible_v<private_key> && !std::is_copy_assignable_v<private_key>);

TEST_CASE("private key: address, validity, no echo of the secret", "[sign]") {
  CHECK(checksum_address(private_key::from_hex(anvil_key0).addr()) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
  CHECK(checksum_address(private_key::from_hex(anvil_key1).addr()) == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  // whitespace and a missing 0x are fine
  CHECK(checksum_address(private_key::from_hex(std::string("  ") + (anvil_key2 + 2) + "\n").addr()) ==
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
  CHECK_THROWS_WITH(private_key::from_hex(std::string(anvil_key0) + "00"), "not a 32-byte hex private key");
  CHECK_THROWS_WITH(private_key::from_hex("0xzc0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"),
                    "not a 32-byte hex private key");
  CHECK_THROWS_AS(private_key::from_hex(std::string(64, '0')), std::invalid_argument);
  // the curve order n itself is not a key
  CHECK_THROWS_AS(private_key::from_hex("fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141"),
                  std::invalid_argument);
  private_key a = private_key::from_hex(anvil_key0);
  private_key b = std::move(a);
  CHECK(checksum_address(b.addr()) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
}

TEST_CASE("contract addresses", "[sign]") {
  // anvil's first deployment from dev account 0 (nonce 0), a well-known address
  CHECK(checksum_address(create_address(parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), 0)) ==
        "0x5FbDB2315678afecb367f032d93F642f64180aa3");
  CHECK(checksum_address(create_address(parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), 1)) ==
        "0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512");
  CHECK_THROWS_AS(parse_address("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92267"), std::invalid_argument);  // checksum
  CHECK_THROWS_AS(parse_address("f39fd6e51aad88f6f4ce6ab8827279cfffb92266"), std::invalid_argument);
  CHECK_NOTHROW(parse_address("0xF39FD6E51AAD88F6F4CE6AB8827279CFFFB92266"));
}

// Expected raw transactions and hashes from ethers v6.17 (Transaction.from + Wallet.signingKey.sign),
// printed by `node tests/tools/sign_vectors.mjs vectors`.
TEST_CASE("signed transactions equal ethers v6's", "[sign]") {
  const bytes long_data(100, 0xab);
  struct vector {
    const char* name;
    const char* key;
    transaction tx;
    const char* raw;
    const char* hash;
  };
  auto tx1559 = [](std::uint64_t chain, std::uint64_t nonce, const char* prio, const char* max_fee, std::uint64_t gas,
                   const char* to, const char* value, bytes data) {
    transaction t;
    t.type = transaction::kind::eip1559;
    t.chain_id = chain, t.nonce = nonce, t.gas = gas;
    t.max_priority_fee_per_gas = parse_u256(prio), t.max_fee_per_gas = parse_u256(max_fee);
    if (to != nullptr) t.to = parse_address(to);
    t.value = parse_u256(value);
    t.data = std::move(data);
    return t;
  };
  auto legacy = [](std::uint64_t chain, std::uint64_t nonce, const char* price, std::uint64_t gas, const char* to,
                   const char* value, bytes data) {
    transaction t;
    t.type = transaction::kind::legacy;
    t.chain_id = chain, t.nonce = nonce, t.gas = gas;
    t.gas_price = parse_u256(price);
    if (to != nullptr) t.to = parse_address(to);
    t.value = parse_u256(value);
    t.data = std::move(data);
    return t;
  };
  const vector vectors[] = {
      {"eip1559 call", anvil_key0,
       tx1559(31337, 0, "1000000000", "3000000000", 21000, "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "1", {}),
       "0x02f86c827a6980843b9aca0084b2d05e008252089470997970c51812dc3a010c7d01b50e0d17dc79c80180c001a0d88980f37a8935c2"
       "3f1c351cc55f4ed8641bf9d83b653de340f6cd516725197ea02c92763070333bf460cf77eb3f613d5177b7a63b37d324c744a94a1946ed"
       "c0db",
       "0x825fff6864eea97503409cf8b78949f7d27f7d1658275b59983108948a9c7918"},
      {"eip1559 with data and a big value", anvil_key0,
       tx1559(1, 1234567, "0", "100000000000000000000", 300000, "0x5FbDB2315678afecb367f032d93F642f64180aa3",
              "1606938044258990275541962092341162602522202993782792835313721", long_data),
       "0x02f8ee018312d6878089056bc75e2d63100000830493e0945fbdb2315678afecb367f032d93f642f64180aa39a010000000000000000"
       "0000000000000000000000000000003039b864abababababababababababababababababababababababababababababababababababab"
       "ababababababababababababababababababababababababababababababababababababababababababababababababababababababab"
       "abababababababababc080a0344df214cdb1827a0f6a31ac409ecd1e68715caae7fa56678c2befb56aa39309a0299e53b29c66dcda3927"
       "94825d95ed657d4148d1a24d2af862bb6c20a179ebd3",
       "0xc0ba65671c84800618c0504c2de4e068b56942663c94431b00a13863fee27165"},
      {"eip1559 contract creation", anvil_key1,
       tx1559(31337, 7, "1", "2", 1000000, nullptr, "0", from_hex("0x6080604052348015600f57600080fd5b50")),
       "0x02f862827a69070102830f42408080916080604052348015600f57600080fd5b50c080a07e7f7aceab098efac1ae581e7c2c6a989daf"
       "db05a14d19acd3412c9362580986a008e3f9c4f9e98d8619e41ad411e146f34de10b28ad8fa02a75dda3ca97e07769",
       "0xeafc6bf5a563ecbb718b801d6ed5722aecd5c7f580b46782082e87446968a0e9"},
      {"legacy eip155 chain 1", anvil_key0,
       legacy(1, 9, "20000000000", 21000, "0x3535353535353535353535353535353535353535", "1000000000000000000", {}),
       "0xf86c098504a817c800825208943535353535353535353535353535353535353535880de0b6b3a76400008025a03016c5b00acdf2ab64"
       "17652b9af1b5458ae73a8f2ddbc2ce03ccddde54184f71a0160362f6bf9e0af5a6f543153b85cfce8bce64cf08607f2cfd486fecb81eba"
       "1d",
       "0xfdd8467edead7f7fbf2fc51a9dfb9f6a36a536553f8d0e51682469a7d4a97a6e"},
      {"legacy eip155 chain 31337 with data", anvil_key2,
       legacy(31337, 0, "875000000", 50000, "0x5FbDB2315678afecb367f032d93F642f64180aa3", "0", long_data),
       "0xf8ca8084342770c082c350945fbdb2315678afecb367f032d93f642f64180aa380b864ababababababababababababababababababab"
       "ababababababababababababababababababababababababababababababababababababababababababababababababababababababab"
       "abababababababababababababababababababababababababab82f4f6a07d9479f40e26535fa428eabe98706b91a9fceb8bfb123d32db"
       "57676b0ac3c86ea0183ef8e84daf5804c100c5852a4e2757333fc7c92f53b0eab537b102e99fcbbe",
       "0x17744dad541c815e1f70a146a5992003f9331beab2423e5fb75113e0be2fac94"},
      {"legacy creation", anvil_key2, legacy(31337, 3, "1", 90000, nullptr, "5", bytes{0x00}),
       "0xf84e030183015f9080050082f4f5a0856c006228a867b6132e56d0b65814d7474c8fef3ddcb98d101257b9c05eb50aa0743f23736854"
       "308c7dc6dd92477e8eae37528c1ffac9841e999beaef508c7b75",
       "0xcd34a27565ef120436afa3a0c565cd03c56bd75c02bb159c54429fffe875addc"},
  };
  for (const auto& v : vectors) {
    INFO(v.name);
    auto signed_tx = sign(v.tx, private_key::from_hex(v.key));
    CHECK(hex(signed_tx.raw) == v.raw);
    CHECK(hex(signed_tx.hash) == v.hash);
  }
}

TEST_CASE("keystore v3: scrypt and pbkdf2 files from ethers and node:crypto", "[sign]") {
  // Made by `node tests/tools/sign_vectors.mjs keystores tests/fixtures/keystore` (scrypt n = 1024).
  CHECK(checksum_address(decrypt_keystore(fixture("scrypt.json"), password).addr()) ==
        "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  CHECK(checksum_address(decrypt_keystore(fixture("pbkdf2.json"), password).addr()) ==
        "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
  // and the key is the right one: it signs as anvil's dev key #1 does
  transaction t;
  t.chain_id = 31337;
  t.gas = 21000;
  CHECK(sign(t, decrypt_keystore(fixture("scrypt.json"), password)).raw ==
        sign(t, private_key::from_hex(anvil_key1)).raw);
}

TEST_CASE("keystore v3: wrong password, tampered and hostile files", "[sign]") {
  for (const char* name : {"scrypt.json", "pbkdf2.json"}) {
    INFO(name);
    try {
      decrypt_keystore(fixture(name), "correct horse battery stapler");
      FAIL("decrypted with a wrong password");
    } catch (const keystore_error& e) {
      CHECK(e.wrong_password);
      CHECK(std::string(e.what()) == "wrong password or corrupt keystore (MAC mismatch)");
    }
  }
  // one ciphertext digit changed: the MAC no longer matches
  std::string doc = fixture("pbkdf2.json");
  auto at = doc.find("\"ciphertext\":\"") + 14;
  doc[at] = doc[at] == '0' ? '1' : '0';
  CHECK_THROWS_WITH(decrypt_keystore(doc, password), "wrong password or corrupt keystore (MAC mismatch)");
  // an address that is not the key's
  doc = fixture("pbkdf2.json");
  doc.replace(doc.find("3c44cddd"), 8, "3c44cdde");
  CHECK_THROWS_WITH(decrypt_keystore(doc, password), Catch::Contains("not to the file's address"));

  nlohmann::json j = nlohmann::json::parse(fixture("scrypt.json"));
  auto with = [&](const char* pointer, nlohmann::json value) {
    nlohmann::json copy = j;
    copy[nlohmann::json::json_pointer(pointer)] = std::move(value);
    return copy.dump();
  };
  // memory bounded: n = 2^24 with r = 8 would need 16 GiB
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/kdfparams/n", 1 << 24), password),
                    Catch::Contains("needs more than 512 MiB"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/kdfparams/n", 1000), password), Catch::Contains("not a power of 2"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/kdfparams/p", 1000), password),
                    Catch::Contains("crypto.kdfparams.p: 1000 is outside 1..16"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/kdfparams/dklen", 16), password),
                    Catch::Contains("crypto.kdfparams.dklen: 16 is outside 32..64"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/kdf", "argon2"), password), Catch::Contains("not supported"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/cipher", "aes-256-gcm"), password), Catch::Contains("crypto.cipher"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/version", 1), password), Catch::Contains("version"));
  CHECK_THROWS_WITH(decrypt_keystore(with("/Crypto/ciphertext", "zz"), password), Catch::Contains("crypto.ciphertext"));
  CHECK_THROWS_WITH(decrypt_keystore("{", password), "not a JSON object");
  nlohmann::json p = nlohmann::json::parse(fixture("pbkdf2.json"));
  p["crypto"]["kdfparams"]["c"] = max_pbkdf2_rounds + 1;
  CHECK_THROWS_WITH(decrypt_keystore(p.dump(), password), Catch::Contains("crypto.kdfparams.c"));
}

TEST_CASE("key files: errors name the file and never quote the key", "[sign]") {
  try {
    load_key_file("/nonexistent/key");
    FAIL("no error");
  } catch (const pipekit::eth::error& e) {
    CHECK(e.kind() == pipekit::eth::error_kind::unreadable);
    CHECK(std::string(e.what()).find("/nonexistent/key") != std::string::npos);
  }
  try {
    load_keystore(std::string(PIPEKIT_TEST_FIXTURES) + "/keystore/scrypt.json",
                  std::string(PIPEKIT_TEST_FIXTURES) + "/keystore/wrong_password.txt");
    FAIL("no error");
  } catch (const pipekit::eth::error& e) {
    CHECK(e.kind() == pipekit::eth::error_kind::invalid_input);
    CHECK_THAT(e.what(), Catch::Contains("scrypt.json: wrong password or corrupt keystore (MAC mismatch)"));
  }
  // the password file's trailing newline is not part of the password
  CHECK(checksum_address(load_keystore(std::string(PIPEKIT_TEST_FIXTURES) + "/keystore/pbkdf2.json",
                                       std::string(PIPEKIT_TEST_FIXTURES) + "/keystore/password.txt")
                             .addr()) == "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC");
}
