#include "pipekit/eth/abi.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pipekit::eth;
using nlohmann::json;

namespace {

std::vector<abi_param> params(std::string_view types) { return parse_signature(types).inputs; }

std::string enc(std::string_view types, const char* args) { return to_hex(encode(params(types), json::parse(args))); }

json dec(std::string_view types, std::string_view hex) { return decode(params(types), from_hex(hex)); }

std::string word(std::string_view hex_digits) {  // right-aligned 32-byte word
  return std::string(64 - hex_digits.size(), '0') + std::string(hex_digits);
}

std::string ones(std::size_t nibbles) { return std::string(nibbles, 'f'); }

}  // namespace

TEST_CASE("parse_type canonical forms", "[eth]") {
  CHECK(parse_type("uint").canonical() == "uint256");
  CHECK(parse_type("int").canonical() == "int256");
  CHECK(parse_type("fixed").canonical() == "fixed128x18");
  CHECK(parse_type("ufixed").canonical() == "ufixed128x18");
  CHECK(parse_type("fixed8x0").canonical() == "fixed8x0");
  CHECK(parse_type("ufixed256x80").canonical() == "ufixed256x80");
  CHECK(parse_type("bytes1").canonical() == "bytes1");
  CHECK(parse_type("bytes32").canonical() == "bytes32");
  CHECK(parse_type("address payable").canonical() == "address");
  CHECK(parse_type("tuple(uint, bytes)[]").canonical() == "(uint256,bytes)[]");
  CHECK(parse_type("(address to, (bool,string)[2] inner)").canonical() == "(address,(bool,string)[2])");
  CHECK(parse_type("(address to, uint8 amount)").components[1].name == "amount");
  CHECK(parse_type("function").canonical() == "function");
  for (unsigned bits = 8; bits <= 256; bits += 8) {
    CHECK(parse_type("uint" + std::to_string(bits)).bits == bits);
    CHECK(parse_type("int" + std::to_string(bits)).kind == abi_kind::sint);
  }
  // uint8[2][] is a dynamic array of uint8[2]
  const abi_type t = parse_type("uint8[2][]");
  CHECK(t.kind == abi_kind::array);
  CHECK(t.element_type().kind == abi_kind::fixed_array);
  CHECK(t.element_type().size == 2);
  CHECK(t.element_type().element_type().bits == 8);
  CHECK(t.json_type() == "uint8[2][]");
  CHECK(parse_type("(uint8,bytes)[3][]").json_type() == "tuple[3][]");
}

TEST_CASE("parse_type rejects bad types naming the place", "[eth]") {
  CHECK_THROWS_WITH(parse_type("uint7"), "unknown type \"uint7\"");
  for (const char* bad : {"uint0", "uint264", "uint08", "int9", "bytes0", "bytes33", "fixed7x1", "fixed8x81",
                          "ufixed264x10", "fixed128", "string1", "byte", "addr"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(parse_type(bad), abi_error);
  }
  CHECK_THROWS_WITH(parse_type("(uint256,uint7)"), "unknown type \"uint7\" at column 10");
  CHECK_THROWS_WITH(parse_type("(uint256,bool"), "malformed type at column 14: expected ',' or ')', found the end");
  CHECK_THROWS_WITH(parse_type("uint256[0]"), Catch::Contains("positive number"));
  CHECK_THROWS_WITH(parse_type("uint256[01]"), Catch::Contains("leading zeros"));
  CHECK_THROWS_WITH(parse_type("uint256[2"), "malformed type at column 10: expected ']', found the end");
  CHECK_THROWS_WITH(parse_type("()"), Catch::Contains("empty tuple"));
  CHECK_THROWS_WITH(parse_type("uint256 x"), Catch::Contains("after the type"));
  CHECK_THROWS_WITH(parse_type("uint256[99999999999999999999]"), Catch::Contains("column 9"));
  CHECK_THROWS_WITH(parse_type("uint256[100000000]"), Catch::Contains("too large"));
}

TEST_CASE("parse_type bounds nesting depth", "[eth]") {
  std::string ok = "uint8";
  for (int i = 0; i < 64; ++i) ok += "[]";
  CHECK_NOTHROW(parse_type(ok));
  CHECK_THROWS_WITH(parse_type(ok + "[]"), Catch::Contains("nested deeper than 64"));
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "(";
  deep += "uint8";
  for (int i = 0; i < 100; ++i) deep += ")";
  CHECK_THROWS_WITH(parse_type(deep), Catch::Contains("nested deeper than 64"));
}

TEST_CASE("is_dynamic and head_size", "[eth]") {
  CHECK_FALSE(parse_type("uint256[3]").is_dynamic());
  CHECK(parse_type("uint256[3]").head_size() == 96);
  CHECK(parse_type("(uint8,bool)[2]").head_size() == 128);
  CHECK(parse_type("(uint8,(bool,bytes4))").head_size() == 96);
  CHECK(parse_type("string[2]").is_dynamic());
  CHECK(parse_type("string[2]").head_size() == 32);
  CHECK(parse_type("(uint256,bytes)").is_dynamic());
  CHECK(parse_type("uint8[][2]").is_dynamic());
  CHECK_FALSE(parse_type("function").is_dynamic());
}

TEST_CASE("parse_signature forms", "[eth]") {
  auto f = parse_signature("f(uint256,(address,bytes)[])(bool)");
  CHECK(f.name == "f");
  CHECK(f.signature() == "f(uint256,(address,bytes)[])");
  REQUIRE(f.outputs.size() == 1);
  CHECK(f.outputs[0].type.canonical() == "bool");
  CHECK(to_hex(f.selector()) == "0xc40faec9");  // ethers id("f(uint256,(address,bytes)[])")

  auto nameless = parse_signature("(uint256,bytes)");
  CHECK(nameless.name.empty());
  CHECK(nameless.inputs.size() == 2);

  auto t = parse_signature("function transfer(address to, uint256 amount) external returns (bool success)");
  CHECK(t.signature() == "transfer(address,uint256)");
  CHECK(t.inputs[0].name == "to");
  CHECK(t.inputs[1].name == "amount");
  CHECK(t.outputs[0].name == "success");
  CHECK(to_hex(t.selector()) == "0xa9059cbb");

  auto v = parse_signature("  function  balanceOf ( address  owner )  public view returns ( uint256 )  ");
  CHECK(v.signature() == "balanceOf(address)");
  CHECK(v.state_mutability == "view");
  CHECK(parse_signature("g(bytes memory data, string calldata s, uint[] storage xs) pure").signature() ==
        "g(bytes,string,uint256[])");
  CHECK(parse_signature("deposit() payable").state_mutability == "payable");
  CHECK(parse_signature("f()").inputs.empty());
  CHECK(parse_signature("error InsufficientBalance(uint256 available, uint256 required)").name ==
        "InsufficientBalance");
  CHECK(to_hex(parse_signature("baz(uint32,bool)").selector()) == "0xcdcd77c0");

  auto ev = parse_event("event Transfer(address indexed from, address indexed to, uint256 value)");
  CHECK(ev.inputs[0].indexed);
  CHECK_FALSE(ev.inputs[2].indexed);
  CHECK_FALSE(ev.anonymous);
  CHECK(parse_event("event Ping(uint8) anonymous").anonymous);
  CHECK(to_hex(ev.topic0()) == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");

  CHECK_THROWS_WITH(parse_signature("f(uint256"), "malformed signature at column 10: expected ',' or ')', found the end");
  CHECK_THROWS_WITH(parse_signature("f(uint256 a b)"), Catch::Contains("column 13"));
  CHECK_THROWS_WITH(parse_signature("f(uint256) bogus"), "malformed signature at column 12: unexpected \"bogus\"");
  CHECK_THROWS_WITH(parse_signature("f uint256)"), Catch::Contains("expected '('"));
  CHECK_THROWS_WITH(parse_signature("f(uint7)"), "unknown type \"uint7\" at column 3");
}

// Expected encodings: the Solidity ABI specification's worked examples ("Examples" section of
// docs/abi-spec.rst), confirmed byte for byte with ethers 6.17.0 AbiCoder.defaultAbiCoder().encode.
TEST_CASE("spec example baz(uint32,bool)", "[eth]") {
  const auto fn = parse_signature("baz(uint32 x, bool y)");
  const bytes data = encode_call(fn, json::parse("[69, true]"));
  CHECK(to_hex(data) == "0xcdcd77c0" + word("45") + word("1"));
  CHECK(decode_call(fn, data) == json::parse("[69, true]"));
  CHECK(shape_result(fn.inputs, decode_call(fn, data)) == json::parse(R"({"x":69,"y":true})"));
}

TEST_CASE("spec example bar(bytes3[2])", "[eth]") {
  const auto fn = parse_signature("bar(bytes3[2])");
  const bytes data = encode_call(fn, json::parse(R"([["0x616263","0x646566"]])"));
  CHECK(to_hex(data) == "0xfce353f6" "6162630000000000000000000000000000000000000000000000000000000000"
                        "6465660000000000000000000000000000000000000000000000000000000000");
}

TEST_CASE("spec example sam(bytes,bool,uint[])", "[eth]") {
  const auto fn = parse_signature("sam(bytes,bool,uint[])");
  const char* args = R"(["0x64617665", true, [1,2,3]])";
  const bytes data = encode_call(fn, json::parse(args));
  CHECK(to_hex(data) == "0xa5643bf2" + word("60") + word("1") + word("a0") + word("4") +
                            "6461766500000000000000000000000000000000000000000000000000000000" + word("3") +
                            word("1") + word("2") + word("3"));
  CHECK(decode_call(fn, data) == json::parse(args));
}

TEST_CASE("spec example f(uint256,uint32[],bytes10,bytes)", "[eth]") {
  const auto fn = parse_signature("f(uint256,uint32[],bytes10,bytes)");
  const char* args = R"(["0x123", [1110, 1929], "0x31323334353637383930", "0x48656c6c6f2c20776f726c6421"])";
  const bytes data = encode_call(fn, json::parse(args));
  CHECK(to_hex(data) == "0x8be65246" + word("123") + word("80") +
                            "3132333435363738393000000000000000000000000000000000000000000000" + word("e0") +
                            word("2") + word("456") + word("789") + word("d") +
                            "48656c6c6f2c20776f726c642100000000000000000000000000000000000000");
  CHECK(decode_call(fn, data) ==
        json::parse(R"([291, [1110, 1929], "0x31323334353637383930", "0x48656c6c6f2c20776f726c6421"])"));
}

TEST_CASE("spec example g(uint256[][],string[])", "[eth]") {
  const auto fn = parse_signature("g(uint256[][],string[])");
  const char* args = R"([[[1,2],[3]], ["one","two","three"]])";
  const bytes data = encode_call(fn, json::parse(args));
  CHECK(to_hex(data) == "0x2289b18c" + word("40") + word("140") + word("2") + word("40") + word("a0") +
                            word("2") + word("1") + word("2") + word("1") + word("3") + word("3") +
                            word("60") + word("a0") + word("e0") + word("3") +
                            "6f6e650000000000000000000000000000000000000000000000000000000000" + word("3") +
                            "74776f0000000000000000000000000000000000000000000000000000000000" + word("5") +
                            "7468726565000000000000000000000000000000000000000000000000000000");
  CHECK(decode_call(fn, data) == json::parse(args));
}

// Each expected value below is ethers 6.17.0 AbiCoder.defaultAbiCoder().encode(types, values).
TEST_CASE("encodings identical to ethers v6", "[eth]") {
  struct ref {
    const char* types;
    const char* args;
    const char* hex;
    const char* decoded;  // expected decode() result; empty = same as args
  };
  const ref refs[] = {
      {"(int8,int256,uint256,int64)",
       R"j([-1, "-57896044618658097711785492504343953926634992332820282019728792003956564819968", "115792089237316195423570985008687907853269984665640564039457584007913129639935", "-9007199254740993"])j",
       "0xffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff800000000000000000000000000000"
       "0000000000000000000000000000000000ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
       "ffffffffffffffffffffffffffffffffffffffffffffffffffffdfffffffffffff",
       R"j()j"},
      {"((uint256,bytes)[])",
       R"j([[[1,"0x1234"],[2,"0x"]]])j",
       "0x0000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000"
       "000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000"
       "4000000000000000000000000000000000000000000000000000000000000000c0000000000000000000000000000000"
       "000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000"
       "400000000000000000000000000000000000000000000000000000000000000002123400000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "020000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "0000000000000000000000000000000000",
       R"j()j"},
      {"(string[2],uint8[2][])",
       R"j([["a","héllo ✓"], [[1,2],[3,4],[5,6]]])j",
       "0x0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000"
       "400000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000"
       "000000000000000000000000000000000161000000000000000000000000000000000000000000000000000000000000"
       "00000000000000000000000000000000000000000000000000000000000000000a68c3a96c6c6f20e29c930000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "030000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000"
       "000000000000000000000000000000000200000000000000000000000000000000000000000000000000000000000000"
       "030000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000"
       "000000000000000000000000000000000500000000000000000000000000000000000000000000000000000000000000"
       "06",
       R"j()j"},
      {"((uint256,(string,bytes)[],uint8[2])[],address)",
       R"j([[[7,[["x","0xff"],["","0x"]],[9,10]]], "0x52908400098527886e0f7030069857d2e4169ee7"])j",
       "0x0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000529084"
       "00098527886e0f7030069857d2e4169ee700000000000000000000000000000000000000000000000000000000000000"
       "010000000000000000000000000000000000000000000000000000000000000020000000000000000000000000000000"
       "000000000000000000000000000000000700000000000000000000000000000000000000000000000000000000000000"
       "800000000000000000000000000000000000000000000000000000000000000009000000000000000000000000000000"
       "000000000000000000000000000000000a00000000000000000000000000000000000000000000000000000000000000"
       "020000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "000000000000000000000000000000010000000000000000000000000000000000000000000000000000000000000000"
       "400000000000000000000000000000000000000000000000000000000000000080000000000000000000000000000000"
       "000000000000000000000000000000000178000000000000000000000000000000000000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000001ff0000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "400000000000000000000000000000000000000000000000000000000000000060000000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "00",
       R"j([[[7,[["x","0xff"],["","0x"]],[9,10]]], "0x52908400098527886E0F7030069857D2E4169EE7"])j"},
      {"((address,bytes)[2],bool[])",
       R"j([[["0x0000000000000000000000000000000000000001","0x01"],["0x00000000000000000000000000000000000000ff","0x"]], []])j",
       "0x0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000000"
       "4000000000000000000000000000000000000000000000000000000000000000c0000000000000000000000000000000"
       "000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000"
       "400000000000000000000000000000000000000000000000000000000000000001010000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "ff0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "00",
       R"j([[["0x0000000000000000000000000000000000000001","0x01"],["0x00000000000000000000000000000000000000ff","0x"]], []])j"},  // ethers getAddress agrees: no letters to upcase
      {"(bytes24,bytes32,int24)",
       R"j(["0xabababababababababababababababababababababababab", "0xcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd", -8388608])j",
       "0xabababababababababababababababababababababababab0000000000000000cdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
       "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdffffffffffffffffffffffffffffffffffffffffffffffffffffffffff8000"
       "00",
       R"j()j"},
      {"((uint8,bool)[2][],string)",
       R"j([[[[1,true],[2,false]],[[3,true],[4,true]]], "end"])j",
       "0x0000000000000000000000000000000000000000000000000000000000000040000000000000000000000000000000"
       "000000000000000000000000000000016000000000000000000000000000000000000000000000000000000000000000"
       "020000000000000000000000000000000000000000000000000000000000000001000000000000000000000000000000"
       "000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000"
       "020000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "000000000000000000000000000000000300000000000000000000000000000000000000000000000000000000000000"
       "010000000000000000000000000000000000000000000000000000000000000004000000000000000000000000000000"
       "000000000000000000000000000000000100000000000000000000000000000000000000000000000000000000000000"
       "03656e640000000000000000000000000000000000000000000000000000000000",
       R"j()j"},
      {"(bytes[][2],int32[3])",
       R"j([[["0x01","0x0203"],[]], [-1, 2147483647, -2147483648]])j",
       "0x0000000000000000000000000000000000000000000000000000000000000080ffffffffffffffffffffffffffffff"
       "ffffffffffffffffffffffffffffffffff000000000000000000000000000000000000000000000000000000007fffff"
       "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffff80000000000000000000000000000000000000"
       "000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000001"
       "200000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000"
       "000000000000000000000000000000004000000000000000000000000000000000000000000000000000000000000000"
       "800000000000000000000000000000000000000000000000000000000000000001010000000000000000000000000000"
       "000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "020203000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
       "0000000000000000000000000000000000",
       R"j()j"},
  };
  for (const auto& r : refs) {
    CAPTURE(r.types);
    const auto ps = params(r.types);
    const json args = json::parse(r.args);
    const bytes data = encode(ps, args);
    CHECK(to_hex(data) == r.hex);
    CHECK(decode(ps, data) == (*r.decoded ? json::parse(r.decoded) : args));
  }
  // function is bytes24 on the wire
  CHECK(enc("(function)", R"(["0xabababababababababababababababababababababababab"])") ==
        "0xabababababababababababababababababababababababab0000000000000000");
}

TEST_CASE("integer JSON mapping", "[eth]") {
  CHECK(dec("(uint256)", word("1fffffffffffff")) == json::parse("[9007199254740991]"));
  CHECK(dec("(uint256)", word("20000000000000")) == json::parse(R"(["9007199254740992"])"));
  CHECK(dec("(uint64)", word("ffffffffffffffff")) == json::parse(R"(["18446744073709551615"])"));
  CHECK(dec("(int256)", ones(50) + "e0000000000001") == json::parse("[-9007199254740991]"));
  CHECK(dec("(int256)", ones(50) + "e0000000000000") == json::parse(R"(["-9007199254740992"])"));
  CHECK(dec("(uint256)", word("10000000000000000")) == json::parse(R"(["18446744073709551616"])"));
  CHECK(dec("(int128)", ones(32) + "80000000000000000000000000000000") ==
        json::parse(R"(["-170141183460469231731687303715884105728"])"));
  CHECK(dec("(uint8)", word("ff"))[0].is_number_unsigned());

  // inputs: numbers, decimal strings, hex strings, negative hex for intN (the magnitude)
  CHECK(enc("(uint256)", R"(["0xff"])") == "0x" + word("ff"));
  CHECK(enc("(uint256)", R"(["0xFF"])") == "0x" + word("ff"));
  CHECK(enc("(uint256)", R"(["255"])") == "0x" + word("ff"));
  CHECK(enc("(int16)", R"(["-0x10"])") == "0x" + ones(62) + "f0");
  CHECK(enc("(int16)", R"(["-16"])") == "0x" + ones(62) + "f0");
  CHECK(enc("(int8)", "[-128]") == "0x" + ones(62) + "80");
  CHECK(enc("(int8)", "[127]") == "0x" + word("7f"));
  CHECK(enc("(uint256)", R"(["000123"])") == "0x" + word("7b"));
  CHECK(enc("(int256)", R"(["-0"])") == "0x" + word("0"));
  CHECK(enc("(uint64)", "[18446744073709551615]") == "0x" + word("ffffffffffffffff"));
  CHECK(enc("(int64)", "[-9223372036854775808]") == "0x" + ones(48) + "8000000000000000");

  CHECK_THROWS_WITH(enc("(uint8,uint8)", "[1, 300]"), "arg 2 (uint8): 300 is out of range");
  CHECK_THROWS_WITH(enc("(int8)", "[128]"), "arg 1 (int8): 128 is out of range");
  CHECK_THROWS_WITH(enc("(int8)", "[-129]"), "arg 1 (int8): -129 is out of range");
  CHECK_THROWS_WITH(enc("(uint256)", "[-1]"), "arg 1 (uint256): -1 is out of range");
  CHECK_THROWS_WITH(enc("(uint256)", R"(["-0x1"])"), "arg 1 (uint256): -0x1 is out of range");
  CHECK_THROWS_WITH(enc("(uint8)", R"(["0x100"])"), "arg 1 (uint8): 0x100 is out of range");
  CHECK_THROWS_WITH(
      enc("(uint256)", R"(["115792089237316195423570985008687907853269984665640564039457584007913129639936"])"),
      Catch::Contains("is out of range"));
  CHECK_THROWS_WITH(enc("(uint256)", R"(["0x10000000000000000000000000000000000000000000000000000000000000000"])"),
                    Catch::Contains("is out of range"));
  CHECK_THROWS_WITH(enc("(uint256)", std::string(200, '9').insert(0, "[\"").append("\"]").c_str()),
                    Catch::Contains("is out of range"));
  CHECK_THROWS_WITH(enc("(int256)",
                        R"(["57896044618658097711785492504343953926634992332820282019728792003956564819968"])"),
                    Catch::Contains("is out of range"));
  CHECK(enc("(int256)", R"(["-57896044618658097711785492504343953926634992332820282019728792003956564819968"])") ==
        "0x8" + std::string(63, '0'));
  CHECK_THROWS_WITH(enc("(uint256)", "[1e3]"),
                    "arg 1 (uint256): 1000.0 is not an integer; pass big integers as decimal strings");
  CHECK_THROWS_WITH(enc("(uint256)", "[100000000000000000000000]"), Catch::Contains("pass big integers as decimal strings"));
  CHECK_THROWS_WITH(enc("(uint256)", R"(["12a"])"), Catch::Contains("is not an integer"));
  CHECK_THROWS_WITH(enc("(uint256)", R"([""])"), Catch::Contains("is not an integer"));
  CHECK_THROWS_WITH(enc("(uint256)", R"(["0x"])"), Catch::Contains("is not an integer"));
  CHECK_THROWS_WITH(enc("(uint256)", "[true]"), "arg 1 (uint256): expected an integer, got true");
}

TEST_CASE("address encoding and EIP-55", "[eth]") {
  const std::string expect = "0x" + word("52908400098527886e0f7030069857d2e4169ee7");
  CHECK(enc("(address)", R"(["0x52908400098527886e0f7030069857d2e4169ee7"])") == expect);
  CHECK(enc("(address)", R"(["0x52908400098527886E0F7030069857D2E4169EE7"])") == expect);
  // EIP-55's own examples
  CHECK(enc("(address)", R"(["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"])") ==
        "0x" + word("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"));
  CHECK(dec("(address)", word("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")) ==
        json::parse(R"(["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"])"));
  CHECK(dec("(address)", word("fb6916095ca1df60bb79ce92ce3ea74c37c5d359")) ==
        json::parse(R"(["0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"])"));
  CHECK_THROWS_WITH(enc("(address)", R"(["0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"])"),
                    Catch::Contains("bad EIP-55 checksum") && Catch::Contains("arg 1 (address)"));
  CHECK_THROWS_WITH(enc("(address)", R"(["0x1234"])"), Catch::Contains("is not an address"));
  CHECK_THROWS_WITH(enc("(address)", R"(["0x52908400098527886e0f7030069857d2e4169eg7"])"),
                    Catch::Contains("invalid hex digit 'g'"));
  CHECK_THROWS_WITH(enc("(address)", "[5]"), Catch::Contains("expected an address"));
}

TEST_CASE("bool, bytesN, bytes, string values", "[eth]") {
  CHECK_THROWS_WITH(enc("(bool)", "[1]"), "arg 1 (bool): expected true or false, got 1");
  CHECK(enc("(bytes2)", R"(["0xABcd"])") == "0xabcd" + std::string(60, '0'));
  CHECK(dec("(bytes2)", "abcd" + std::string(60, '0')) == json::parse(R"(["0xabcd"])"));
  CHECK_THROWS_WITH(enc("(bytes2)", R"(["0xabcdef"])"), "arg 1 (bytes2): expected 2 bytes, got 3");
  CHECK_THROWS_WITH(enc("(bytes2)", R"(["0xab"])"), "arg 1 (bytes2): expected 2 bytes, got 1");
  CHECK_THROWS_WITH(enc("((uint8 a, bytes b))", R"([{"a":1,"b":"0x123"}])"),
                    "arg 1 (tuple).b (bytes): odd number of hex digits");
  CHECK_THROWS_WITH(enc("(uint8[])", R"([[1, 2, "x"]])"), Catch::StartsWith("arg 1 (uint8[])[2] (uint8): "));
  CHECK_THROWS_WITH(enc("(bytes)", R"(["0xzz"])"), "arg 1 (bytes): invalid hex digit 'z'");
  CHECK_THROWS_WITH(enc("(string)", "[5]"), "arg 1 (string): expected a string, got 5");
  CHECK(enc("(bytes)", R"(["0x"])") == "0x" + word("20") + word("0"));
  CHECK(enc("(string)", R"([""])") == "0x" + word("20") + word("0"));
  // exactly 32 bytes: no extra padding word
  const std::string b32 = "0x" + std::string(64, 'a');
  CHECK(enc("(bytes)", ("[\"" + b32 + "\"]").c_str()) == "0x" + word("20") + word("20") + std::string(64, 'a'));
}

TEST_CASE("tuples in and out", "[eth]") {
  const auto ps = params("((uint8 a, string b) t, (uint8, bool) u)");
  const bytes data = encode(ps, json::parse(R"({"t":{"a":1,"b":"x"},"u":[2,true]})"));
  CHECK(data == encode(ps, json::parse(R"([[1,"x"],[2,true]])")));
  CHECK(decode(ps, data) == json::parse(R"([{"a":1,"b":"x"},[2,true]])"));
  CHECK(shape_result(ps, decode(ps, data)) == json::parse(R"({"t":{"a":1,"b":"x"},"u":[2,true]})"));
  CHECK_THROWS_WITH(encode(ps, json::parse(R"({"t":{"a":1},"u":[2,true]})")),
                    "arg 1 (tuple): missing component \"b\"");
  CHECK_THROWS_WITH(encode(ps, json::parse(R"({"t":{"a":1,"b":"x","c":2},"u":[2,true]})")),
                    "arg 1 (tuple): unknown component \"c\"");
  CHECK_THROWS_WITH(encode(ps, json::parse(R"({"t":{"a":1,"b":"x"},"u":{"x":1}})")),
                    Catch::Contains("arg 2 (tuple): an object needs every component named"));
  CHECK_THROWS_WITH(encode(ps, json::parse(R"([[1,"x"]])")), "expected 2 arguments, got 1");
  CHECK_THROWS_WITH(encode(ps, json::parse(R"({"t":[1,"x"]})")), "missing argument \"u\"");
  CHECK_THROWS_WITH(encode(ps, json::parse("5")), "arguments must be a JSON array or object");
  CHECK_THROWS_WITH(encode(params("(uint8, uint8)"), json::parse(R"({"a":1})")),
                    Catch::Contains("every argument named"));
  CHECK_THROWS_WITH(encode(params("(uint8[2])"), json::parse("[[1,2,3]]")),
                    "arg 1 (uint8[2]): expected 2 elements, got 3");
  // duplicate names: arrays out
  const auto dup = params("((uint8 a, uint8 a))");
  CHECK(decode(dup, encode(dup, json::parse("[[1,2]]"))) == json::parse("[[1,2]]"));
}

TEST_CASE("fixed-point values", "[eth]") {
  CHECK(enc("(fixed128x18)", R"(["1.25"])") == "0x" + word("1158e460913d0000"));
  CHECK(dec("(fixed128x18)", word("1158e460913d0000")) == json::parse(R"(["1.25"])"));
  CHECK(enc("(ufixed)", "[3]") == "0x" + word("29a2241af62c0000"));
  CHECK(dec("(ufixed)", word("29a2241af62c0000")) == json::parse(R"(["3"])"));
  CHECK(enc("(fixed8x1)", R"(["-0.5"])") == "0x" + ones(62) + "fb");
  CHECK(dec("(fixed8x1)", ones(62) + "fb") == json::parse(R"(["-0.5"])"));
  CHECK(enc("(fixed16x2)", R"([".05"])") == "0x" + word("5"));
  CHECK(dec("(ufixed8x0)", word("7")) == json::parse(R"(["7"])"));
  CHECK_THROWS_WITH(enc("(fixed8x1)", R"(["12.8"])"), "arg 1 (fixed8x1): 12.8 is out of range");
  CHECK_THROWS_WITH(enc("(fixed8x1)", R"(["1.25"])"), Catch::Contains("has more than 1 decimals"));
  CHECK_THROWS_WITH(enc("(ufixed8x1)", R"(["-1"])"), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(enc("(fixed8x1)", "[1.5]"), Catch::Contains("pass fixed-point values as decimal strings"));
  CHECK_THROWS_WITH(enc("(fixed8x1)", R"(["1.2.3"])"), Catch::Contains("not a decimal number"));
  CHECK_THROWS_WITH(enc("(fixed8x1)", R"(["."])"), Catch::Contains("not a decimal number"));
}

TEST_CASE("strict decoding rejects dirty padding", "[eth]") {
  CHECK_THROWS_WITH(dec("(uint8)", word("100")), "value 1 (uint8): dirty padding: bits above bit 8 are set");
  CHECK_THROWS_WITH(dec("(uint248)", "01" + std::string(62, '0')), Catch::Contains("dirty padding"));
  CHECK_THROWS_WITH(dec("(int8)", word("80")), Catch::Contains("not sign-extended from 8 bits"));
  CHECK_THROWS_WITH(dec("(int8)", ones(62) + "7f"), Catch::Contains("not sign-extended"));
  CHECK_THROWS_WITH(dec("(int8)", "7" + ones(61) + "80"), Catch::Contains("not sign-extended"));
  CHECK_THROWS_WITH(dec("(bool)", word("2")), "value 1 (bool): dirty padding: bool word is not 0 or 1");
  CHECK_THROWS_WITH(dec("(bool)", "01" + std::string(61, '0') + "1"), Catch::Contains("bool word"));
  CHECK_THROWS_WITH(dec("(address)", word("1" + std::string(40, '0'))),
                    "value 1 (address): dirty padding: address word has non-zero high bytes");
  CHECK_THROWS_WITH(dec("(bytes4)", "12345678" + std::string(55, '0') + "1"),
                    "value 1 (bytes4): dirty padding: non-zero bytes after byte 4");
  CHECK_THROWS_WITH(dec("(function)", std::string(48, 'a') + std::string(15, '0') + "1"),
                    Catch::Contains("non-zero bytes after byte 24"));
  CHECK_THROWS_WITH(dec("(bytes)", word("20") + word("2") + "1234" + std::string(59, '0') + "1"),
                    "value 1 (bytes): dirty padding: non-zero bytes after the bytes contents");
  CHECK_THROWS_WITH(dec("(string)", word("20") + word("1") + "61" + std::string(61, '0') + "1"),
                    Catch::Contains("non-zero bytes after the string contents"));
  // nested: the path names the element
  CHECK_THROWS_WITH(dec("(uint8[])", word("20") + word("2") + word("1") + word("1ff")),
                    "value 1 (uint8[])[1] (uint8): dirty padding: bits above bit 8 are set");
  // clean versions of the same decode fine
  CHECK(dec("(int8)", ones(62) + "80") == json::parse("[-128]"));
  CHECK(dec("(bytes)", word("20") + word("2") + "1234" + std::string(60, '0')) == json::parse(R"(["0x1234"])"));
}

TEST_CASE("strict decoding rejects bad offsets, lengths and short data", "[eth]") {
  // offset beyond the data
  CHECK_THROWS_WITH(dec("(uint256,uint256,bytes)", word("1") + word("2") + word("1a0") + word("0") + word("0")),
                    "value 3 (bytes): offset 0x1a0 at byte 64 points past the end of data (160 bytes)");
  // offset with high bytes set
  CHECK_THROWS_WITH(dec("(bytes)", "01" + std::string(62, '0') + word("0")),
                    Catch::Contains("points past the end of data"));
  // offset to exactly the end: the length word is missing
  CHECK_THROWS_WITH(dec("(bytes)", word("20")), "value 1 (bytes): data too short: need 32 bytes at byte 32, have 32 bytes");
  // short data for a static value
  CHECK_THROWS_WITH(dec("(uint256)", std::string(62, '0')), "value 1 (uint256): data too short: need 32 bytes at byte 0, have 31 bytes");
  CHECK_THROWS_WITH(dec("(uint256,uint256)", word("1")), Catch::Contains("value 2 (uint256): data too short"));
  CHECK_THROWS_AS(dec("(bool)", ""), abi_error);
  // bytes length beyond the data
  CHECK_THROWS_WITH(dec("(bytes)", word("20") + word("21") + std::string(64, '0')),
                    "value 1 (bytes): length 33 at byte 32 exceeds the data (96 bytes)");
  // bytes contents present but the padding cut off
  CHECK_THROWS_WITH(dec("(bytes)", word("20") + word("2") + "1234"), Catch::Contains("need 30 bytes of padding"));
  // huge lengths fail before anything is allocated
  CHECK_THROWS_WITH(dec("(uint256[])", word("20") + "8" + std::string(63, '0')),
                    Catch::Contains("array length 0x8000000000000000000000000000000000000000000000000000000000000000 at byte 32 exceeds the data"));
  CHECK_THROWS_WITH(dec("(uint256[])", word("20") + word("ffffffffffffffff")), Catch::Contains("exceeds the data"));
  CHECK_THROWS_WITH(dec("(uint256[])", word("20") + word("800000000000000")), Catch::Contains("exceeds the data"));
  CHECK_THROWS_WITH(dec("(bytes)", word("20") + "8" + std::string(63, '0')), Catch::Contains("exceeds the data"));
  CHECK_THROWS_WITH(dec("(string)", word("20") + word("ffffffffffffffe1")), Catch::Contains("exceeds the data"));
  // array length larger than the elements that follow (each uint256[3] element takes 96 bytes)
  CHECK_THROWS_WITH(dec("(uint256[3][])", word("20") + word("2") + word("1") + word("2") + word("3") + word("4") +
                                              word("5")),
                    Catch::Contains("array length 2 at byte 32 exceeds the data (224 bytes)"));
  // nested dynamic element offset past the end
  CHECK_THROWS_WITH(dec("(bytes[])", word("20") + word("1") + word("ff")),
                    "value 1 (bytes[])[0] (bytes): offset 0xff at byte 64 points past the end of data (96 bytes)");
  // trailing data after the value is fine
  CHECK(dec("(uint8)", word("7") + "deadbeef") == json::parse("[7]"));
  // invalid UTF-8 in a string
  CHECK_THROWS_WITH(dec("(string)", word("20") + word("2") + "c328" + std::string(60, '0')),
                    "value 1 (string): string is not valid UTF-8");
  CHECK_THROWS_WITH(dec("(string)", word("20") + word("3") + "eda080" + std::string(58, '0')),
                    Catch::Contains("not valid UTF-8"));  // a surrogate
  CHECK_THROWS_WITH(dec("(string)", word("20") + word("2") + "c0af" + std::string(60, '0')),
                    Catch::Contains("not valid UTF-8"));  // overlong
}

TEST_CASE("aliasing offsets cannot blow up the output", "[eth]") {
  // uint256[][] with 2000 offsets that all point to one 2000-element array: a legitimate encoding of this
  // much output would need ~128 MB; the input is ~128 KB.
  const std::size_t n = 2000;
  std::string hex = word("20") + word(to_hex(std::array<std::uint8_t, 2>{n >> 8, n & 0xff}, false));
  const std::size_t inner = 32 * n;  // relative to the outer element base
  for (std::size_t i = 0; i < n; ++i) {
    hex += word(to_hex(std::array<std::uint8_t, 3>{static_cast<std::uint8_t>(inner >> 16),
                                                   static_cast<std::uint8_t>(inner >> 8),
                                                   static_cast<std::uint8_t>(inner)},
                       false));
  }
  hex += word(to_hex(std::array<std::uint8_t, 2>{n >> 8, n & 0xff}, false));
  for (std::size_t i = 0; i < n; ++i) hex += word("1");
  CHECK_THROWS_WITH(dec("(uint256[][])", hex), Catch::Contains("refers to the same values too many times"));
}

TEST_CASE("decode depth is bounded for hand-built types", "[eth]") {
  abi_type t = parse_type("uint8");
  for (int i = 0; i < 80; ++i) {
    abi_type outer;
    outer.kind = abi_kind::fixed_array;
    outer.size = 1;
    outer.element = std::make_shared<const abi_type>(std::move(t));
    t = std::move(outer);
  }
  const std::vector<abi_param> ps{abi_param{"", t, false}};
  CHECK_THROWS_WITH(decode(ps, bytes(32)), Catch::Contains("nested too deeply"));
}

TEST_CASE("named_or_array", "[eth]") {
  CHECK(named_or_array(params("(uint8 a,bool b)"), json::parse("[1,true]")) == json::parse(R"({"a":1,"b":true})"));
  CHECK(named_or_array(params("(uint8 a)"), json::parse("[1]")) == json::parse(R"({"a":1})"));
  CHECK(named_or_array(params("(uint8)"), json::parse("[1]")) == json::parse("[1]"));
  CHECK(named_or_array(params("(uint8 a,bool)"), json::parse("[1,true]")) == json::parse("[1,true]"));
  CHECK(named_or_array(params("(uint8 a,bool a)"), json::parse("[1,true]")) == json::parse("[1,true]"));
  CHECK(named_or_array(params("()"), json::array()) == json::object());
  CHECK(named_or_array(params("(uint8 a,bool b)"), json::parse("[1]")) == json::parse("[1]"));  // not its shape
  // decode_log, decode_revert and decoded tuples follow the same rule
  CHECK(dec("((uint8 a,bool b),(uint8 a,bool))", word("1") + word("1") + word("2") + word("0")) ==
        json::parse(R"([{"a":1,"b":true},[2,false]])"));
}

TEST_CASE("shape_result", "[eth]") {
  CHECK(shape_result(params("(uint8)"), json::parse("[1]")) == json(1));
  CHECK(shape_result(params("(uint8 a)"), json::parse("[1]")) == json(1));
  CHECK(shape_result(params("(uint8,bool)"), json::parse("[1,true]")) == json::parse("[1,true]"));
  CHECK(shape_result(params("(uint8 a,bool)"), json::parse("[1,true]")) == json::parse("[1,true]"));
  CHECK(shape_result(params("(uint8 a,bool a)"), json::parse("[1,true]")) == json::parse("[1,true]"));
  CHECK(shape_result(params("(uint8 a,bool b)"), json::parse("[1,true]")) == json::parse(R"({"a":1,"b":true})"));
  CHECK(shape_result(params("()"), json::array()) == json::array());
}

TEST_CASE("parse_cli_arg", "[eth]") {
  CHECK(parse_cli_arg(parse_type("uint256"), "123") == json("123"));
  CHECK(parse_cli_arg(parse_type("uint256"), "0xff") == json("0xff"));
  CHECK(parse_cli_arg(parse_type("bool"), "true") == json(true));
  CHECK_THROWS_AS(parse_cli_arg(parse_type("bool"), "yes"), abi_error);
  CHECK(parse_cli_arg(parse_type("string"), " hello, world ") == json(" hello, world "));
  CHECK(parse_cli_arg(parse_type("string"), "[1]") == json("[1]"));
  CHECK(parse_cli_arg(parse_type("uint8[]"), "[1, 2,3]") == json::parse("[1,2,3]"));  // valid JSON
  CHECK(parse_cli_arg(parse_type("uint8[]"), "[1, 0x2]") == json::parse(R"(["1","0x2"])"));
  CHECK(parse_cli_arg(parse_type("uint8[]"), "[]") == json::array());
  CHECK(parse_cli_arg(parse_type("string[]"), R"(["a,b", c , "d\"e"])") == json::parse(R"(["a,b","c","d\"e"])"));
  CHECK(parse_cli_arg(parse_type("(uint256,(bool,string)[])"), "(1, [(true, x), (false, \"y)\")])") ==
        json::parse(R"j(["1", [[true, "x"], [false, "y)"]]])j"));
  CHECK(parse_cli_arg(parse_type("uint256[][]"), "[[1,2],[3]]") == json::parse("[[1,2],[3]]"));
  // big numbers are not JSON integers: the cast-style reading keeps them exact
  CHECK(parse_cli_arg(parse_type("uint256[]"), "[100000000000000000000000]") ==
        json::parse(R"(["100000000000000000000000"])"));
  CHECK(parse_cli_arg(parse_type("(uint8 a, bool b)"), R"({"a": 1, "b": true})") ==
        json::parse(R"({"a":1,"b":true})"));
  CHECK_THROWS_WITH(parse_cli_arg(parse_type("uint8[]"), "[1,2"), Catch::Contains("expected ']'"));
  CHECK_THROWS_WITH(parse_cli_arg(parse_type("uint8[]"), "[1] x"), Catch::Contains("unexpected text"));
  CHECK_THROWS_WITH(parse_cli_arg(parse_type("(uint8,uint8)"), "(1)"), Catch::Contains("expected ','"));
  // round trip through the encoder
  const auto ps = params("(uint8[2],string)");
  json args = json::array({parse_cli_arg(ps[0].type, "[1,2]"), parse_cli_arg(ps[1].type, "hi")});
  CHECK(decode(ps, encode(ps, args)) == json::parse(R"([[1,2],"hi"])"));
}

TEST_CASE("events: decode_log and encode_topics", "[eth]") {
  const auto transfer = parse_event("event Transfer(address indexed from, address indexed to, uint256 value)");
  const auto t0 = transfer.topic0();
  const std::vector<bytes> topics{bytes(t0.begin(), t0.end()),
                                  from_hex(word("52908400098527886e0f7030069857d2e4169ee7")),
                                  from_hex(word("5aaeb6053f3e94c9b9a09f33669435e7ef1beaed"))};
  const bytes data = from_hex(word("de0b6b3a7640000"));
  CHECK(decode_log(transfer, topics, data) ==
        json::parse(R"({"from":"0x52908400098527886E0F7030069857D2E4169EE7",
                        "to":"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed","value":"1000000000000000000"})"));
  CHECK_THROWS_WITH(decode_log(transfer, std::span(topics).first(2), data),
                    "expected 3 topics for Transfer(address,address,uint256), got 2");
  std::vector<bytes> wrong = topics;
  wrong[0][0] ^= 1;
  CHECK_THROWS_WITH(decode_log(transfer, wrong, data), Catch::Contains("is not Transfer(address,address,uint256)"));
  wrong = topics;
  wrong[1][0] = 1;
  CHECK_THROWS_WITH(decode_log(transfer, wrong, data), Catch::Contains("topic 1 (address): "));
  CHECK_THROWS_WITH(decode_log(transfer, topics, bytes(31)), Catch::Contains("data too short"));

  // expected topics from ethers 6.17.0 Interface.encodeFilterTopics
  auto filter = encode_topics(transfer, json::parse(R"([null, "0x52908400098527886E0F7030069857D2E4169EE7"])"));
  REQUIRE(filter.size() == 3);
  CHECK(to_hex(*filter[0]) == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef");
  CHECK_FALSE(filter[1]);
  CHECK(to_hex(*filter[2]) == "0x" + word("52908400098527886e0f7030069857d2e4169ee7"));
  CHECK(encode_topics(transfer, json::parse(R"({"from":"0x52908400098527886e0f7030069857d2e4169ee7"})")).size() == 2);
  CHECK(encode_topics(transfer, json()).size() == 1);  // trailing wildcards dropped
  CHECK_THROWS_WITH(encode_topics(transfer, json::parse("[null, null, 5]")),
                    Catch::Contains("arg 3 (uint256): not an indexed argument"));
  CHECK_THROWS_WITH(encode_topics(transfer, json::parse(R"({"nope":1})")), Catch::Contains("unknown argument \"nope\""));

  const auto named = parse_event("event Named(string indexed name, bytes indexed blob, uint8 indexed small)");
  auto nt = encode_topics(named, json::parse(R"(["hello", "0x0102", 5])"));
  REQUIRE(nt.size() == 4);
  CHECK(to_hex(*nt[0]) == "0xea9281535fb4c20b765578e64437fa2fe6a5aaeef8cef58b3c1b1d0aa5f192fc");
  CHECK(to_hex(*nt[1]) == "0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8");
  CHECK(to_hex(*nt[2]) == "0x22ae6da6b482f9b1b19b0b897c3fd43884180a1c5ee361e1107a1bc635649dda");
  CHECK(to_hex(*nt[3]) == "0x" + word("5"));
  // indexed dynamic values come back as their topic hash
  std::vector<bytes> ntopics;
  for (const auto& t : nt) ntopics.push_back(*t);
  CHECK(decode_log(named, ntopics, {}) ==
        json::parse(R"({"name":"0x1c8aff950685c2ed4bc3174f3472287b56d9517b9c948127319a09a7a36deac8",
                        "blob":"0x22ae6da6b482f9b1b19b0b897c3fd43884180a1c5ee361e1107a1bc635649dda","small":5})"));

  // arrays and tuples hash their in-place encoding (elements padded, no lengths or offsets)
  const auto arr = parse_event("event A(uint8[] indexed xs, (string,uint8) indexed t)");
  auto at = encode_topics(arr, json::parse(R"([[1,2], ["ab", 3]])"));
  const auto ah = keccak256(from_hex(word("1") + word("2")));
  CHECK(*at[1] == bytes(ah.begin(), ah.end()));
  const bytes tuple_in_place = from_hex("6162" + std::string(60, '0') + word("3"));
  const auto th = keccak256(tuple_in_place);
  CHECK(*at[2] == bytes(th.begin(), th.end()));

  // anonymous: no topic 0, unnamed inputs give an array
  const auto anon = parse_event("event Ping(uint8 indexed, bool) anonymous");
  const std::vector<bytes> atopics{from_hex(word("9"))};
  CHECK(decode_log(anon, atopics, from_hex(word("1"))) == json::parse("[9, true]"));
  CHECK(to_hex(*encode_topics(anon, json::parse("[9]"))[0]) == "0x" + word("9"));
}

TEST_CASE("calldata helpers", "[eth]") {
  const auto fn = parse_signature("transfer(address to, uint256 amount)");
  // ethers Interface.encodeFunctionData("transfer", [...])
  const bytes data = encode_call(fn, json::parse(R"({"to":"0x52908400098527886E0F7030069857D2E4169EE7","amount":1000})"));
  CHECK(to_hex(data) == "0xa9059cbb" + word("52908400098527886e0f7030069857d2e4169ee7") + word("3e8"));
  CHECK(shape_result(fn.inputs, decode_call(fn, data)) ==
        json::parse(R"({"to":"0x52908400098527886E0F7030069857D2E4169EE7","amount":1000})"));
  bytes other = data;
  other[0] = 0;
  CHECK_THROWS_WITH(decode_call(fn, other), "selector 0x00059cbb does not match transfer(address,uint256) (0xa9059cbb)");
  CHECK_THROWS_WITH(decode_call(fn, bytes{1, 2}), Catch::Contains("shorter than a 4-byte selector"));
}

namespace {

const char* const erc20_abi = R"([
  {"type":"function","name":"transfer","stateMutability":"nonpayable",
   "inputs":[{"name":"to","type":"address"},{"name":"amount","type":"uint256"}],
   "outputs":[{"name":"","type":"bool"}]},
  {"type":"function","name":"set","inputs":[{"name":"x","type":"uint256"}],"outputs":[]},
  {"type":"function","name":"set","inputs":[{"name":"x","type":"address"}],"outputs":[]},
  {"type":"function","name":"set","inputs":[{"name":"x","type":"uint256"},{"name":"y","type":"uint256"}],"outputs":[]},
  {"name":"old","constant":true,"inputs":[],"outputs":[{"name":"","type":"uint8"}]},
  {"type":"function","name":"put","stateMutability":"payable","inputs":[
     {"name":"orders","type":"tuple[2][]","internalType":"struct Book.Order[2][]","components":[
        {"name":"maker","type":"address","internalType":"address"},
        {"name":"legs","type":"tuple[]","internalType":"struct Book.Leg[]",
         "components":[{"name":"qty","type":"uint64","internalType":"uint64"}]}]}],"outputs":[]},
  {"type":"constructor","inputs":[{"name":"supply","type":"uint256"}],"stateMutability":"nonpayable"},
  {"type":"event","name":"Transfer","anonymous":false,"inputs":[
     {"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},
     {"name":"value","type":"uint256","indexed":false}]},
  {"type":"error","name":"InsufficientBalance","inputs":[
     {"name":"available","type":"uint256"},{"name":"required","type":"uint256"}]},
  {"type":"error","name":"Unnamed","inputs":[{"name":"","type":"uint8"},{"name":"","type":"bool"}]},
  {"type":"fallback"},{"type":"receive","stateMutability":"payable"}
])";

}  // namespace

TEST_CASE("abi_file parsing and lookups", "[eth]") {
  const auto abi = abi_file::parse(json::parse(erc20_abi));
  CHECK(abi.functions().size() == 6);
  CHECK(abi.events().size() == 1);
  CHECK(abi.errors().size() == 2);
  REQUIRE(abi.constructor() != nullptr);
  CHECK(abi.constructor()->inputs[0].name == "supply");
  CHECK(abi.has_fallback());
  CHECK(abi.has_receive());
  CHECK(abi.function("transfer").signature() == "transfer(address,uint256)");
  CHECK(abi.function("old").state_mutability == "view");
  CHECK(abi.function("set", 2).signature() == "set(uint256,uint256)");
  CHECK(abi.function("set(address)").inputs[0].type.kind == abi_kind::address);
  CHECK(abi.function("set(address x)").signature() == "set(address)");
  CHECK_THROWS_WITH(abi.function("set"), "ambiguous function \"set\": set(uint256), set(address), "
                                         "set(uint256,uint256); pass a full signature");
  CHECK_THROWS_WITH(abi.function("set", 1), Catch::Contains("set(uint256), set(address)"));
  CHECK_THROWS_WITH(abi.function("nope"), "no function \"nope\" in the ABI");
  CHECK_THROWS_WITH(abi.function("set(bool)"), "no function set(bool) in the ABI");
  CHECK(abi.function_by_selector({0xa9, 0x05, 0x9c, 0xbb})->name == "transfer");
  CHECK(abi.function_by_selector({0, 0, 0, 0}) == nullptr);

  const auto& put = abi.function("put");
  CHECK(put.signature() == "put((address,(uint64)[])[2][])");
  CHECK(put.state_mutability == "payable");
  const abi_type& orders = put.inputs[0].type;
  CHECK(orders.internal_type == "struct Book.Order[2][]");
  CHECK(orders.element_type().internal_type == "struct Book.Order[2]");
  CHECK(orders.element_type().element_type().internal_type == "struct Book.Order");
  CHECK(orders.element_type().element_type().components[1].type.element_type().internal_type == "struct Book.Leg");

  const auto& ev = abi.event("Transfer");
  CHECK(abi.event_by_topic0(ev.topic0()) == &ev);
  CHECK(&abi.event("Transfer(address,address,uint256)") == &ev);
  CHECK_THROWS_WITH(abi.event("Approval"), Catch::Contains("no event"));

  // artifacts carry the ABI under "abi"
  const auto artifact = abi_file::parse(json{{"abi", json::parse(erc20_abi)}, {"bytecode", "0x"}});
  CHECK(artifact.functions().size() == 6);
}

TEST_CASE("abi_file errors name the entry", "[eth]") {
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"([{"type":"function","name":"a","inputs":[]},
      {"type":"function","name":"b","inputs":[]},{"type":"event","name":"E","inputs":[]},
      {"type":"function","name":"f","inputs":[{"name":"x","type":"uint8"},{"name":"y","type":"uint7"}]}])")),
                    "abi[3].inputs[1].type: unknown type \"uint7\"");
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"([{"type":"function","inputs":[]}])")),
                    "abi[0]: missing \"name\"");
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"([{"type":"function","name":"f","inputs":[{"name":"t","type":"tuple"}]}])")),
                    "abi[0].inputs[0].components: expected an array");
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"([{"type":"function","name":"f","inputs":[{"name":"t","type":"tuple[x]","components":[{"type":"bool"}]}]}])")),
                    Catch::Contains("abi[0].inputs[0].type: malformed type"));
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"([{"type":"thing"}])")), "abi[0].type: unknown entry type \"thing\"");
  CHECK_THROWS_WITH(abi_file::parse(json::parse(R"({"bytecode":"0x"})")), Catch::Contains("\"abi\" key"));
  CHECK_THROWS_AS(abi_file::parse(json::parse("5")), abi_error);
}

TEST_CASE("decode_revert", "[eth]") {
  const auto abi = abi_file::parse(json::parse(erc20_abi));
  CHECK(decode_revert({}, nullptr) == json::parse(R"({"kind":"empty"})"));
  // ethers: "0x08c379a0" + encode(["string"], ["Not enough"])
  const bytes err = from_hex("0x08c379a0" + word("20") + word("a") + "4e6f7420656e6f756768" + std::string(44, '0'));
  CHECK(decode_revert(err, nullptr) ==
        json::parse(R"j({"kind":"error","signature":"Error(string)","message":"Not enough"})j"));
  CHECK(decode_revert(from_hex("0x4e487b71" + word("11")), nullptr) ==
        json::parse(R"({"kind":"panic","code":17,"code_hex":"0x11","meaning":"arithmetic underflow or overflow"})"));
  const std::pair<const char*, const char*> panics[] = {
      {"00", "generic compiler-inserted panic"}, {"01", "assertion failed"},
      {"12", "division or modulo by zero"},       {"21", "conversion to an invalid enum value"},
      {"22", "incorrectly encoded storage byte array"}, {"31", "pop() on an empty array"},
      {"32", "array index out of bounds"},
      {"41", "out of memory (too much memory allocated or array too large)"},
      {"51", "call to a zero-initialized internal function"}, {"99", "unknown panic code"}};
  for (const auto& [code, meaning] : panics) {
    const json r = decode_revert(from_hex(std::string("0x4e487b71") + word(code)), nullptr);
    CHECK(r["code_hex"] == std::string("0x") + code);
    CHECK(r["meaning"] == meaning);
  }
  // ethers Interface.encodeErrorResult("InsufficientBalance", [100, 250])
  const bytes custom = from_hex("0xcf479181" + word("64") + word("fa"));
  CHECK(decode_revert(custom, &abi) ==
        json::parse(R"j({"kind":"custom","name":"InsufficientBalance",
                        "signature":"InsufficientBalance(uint256,uint256)","args":{"available":100,"required":250}})j"));
  const bytes unnamed = from_hex(to_hex(abi.errors()[1].selector()) + word("7") + word("1"));
  CHECK(decode_revert(unnamed, &abi)["args"] == json::parse("[7, true]"));
  CHECK(decode_revert(custom, nullptr) ==
        json::parse(R"({"kind":"unknown","selector":"0xcf479181","data":")" + to_hex(custom) + "\"}"));
  CHECK(decode_revert(bytes{1, 2}, nullptr) == json::parse(R"({"kind":"unknown","data":"0x0102"})"));
  CHECK_THROWS_AS(decode_revert(from_hex("0x08c379a0" + word("20")), nullptr), abi_error);
  CHECK_THROWS_AS(decode_revert(from_hex("0x4e487b7100"), nullptr), abi_error);
}

TEST_CASE("messages show user input bounded and as valid UTF-8", "[eth]") {
  auto valid_json_text = [](const std::string& msg) {
    (void)json(msg).dump();  // throws type_error 316 on invalid UTF-8
    return true;
  };
  // 100k levels: dumping the value recursed until the stack overflowed
  // (parsed in place: copying or comparing such a value recurses too)
  const json deep = json::parse(std::string(100001, '[') + std::string(100001, ']'));
  CHECK_THROWS_WITH(encode(params("(uint256)"), deep), "arg 1 (uint256): expected an integer, got an array of 1 element");
  CHECK_THROWS_WITH(encode(params("(uint256[])"), deep), Catch::Contains("(uint256): expected an integer, got an array of 1 element"));
  CHECK_THROWS_WITH(encode(params("((uint8,uint8))"), json::array({"x"})),
                    "arg 1 (tuple): expected an array or object for a tuple, got \"x\"");
  CHECK_THROWS_WITH(encode(params("(bool)"), json::parse(R"([{"a":{"b":1}}])")),
                    "arg 1 (bool): expected true or false, got an object with 1 member");
  CHECK_THROWS_WITH(encode(params("(bytes)"), json::parse("[[]]")), "arg 1 (bytes): expected a 0x-hex string, got an empty array");
  CHECK_THROWS_WITH(encode(params("(address)"), json::parse("[null]")), "arg 1 (address): expected an address string, got null");

  // invalid UTF-8 inside a string: dump() threw type_error 316
  const json bad_utf8 = json::array({std::string("12\xff\xfe")});
  CHECK_THROWS_WITH(encode(params("(uint256)"), bad_utf8),
                    "arg 1 (uint256): \"12\xef\xbf\xbd\xef\xbf\xbd\" is not an integer (expected decimal or 0x-hex digits)");
  try {
    encode(params("(address)"), bad_utf8);
    FAIL("no error");
  } catch (const abi_error& e) {
    CHECK(valid_json_text(e.what()));
  }

  // long strings are cut to 80 bytes, never inside a UTF-8 sequence
  std::string long_text;
  for (int i = 0; i < 100; ++i) long_text += "\xc3\xa9";  // é
  try {
    encode(params("(uint8)"), json::array({long_text}));
    FAIL("no error");
  } catch (const abi_error& e) {
    const std::string msg = e.what();
    CHECK(valid_json_text(msg));
    CHECK(msg.size() <= std::string("arg 1 (uint8): ").size() + 80 + std::string(" is not an integer").size() + 40);
    CHECK(msg.find("...") != std::string::npos);
  }
  const std::string digits(5000, '9');
  try {
    encode(params("(uint256)"), json::array({digits}));
    FAIL("no error");
  } catch (const abi_error& e) {
    CHECK(std::string(e.what()) == "arg 1 (uint256): " + std::string(77, '9') + "... is out of range");
  }

  // text from the command line and signatures: bytes that are not UTF-8 are escaped
  CHECK_THROWS_WITH(parse_cli_arg(parse_type("bool"), "\xff"), "expected true or false for bool, got \"\xef\xbf\xbd\"");
  CHECK_THROWS_WITH(parse_type("uint8\xff"), "malformed type at column 6: unexpected '\\xff' after the type");
  CHECK_THROWS_WITH(parse_signature("f(uint8)\xc3"), "malformed signature at column 9: unexpected '\\xc3'");
  CHECK_THROWS_WITH(parse_type("(uint8\x01"), "malformed type at column 7: expected ',' or ')', found '\\x01'");
  CHECK_THROWS_WITH(encode(params("(bytes)"), json::array({"0x\xc3\xa9"})), "arg 1 (bytes): invalid hex digit '\\xc3'");
  const abi_file abi = abi_file::parse(json::parse(R"([{"type":"function","name":"f","inputs":[]}])"));
  try {
    abi.function("g\xff");
    FAIL("no error");
  } catch (const abi_error& e) {
    CHECK(valid_json_text(e.what()));
    CHECK(std::string(e.what()) == "no function \"g\xef\xbf\xbd\" in the ABI");
  }
}

TEST_CASE("strings must be valid UTF-8 to encode, as to decode", "[eth]") {
  const json bad = json::array({std::string("a\xc3(")});
  CHECK_THROWS_WITH(encode(params("(string)"), bad), "arg 1 (string): string is not valid UTF-8");
  CHECK_THROWS_WITH(encode(params("(string[])"), json::array({bad})), "arg 1 (string[])[0] (string): string is not valid UTF-8");
  // command-line text is taken as it is
  const auto ps = params("(string s)");
  CHECK_THROWS_WITH(encode(ps, json::array({parse_cli_arg(ps[0].type, "\xed\xa0\x80")})),  // a surrogate
                    "arg 1 (string): string is not valid UTF-8");
  const abi_event ev = parse_event("event E(string indexed s)");
  CHECK_THROWS_WITH(encode_topics(ev, bad), "arg 1 (string): string is not valid UTF-8");
  CHECK(encode(params("(string)"), json::array({"h\xc3\xa9 \xf0\x9f\x98\x80"})).size() == 96);
}

TEST_CASE("bytes values name a bad character before an odd digit count", "[eth]") {
  CHECK_THROWS_WITH(enc("(bytes)", R"(["0xzzz"])"), "arg 1 (bytes): invalid hex digit 'z'");
  CHECK_THROWS_WITH(enc("(bytes)", R"([" 0x12"])"), "arg 1 (bytes): invalid hex digit ' '");
  CHECK_THROWS_WITH(enc("(bytes2)", R"(["0xzz"])"), "arg 1 (bytes2): invalid hex digit 'z'");
  CHECK_THROWS_WITH(enc("(bytes)", R"(["0x123"])"), "arg 1 (bytes): odd number of hex digits");
}

TEST_CASE("JSON ABI array suffixes follow parse_type", "[eth]") {
  auto tuple_type = [](const std::string& type) {
    const json doc = {{{"type", "function"}, {"name", "f"},
                       {"inputs", {{{"name", "t"}, {"type", type}, {"components", {{{"type", "bool"}}}}}}}}};
    return abi_file::parse(doc).functions()[0].inputs[0].type;
  };
  CHECK(tuple_type("tuple[2][]").canonical() == "(bool)[2][]");
  CHECK(tuple_type("tuple[]").canonical() == "(bool)[]");
  CHECK(tuple_type("tuple[ 3 ]").canonical() == "(bool)[3]");  // whitespace as parse_type allows
  CHECK_THROWS_WITH(tuple_type("tuple[0]"),
                    "abi[0].inputs[0].type: malformed type at column 7: array length must be a positive number "
                    "without leading zeros");
  CHECK_THROWS_WITH(parse_type("(bool)[0]"),
                    "malformed type at column 8: array length must be a positive number without leading zeros");
  CHECK_THROWS_WITH(tuple_type("tuple[2]x"), "abi[0].inputs[0].type: malformed type at column 9: unexpected 'x' after the type");
  CHECK_THROWS_WITH(tuple_type("tuple[99999999999999999999]"), Catch::Contains("array length must be a positive number"));
  CHECK_THROWS_WITH(tuple_type("tuple[16777216]"), Catch::Contains("fixed array too large"));
  std::string deep = "tuple";
  for (int i = 0; i < 70; ++i) deep += "[]";
  CHECK_THROWS_WITH(tuple_type(deep), Catch::Contains("types nested deeper than 64"));
}
