#pragma once
// Solidity contract ABI codec: types, human-readable signatures, JSON ABI files, head/tail encoding,
// strict decoding, events, errors and reverts.
//
// JSON value mapping (both directions; the contract documented in ethcall(1)):
//   uintN/intN    in: JSON integer, decimal string ("-12"), or 0x-hex string ("0xff", "-0x10" for intN:
//                     hex is the plain magnitude, never two's complement). JSON floats are rejected.
//                 out: JSON number when |v| < 2^53, else a decimal string.
//   address       in: "0x" + 40 hex; all-lowercase or all-uppercase, or mixed case with a valid EIP-55
//                     checksum. out: EIP-55 checksummed.
//   bool          JSON true/false.
//   bytesN        0x-hex of exactly N bytes (out: lowercase).   bytes: 0x-hex.   function: as bytes24.
//   string        JSON string (valid UTF-8 both ways: encoding and decoding reject anything else).
//   fixedMxN      in: decimal string ("1.25", at most N decimals) or JSON integer. out: decimal string
//   ufixedMxN         with trailing zeros dropped ("1.25", "-0.5", "3").
//   T[] / T[k]    JSON array (length checked for T[k]).
//   tuple         in: array, or object keyed by component name. out: object when every component has a
//                 unique non-empty name, else array.
// Error messages name the place: arguments are numbered from 1 ("arg 2 (uint8): 300 is out of range"),
// array elements from 0 ("arg 1 (uint8[])[3] (uint8): ...").

#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/keccak.hpp"

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pipekit::eth {

// Every ABI problem: bad type or signature, bad value, malformed data.
struct abi_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

constexpr std::size_t max_type_depth = 64;          // nesting of tuples and arrays
constexpr std::size_t max_static_size = 1u << 24;   // head size of one value, bytes (fixed arrays)

enum class abi_kind {
  uint,         // uintN, N = bits
  sint,         // intN, N = bits
  address,
  boolean,
  fixed_bytes,  // bytesN, N = size
  dynamic_bytes,  // bytes
  string,
  function,     // 24 bytes: address + selector
  fixed,        // fixedMxN: M = bits, N = decimals
  ufixed,       // ufixedMxN
  array,        // T[]: element
  fixed_array,  // T[k]: element, k = size
  tuple,        // (T1,T2,...): components
};

struct abi_param;

struct abi_type {
  abi_kind kind = abi_kind::uint;
  std::uint16_t bits = 256;               // uint, sint, fixed, ufixed
  std::uint8_t decimals = 0;              // fixed, ufixed
  std::size_t size = 0;                   // fixed_bytes: byte count; fixed_array: length
  std::shared_ptr<const abi_type> element;  // array, fixed_array
  std::vector<abi_param> components;      // tuple (names may be empty)
  std::string internal_type;              // from JSON ABI files, e.g. "struct Foo.Bar[]"; else empty

  bool is_dynamic() const;
  // Bytes the value takes in the head of its enclosing tuple: 32 for dynamic types.
  std::size_t head_size() const;
  // Canonical type string used in signatures: "uint256", "(uint256,bytes)[]", "fixed128x18".
  std::string canonical() const;
  // JSON ABI "type" string: like canonical() but tuples spelled "tuple" ("tuple[]").
  std::string json_type() const;
  const abi_type& element_type() const { return *element; }
};

struct abi_param {
  std::string name;
  abi_type type;
  bool indexed = false;
};

// Parses one type: elementary types, "uint"/"int"/"fixed"/"ufixed" aliases, "tuple(...)" or "(...)"
// (components may carry names: "(address to,uint256 amount)"), array suffixes "T[2][]" (an array of
// T[2]). Throws abi_error naming the column.
abi_type parse_type(std::string_view text);

struct abi_function {
  std::string name;
  std::vector<abi_param> inputs, outputs;
  std::string state_mutability;  // "view", "pure", "payable", "nonpayable"; empty when not stated

  std::string signature() const;  // canonical "name(type,...)"
  std::array<std::uint8_t, 4> selector() const;
};

// Parses "f(uint256,(address,bytes)[])(bool)", "f(uint256)", "(uint256,bytes)" (empty name),
// "function transfer(address to, uint256 amount) external returns (bool)", with parameter names,
// data locations (memory, calldata, storage), "indexed", modifiers (view, pure, payable, nonpayable,
// external, public) and a leading "function"/"event"/"error" keyword. Whitespace tolerant.
abi_function parse_signature(std::string_view text);

// Encodes `args` (a JSON array, or an object keyed by name when every param is named) as the ABI
// tuple of `params`. Byte-identical to solc's abi.encode.
bytes encode(std::span<const abi_param> params, const nlohmann::json& args);

// Decodes the tuple of `params` from `data`; returns a JSON array of the top-level values.
// Strict: dirty padding, out-of-range offsets or lengths and short data throw abi_error.
// Data after the encoded value is allowed.
nlohmann::json decode(std::span<const abi_param> params, std::span<const std::uint8_t> data);

// The one rule for named results: an object keyed by name when every param has a distinct non-empty
// name (so {} for no params), else `values` as it is. `values` is a JSON array with params.size()
// elements (as from decode()); anything else is returned unchanged.
nlohmann::json named_or_array(std::span<const abi_param> params, nlohmann::json values);

// Shapes a decode() result: one value -> the bare value; none -> the empty array; several ->
// named_or_array().
nlohmann::json shape_result(std::span<const abi_param> params, nlohmann::json values);

// Converts one command-line argument (cast style) to the JSON value for `type`: scalars as written
// (string: the raw text; bool: true/false; integers: decimal or hex text), arrays "[a,b]" and tuples
// "(a,b)" with unquoted or double-quoted elements, nested. Text that is valid JSON of the right shape
// ("[1,2]", "{\"a\":1}") is taken as JSON.
nlohmann::json parse_cli_arg(const abi_type& type, std::string_view text);

// selector + encoded arguments.
bytes encode_call(const abi_function& function, const nlohmann::json& args);
// The same with the selector already computed (selector() hashes the signature on every call;
// callers encoding many calls of one function keep it).
bytes encode_call(const std::array<std::uint8_t, 4>& selector, std::span<const abi_param> inputs,
                  const nlohmann::json& args);
// Checks the selector and decodes the arguments (a JSON array, as decode()).
nlohmann::json decode_call(const abi_function& function, std::span<const std::uint8_t> calldata);

struct abi_event {
  std::string name;
  std::vector<abi_param> inputs;
  bool anonymous = false;

  std::string signature() const;
  std::array<std::uint8_t, 32> topic0() const;
};

// Parses "event Transfer(address indexed from, address indexed to, uint256 value) [anonymous]".
abi_event parse_event(std::string_view text);

// Decodes a log's arguments: an object keyed by name when every input has a unique non-empty name,
// else an array in declaration order. Indexed static values are decoded from their topic; indexed
// dynamic values (string, bytes, arrays, tuples) are stored only as a hash, so they come back as the
// topic's 0x-hex. For non-anonymous events topic 0 must be topic0(); the topic count is checked.
nlohmann::json decode_log(const abi_event& event, std::span<const bytes> topics,
                          std::span<const std::uint8_t> data);

// Builds the topics of a log filter. `filter_args` is null, an array aligned with the event's inputs
// (may be shorter; non-indexed entries must be null), or an object keyed by indexed input name.
// null/missing means any value (nullopt). Dynamic indexed values are hashed as the spec says:
// keccak256 of the raw bytes for string/bytes, of the in-place encoding for arrays and tuples.
// Topic 0 (the event's) comes first unless the event is anonymous; trailing wildcards are dropped.
std::vector<std::optional<bytes>> encode_topics(const abi_event& event, const nlohmann::json& filter_args);

struct abi_error_def {
  std::string name;
  std::vector<abi_param> inputs;

  std::string signature() const;
  std::array<std::uint8_t, 4> selector() const;
};

// A contract's JSON ABI.
class abi_file {
 public:
  // From a solc/ethers JSON ABI array, or an object with an "abi" key (Hardhat/Foundry artifacts).
  // Errors name the entry: `abi[3].inputs[1].type: unknown type "uint7"`.
  static abi_file parse(const nlohmann::json& doc);

  // By name (overloads narrowed by `arg_count`; still ambiguous -> abi_error listing the candidates) or
  // by exact signature when the text contains '(' ("transfer(address,uint256)"). Throws when none match.
  const abi_function& function(std::string_view name_or_signature,
                               std::optional<std::size_t> arg_count = {}) const;
  const abi_function* function_by_selector(std::array<std::uint8_t, 4> selector) const;
  // By name or exact signature; throws when none or several match.
  const abi_event& event(std::string_view name_or_signature) const;
  const abi_event* event_by_topic0(std::span<const std::uint8_t> topic0) const;
  const abi_error_def* error_by_selector(std::array<std::uint8_t, 4> selector) const;

  const std::vector<abi_function>& functions() const { return functions_; }
  const std::vector<abi_event>& events() const { return events_; }
  const std::vector<abi_error_def>& errors() const { return errors_; }
  const abi_function* constructor() const { return constructor_ ? &*constructor_ : nullptr; }
  bool has_fallback() const { return has_fallback_; }
  bool has_receive() const { return has_receive_; }

 private:
  std::vector<abi_function> functions_;
  std::vector<std::array<std::uint8_t, 4>> function_selectors_;
  std::vector<abi_event> events_;
  std::vector<std::array<std::uint8_t, 32>> event_topics_;
  std::vector<abi_error_def> errors_;
  std::vector<std::array<std::uint8_t, 4>> error_selectors_;
  std::optional<abi_function> constructor_;
  bool has_fallback_ = false;
  bool has_receive_ = false;
};

// Decodes revert data:
//   {"kind":"empty"}                                        no data
//   {"kind":"error","signature":"Error(string)","message":"..."}
//   {"kind":"panic","code":17,"code_hex":"0x11","meaning":"arithmetic underflow or overflow"}
//   {"kind":"custom","name":"X","signature":"X(uint256)","args":{...}}   found in `abi` (may be null);
//                                                           args shaped like decode_log's
//   {"kind":"unknown","selector":"0x..","data":"0x.."}      no match ("selector" absent under 4 bytes)
// Throws abi_error only when a known selector's body is malformed.
nlohmann::json decode_revert(std::span<const std::uint8_t> data, const abi_file* abi);

// EIP-55 mixed-case checksum form of a 20-byte address, "0x"-prefixed.
std::string checksum_address(std::span<const std::uint8_t, 20> address);

}  // namespace pipekit::eth
