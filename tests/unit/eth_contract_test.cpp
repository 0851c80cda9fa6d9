// The runtime of generated bindings (contract.hpp): the sol:: conversions between C++ values and
// the codec's JSON, address parsing, and reverts thrown typed. Against anvil: a contract class
// written as abigen-cpp writes them (by hand here) calls, sends and reads events.
#include <string>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/eth/contract.hpp"
#include "pipekit/eth/error.hpp"

namespace eth = pipekit::eth;
namespace sol = pipekit::eth::sol;
using nlohmann::json;

namespace {

struct point {
  eth::uint256 x;
  std::vector<eth::address> owners;
  static json to_abi(const point& v) {
    return json::array({sol::uint<256>::to(v.x), sol::array<sol::address_>::to(v.owners)});
  }
  static point from_abi(const json& j) {
    return {sol::uint<256>::from(sol::detail::component(j, 0, "x")),
            sol::array<sol::address_>::from(sol::detail::component(j, 1, "owners"))};
  }
  bool operator==(const point&) const = default;
};

// Reverts as an eth_call answers them: JSON-RPC error 3 with the data.
[[noreturn]] void revert_with(const std::string& data) { throw eth::rpc_error(3, "execution reverted", data); }

struct unauthorized : eth::contract_error {
  unauthorized(std::string m, eth::bytes d, eth::address c) : contract_error(std::move(m), std::move(d)), caller(c) {}
  eth::address caller;
};

void on_revert(const eth::bytes& data, const std::string& message) {
  static const eth::abi_error_def def{"Unauthorized", {{"caller", eth::parse_type("address")}}};
  if (data.size() >= 4 && std::equal(data.begin(), data.begin() + 4, def.selector().begin())) {
    json args = eth::decode(def.inputs, std::span(data).subspan(4));
    throw unauthorized(message, data, sol::address_::from(args[0]));
  }
}

// Reaches the protected helper as a generated class does.
struct probe : eth::contract {
  static const eth::abi_file& abi() {
    static const eth::abi_file abi = eth::abi_file::parse(json::parse(
        R"([{"type":"error","name":"Unauthorized","inputs":[{"name":"caller","type":"address"}]}])"));
    return abi;
  }
  static void typed(const std::string& data) {
    try {
      revert_with(data);
    } catch (...) {
      rethrow_typed(abi(), on_revert);
    }
  }
  static void passthrough() {
    try {
      throw eth::error(eth::error_kind::transport, "down");
    } catch (...) {
      rethrow_typed(abi(), on_revert);
    }
  }
};

}  // namespace

TEST_CASE("contract runtime: sol:: tags convert each type both ways through the codec", "[eth]") {
  using t = eth::abi_param;
  const std::vector<t> params = {{"a", eth::parse_type("uint8[]")},  {"b", eth::parse_type("bytes")},
                                 {"c", eth::parse_type("int64")},    {"d", eth::parse_type("uint256")},
                                 {"e", eth::parse_type("int128")},   {"f", eth::parse_type("bytes4")},
                                 {"g", eth::parse_type("(uint256,address[])[2]")}, {"h", eth::parse_type("uint64")}};
  const std::vector<std::uint8_t> small = {1, 2, 255};
  const eth::bytes raw = {1, 2, 255};
  const eth::uint256 big = (eth::uint256(1) << 255) + 7;
  const eth::int_t<128> neg = -(eth::int_t<128>(1) << 126);
  const auto alice = eth::address::from_hex("0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  const std::array<point, 2> pts = {point{big, {alice}}, point{3, {}}};
  const std::uint64_t u64max = ~std::uint64_t{0};

  json args = json::array({sol::array<sol::uint<8>>::to(small), sol::bytes_::to(raw), sol::int_<64>::to(-5),
                           sol::uint<256>::to(big), sol::int_<128>::to(neg),
                           sol::bytes_n<4>::to(eth::fixed_bytes<4>::from_hex("0xdeadbeef")),
                           sol::array_n<sol::tuple<point>, 2>::to(pts), sol::uint<64>::to(u64max)});
  CHECK(args[0] == json::array({1, 2, 255}));  // uint8[]: numbers, bytes: hex, though the C++ types are one
  CHECK(args[1] == "0x0102ff");
  const json back = eth::decode(params, eth::encode(params, args));
  CHECK(sol::array<sol::uint<8>>::from(back[0]) == small);
  CHECK(sol::bytes_::from(back[1]) == raw);
  CHECK(sol::int_<64>::from(back[2]) == -5);
  CHECK(sol::uint<256>::from(back[3]) == big);
  CHECK(sol::int_<128>::from(back[4]) == neg);
  CHECK(sol::bytes_n<4>::from(back[5]).hex() == "0xdeadbeef");
  CHECK(sol::array_n<sol::tuple<point>, 2>::from(back[6]) == pts);
  CHECK(sol::uint<64>::from(back[7]) == u64max);  // beyond 2^53 the codec writes decimal text

  CHECK_THROWS_AS(sol::uint<8>::from(json(256)), eth::abi_error);
  CHECK_THROWS_AS(sol::int_<8>::from(json("-129")), eth::abi_error);
  CHECK(sol::int_<8>::from(json("-128")) == -128);
  CHECK_THROWS_AS(sol::bool_::from(json(1)), eth::abi_error);
  CHECK_THROWS_AS(sol::bytes_n<4>::from(json("0xdead")), eth::abi_error);
}

TEST_CASE("contract runtime: addresses parse as EIP-55 says and print checksummed", "[eth]") {
  const auto a = eth::address::from_hex("0x70997970c51812dc3a010c7d01b50e0d17dc79c8");
  CHECK(a.hex() == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
  CHECK(eth::address::from_hex(a.hex()) == a);
  CHECK(eth::address::from_hex("0x70997970C51812DC3A010C7D01B50E0D17DC79C8") == a);
  CHECK_THROWS_WITH(eth::address::from_hex("0x70997970C51812dc3A010C7d01b50e0d17dc79c8"),
                    Catch::Contains("checksum"));
  CHECK_THROWS_AS(eth::address::from_hex("0x7099"), eth::abi_error);
  CHECK_THROWS_AS(eth::address::from_hex("70997970c51812dc3a010c7d01b50e0d17dc79c8aa"), eth::abi_error);
}

TEST_CASE("contract runtime: reverts are thrown as their types", "[eth]") {
  // Error("not yours")
  const std::string error_string =
      "0x08c379a0000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000"
      "00000000000000000000000000000009"
      "6e6f7420796f7572730000000000000000000000000000000000000000000000";
  try {
    probe::typed(error_string);
    FAIL("no throw");
  } catch (const eth::revert_error& e) {
    CHECK(e.reason() == "not yours");
    CHECK(std::string(e.what()) == "reverted: not yours");
  }
  // Panic(0x12): division by zero
  try {
    probe::typed("0x4e487b710000000000000000000000000000000000000000000000000000000000000012");
    FAIL("no throw");
  } catch (const eth::panic_error& e) {
    CHECK(e.code() == 0x12);
  }
  // Unauthorized(0x7099...)
  try {
    probe::typed("0x8e4a23d600000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8");
    FAIL("no throw");
  } catch (const unauthorized& e) {
    CHECK(e.caller.hex() == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8");
    CHECK(e.data().size() == 36);
    CHECK(std::string(e.what()) == R"(reverted: Unauthorized(caller="0x70997970C51812dc3A010C7d01b50e0d17dc79C8"))");
  }
  // no data: a bare revert
  try {
    probe::typed("0x");
    FAIL("no throw");
  } catch (const eth::contract_error& e) {
    CHECK(e.data().empty());
    CHECK(dynamic_cast<const eth::revert_error*>(&e) == nullptr);
  }
  // not a revert: passes through as it was
  CHECK_THROWS_AS(probe::passthrough(), eth::error);
}
