// libFuzzer target for the ABI encoder, the command-line argument parser and the signature parser.
// Input: byte 0 picks the mode (% 3), then a signature up to the first NUL, then the body:
//   0  body is JSON text (parsed without exceptions; skipped when not JSON) passed to encode()
//   1  body is one command-line argument per parameter, separated by NUL, each through parse_cli_arg()
//   2  no body: the signature text goes to parse_type(), parse_signature() and parse_event()
// Encoded values are decoded and re-encoded, which must give the same bytes; parsed types and signatures
// must survive canonical() / signature() and a JSON ABI round trip. abi_error is an expected outcome;
// anything else (crash, other exception, mismatch) is a finding.
//
// clang++ -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Ilib \
//   tests/fuzz/abi_encode_fuzz.cpp lib/pipekit/eth/*.cpp -lfmt -o abi_encode_fuzz
// ./abi_encode_fuzz tests/fuzz/corpus_encode

#include "pipekit/eth/abi.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

using namespace pipekit::eth;
using json = nlohmann::json;

[[noreturn]] void finding(const char* what, const std::string& detail) {
  std::fprintf(stderr, "%s: %s\n", what, detail.c_str());
  std::abort();
}

std::string shown(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

// encode -> decode -> encode must reproduce the bytes.
void check_round_trip(std::span<const abi_param> params, const json& args, const bytes& encoded) {
  json decoded;
  try {
    decoded = decode(params, encoded);
  } catch (const abi_error& e) {
    finding("decoding an encoding failed", std::string(e.what()) + " for " + shown(args));
  }
  (void)decoded.dump();  // decoded strings are valid UTF-8, or dump throws
  try {
    if (encode(params, decoded) != encoded) finding("encode(decode(e)) != e", shown(args) + " vs " + shown(decoded));
  } catch (const abi_error& e) {
    finding("re-encoding a decoded value failed", std::string(e.what()) + " for " + shown(decoded));
  }
}

// Mirrors a parsed parameter list as JSON ABI "inputs" (tuples as "tuple[..]" + components).
json json_params(std::span<const abi_param> params);

json json_param(const abi_param& p) {
  json j = {{"name", p.name}, {"type", p.type.json_type()}};
  const abi_type* t = &p.type;
  while (t->kind == abi_kind::array || t->kind == abi_kind::fixed_array) t = t->element.get();
  if (t->kind == abi_kind::tuple) j["components"] = json_params(t->components);
  return j;
}

json json_params(std::span<const abi_param> params) {
  json list = json::array();
  for (const auto& p : params) list.push_back(json_param(p));
  return list;
}

void check_parsers(std::string_view text) {
  try {
    const abi_type t = parse_type(text);
    const std::string canonical = t.canonical();
    if (parse_type(canonical).canonical() != canonical) finding("type canonical() does not reparse", canonical);
  } catch (const abi_error&) {
  }
  try {
    const abi_function f = parse_signature(text);
    const std::string sig = f.signature();
    if (parse_signature(sig).signature() != sig) finding("signature() does not reparse", sig);
    if (!f.name.empty()) {
      const json doc = json::array({{{"type", "function"}, {"name", f.name}, {"inputs", json_params(f.inputs)},
                                     {"outputs", json_params(f.outputs)}}});
      const abi_file abi = abi_file::parse(doc);
      if (abi.functions().at(0).signature() != sig) {
        finding("JSON ABI round trip changed the signature", sig + " vs " + abi.functions()[0].signature());
      }
    }
  } catch (const abi_error&) {
  }
  try {
    (void)parse_event(text).topic0();
  } catch (const abi_error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned mode = data[0] % 3;
  const std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::size_t nul = rest.find('\0');
  const std::string_view sig = rest.substr(0, nul);
  if (mode == 2) {
    check_parsers(sig);
    return 0;
  }
  if (nul == std::string_view::npos) return 0;
  const std::string_view body = rest.substr(nul + 1);

  std::vector<abi_param> params;
  try {
    params = parse_signature(sig).inputs;
  } catch (const abi_error&) {
    return 0;
  }

  json args;
  if (mode == 0) {
    args = json::parse(body, nullptr, false);
    if (args.is_discarded()) return 0;
  } else {
    args = json::array();
    std::size_t start = 0;
    for (std::size_t i = 0; i < params.size(); ++i) {
      if (start > body.size()) return 0;  // fewer arguments than parameters
      const std::size_t end = std::min(body.find('\0', start), body.size());
      try {
        args.push_back(parse_cli_arg(params[i].type, body.substr(start, end - start)));
      } catch (const abi_error&) {
        return 0;
      }
      start = end + 1;
    }
  }

  bytes encoded;
  try {
    encoded = encode(params, args);
  } catch (const abi_error&) {
    return 0;
  }
  check_round_trip(params, args, encoded);
  return 0;
}
