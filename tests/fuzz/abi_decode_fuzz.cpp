// libFuzzer target for the strict ABI decoder.
// Input: byte 0 picks a type list below, or 0xff: the signature is the text up to the first NUL.
// The rest is decoded; on success the values are re-encoded and decoded again, and both decodes (and both
// encodings) must agree. abi_error is an expected outcome; anything else (crash, other exception,
// mismatch) is a finding.
//
// clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib \
//   tests/fuzz/abi_decode_fuzz.cpp lib/pipekit/eth/*.cpp -lfmt -o abi_decode_fuzz
// ./abi_decode_fuzz tests/fuzz/corpus    (the encoder's target: abi_encode_fuzz.cpp)

#include "pipekit/eth/abi.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using namespace pipekit::eth;

constexpr const char* signatures[] = {
    "(uint256)",
    "(uint8,int8,bool,address)",
    "(int256,int64,uint128,int24)",
    "(bytes)",
    "(string)",
    "(bytes32,bytes1,bytes20,function)",
    "(uint256[])",
    "(uint8[2][])",
    "(uint256[][])",
    "(string[])",
    "(bytes[2])",
    "(string[][3])",
    "(uint256[][][])",
    "((uint256,bytes))",
    "((uint256,bytes)[])",
    "((address,bytes)[2])",
    "((uint8,bool)[3])",
    "((uint256,(string,bytes)[],uint8[2])[],address)",
    "(bytes,bool,uint256[])",
    "(uint256,uint32[],bytes10,bytes)",
    "(uint256[][],string[])",
    "(fixed128x18,ufixed8x1,fixed256x80)",
    "((string a,uint256 b)[] xs,bool c)",
    "(((bytes)[])[])",
    "(int8[],bytes4[2][],string)",
    "((bool,(int16,string)[2])[][2])",
    "(bytes[][],string[2][])",
    "(address[],(address,uint256)[],bytes32[])",
    "(uint256,(uint256,(uint256,(uint256,bytes))))",
    "(string,string,string,bytes,bytes)",
};
constexpr std::size_t signature_count = sizeof(signatures) / sizeof(signatures[0]);

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  std::vector<abi_param> params;
  std::span<const std::uint8_t> body(data + 1, size - 1);
  try {
    if (data[0] == 0xff) {
      const auto* nul = static_cast<const std::uint8_t*>(std::memchr(data + 1, 0, size - 1));
      if (nul == nullptr) return 0;
      const std::string_view text(reinterpret_cast<const char*>(data + 1), static_cast<std::size_t>(nul - data - 1));
      params = parse_signature(text).inputs;
      body = std::span<const std::uint8_t>(nul + 1, data + size);
    } else {
      params = parse_signature(signatures[data[0] % signature_count]).inputs;
    }
  } catch (const abi_error&) {
    return 0;
  }

  nlohmann::json first;
  try {
    first = decode(params, body);
  } catch (const abi_error&) {
    return 0;
  }
  (void)first.dump();  // must be valid UTF-8, or dump throws
  try {
    const bytes again = encode(params, first);
    const nlohmann::json second = decode(params, again);
    if (second != first) finding("decode(encode(v)) != v", first.dump() + " vs " + second.dump());
    if (encode(params, second) != again) finding("encoding is not canonical", first.dump());
  } catch (const abi_error& e) {
    finding("re-encoding a decoded value failed", std::string(e.what()) + " for " + first.dump());
  }
  return 0;
}
