#pragma once
// What generated bindings (abigen-cpp(1)) stand on: the ABI's values as C++ types, their
// conversion to and from the codec's JSON values (abi.hpp), and `contract`, the base of every
// generated contract class: calls, transactions, gas estimates, deployment, event logs, and
// reverts thrown as typed exceptions. Blocking, on the caller's thread; a contract uses the
// rpc_client it is given (not thread-safe: one per thread), which must outlive it.
//
// Solidity type   C++ type                                   sol:: tag (the conversion)
//   uintN, N<=64  std::uint8_t .. std::uint64_t (smallest)   sol::uint<N>
//   intN, N<=64   std::int8_t .. std::int64_t (smallest)     sol::int_<N>
//   uintN, N>64   eth::uint_t<N> (Boost.Multiprecision)      sol::uint<N>
//   intN, N>64    eth::int_t<N>                              sol::int_<N>
//   address       eth::address                               sol::address_
//   bool          bool                                       sol::bool_
//   bytesN        eth::fixed_bytes<N>                        sol::bytes_n<N>
//   bytes         eth::bytes (std::vector<std::uint8_t>)     sol::bytes_
//   string        std::string                                sol::string_
//   function      eth::fixed_bytes<24>                       sol::function_
//   fixedMxN      std::string (decimal text, as the codec)   sol::fixed<M, N> / sol::ufixed<M, N>
//   T[] / T[k]    std::vector<T> / std::array<T, k>          sol::array<T> / sol::array_n<T, k>
//   tuple         a generated struct S                       sol::tuple<S>
// A tag's `type` is the C++ type; `to(v)` makes the codec's JSON value, `from(j)` reads one back.
// The tag, not the C++ type, decides the conversion: uint8[] and bytes are both
// std::vector<std::uint8_t>, one a JSON array of numbers, the other 0x-hex.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include <boost/multiprecision/cpp_int.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/eth/abi.hpp"
#include "pipekit/eth/log_follower.hpp"
#include "pipekit/eth/rpc.hpp"
#include "pipekit/eth/transact.hpp"
#include "pipekit/eth/tx.hpp"

namespace pipekit::eth {

// ---- value types ----------------------------------------------------------------------------

template <unsigned N>
using uint_t = boost::multiprecision::number<boost::multiprecision::cpp_int_backend<
    N, N, boost::multiprecision::unsigned_magnitude, boost::multiprecision::checked, void>>;
// Sign and magnitude, so it holds one value more than intN at each end; the codec refuses
// what intN cannot hold.
template <unsigned N>
using int_t = boost::multiprecision::number<boost::multiprecision::cpp_int_backend<
    N, N, boost::multiprecision::signed_magnitude, boost::multiprecision::checked, void>>;
using uint256 = uint_t<256>;
using int256 = int_t<256>;

// A 20-byte account or contract address.
class address {
 public:
  address() = default;  // the zero address
  explicit address(const address_bytes& raw) noexcept : raw_(raw) {}
  // "0x" + 40 hex digits: all lower or all upper case, or mixed case with a valid EIP-55
  // checksum. Throws abi_error saying which.
  static address from_hex(std::string_view text);
  const address_bytes& raw() const noexcept { return raw_; }
  std::string hex() const;  // EIP-55 checksummed
  auto operator<=>(const address&) const = default;

 private:
  address_bytes raw_{};
};

// bytesN: exactly N bytes.
template <std::size_t N>
struct fixed_bytes {
  static_assert(N >= 1 && N <= 32, "bytesN has 1 to 32 bytes");
  std::array<std::uint8_t, N> data{};

  // 0x-hex of exactly N bytes; throws abi_error.
  static fixed_bytes from_hex(std::string_view text) {
    const bytes b = eth::from_hex(text);
    if (b.size() != N)
      throw abi_error("bytes" + std::to_string(N) + ": " + std::to_string(b.size()) + " bytes given, " +
                      std::to_string(N) + " expected");
    fixed_bytes r;
    std::copy(b.begin(), b.end(), r.data.begin());
    return r;
  }
  std::string hex() const { return to_hex(data); }
  auto operator<=>(const fixed_bytes&) const = default;
};
using hash = fixed_bytes<32>;  // a Keccak-256 hash: an indexed dynamic event argument

// ---- the codec's JSON values ----------------------------------------------------------------

namespace sol {
namespace detail {
// A JSON number or decimal/0x text, as the codec writes and reads integers; checked against the
// range of intN/uintN (throws abi_error naming `what`).
std::uint64_t to_u64(const nlohmann::json& j, unsigned bits);
std::int64_t to_i64(const nlohmann::json& j, unsigned bits);
std::string integer_text(const nlohmann::json& j);  // decimal (or 0x) text of a number or text
// A tuple component: j[index] for an array, else j[name] (or j["<index>"] when the name is absent).
const nlohmann::json& component(const nlohmann::json& j, std::size_t index, std::string_view name);
const std::string& text(const nlohmann::json& j, const char* what);
const nlohmann::json& array_of(const nlohmann::json& j, std::size_t size, const char* what);  // size 0: any

template <unsigned N>
using small_uint = std::conditional_t<
    N <= 8, std::uint8_t,
    std::conditional_t<N <= 16, std::uint16_t, std::conditional_t<N <= 32, std::uint32_t, std::uint64_t>>>;
template <unsigned N>
using small_int = std::conditional_t<
    N <= 8, std::int8_t,
    std::conditional_t<N <= 16, std::int16_t, std::conditional_t<N <= 32, std::int32_t, std::int64_t>>>;
}  // namespace detail

template <unsigned N>
struct uint {
  static_assert(N >= 8 && N <= 256 && N % 8 == 0, "uintN: N is a multiple of 8 from 8 to 256");
  using type = std::conditional_t<(N <= 64), detail::small_uint<N>, uint_t<N>>;
  static nlohmann::json to(const type& v) {
    if constexpr (N <= 64) return nlohmann::json(static_cast<std::uint64_t>(v));
    else return nlohmann::json(v.str());
  }
  static type from(const nlohmann::json& j) {
    if constexpr (N <= 64) return static_cast<type>(detail::to_u64(j, N));
    else return type(detail::integer_text(j));
  }
};

template <unsigned N>
struct int_ {
  static_assert(N >= 8 && N <= 256 && N % 8 == 0, "intN: N is a multiple of 8 from 8 to 256");
  using type = std::conditional_t<(N <= 64), detail::small_int<N>, int_t<N>>;
  static nlohmann::json to(const type& v) {
    if constexpr (N <= 64) return nlohmann::json(static_cast<std::int64_t>(v));
    else return nlohmann::json(v.str());
  }
  static type from(const nlohmann::json& j) {
    if constexpr (N <= 64) return static_cast<type>(detail::to_i64(j, N));
    else return type(detail::integer_text(j));
  }
};

struct address_ {
  using type = eth::address;
  static nlohmann::json to(const type& v) { return to_hex(v.raw()); }
  static type from(const nlohmann::json& j) { return type::from_hex(detail::text(j, "address")); }
};

struct bool_ {
  using type = bool;
  static nlohmann::json to(bool v) { return v; }
  static bool from(const nlohmann::json& j) {
    if (!j.is_boolean()) throw abi_error("bool: expected true or false, got " + j.dump());
    return j.get<bool>();
  }
};

template <std::size_t N>
struct bytes_n {
  using type = fixed_bytes<N>;
  static nlohmann::json to(const type& v) { return v.hex(); }
  static type from(const nlohmann::json& j) { return type::from_hex(detail::text(j, "bytesN")); }
};

struct function_ : bytes_n<24> {};

struct bytes_ {
  using type = eth::bytes;
  static nlohmann::json to(const type& v) { return to_hex(v); }
  static type from(const nlohmann::json& j) { return from_hex(detail::text(j, "bytes")); }
};

struct string_ {
  using type = std::string;
  static nlohmann::json to(const type& v) { return v; }
  static type from(const nlohmann::json& j) { return detail::text(j, "string"); }
};

template <unsigned M, unsigned N>
struct fixed {
  using type = std::string;
  static nlohmann::json to(const type& v) { return v; }
  static type from(const nlohmann::json& j) { return detail::text(j, "fixed"); }
};
template <unsigned M, unsigned N>
struct ufixed : fixed<M, N> {};

template <class T>
struct array {
  using type = std::vector<typename T::type>;
  static nlohmann::json to(const type& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : v) out.push_back(T::to(e));
    return out;
  }
  static type from(const nlohmann::json& j) {
    type out;
    for (const auto& e : detail::array_of(j, 0, "array")) out.push_back(T::from(e));
    return out;
  }
};

template <class T, std::size_t K>
struct array_n {
  using type = std::array<typename T::type, K>;
  static nlohmann::json to(const type& v) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& e : v) out.push_back(T::to(e));
    return out;
  }
  static type from(const nlohmann::json& j) {
    const auto& a = detail::array_of(j, K, "fixed-size array");
    type out{};
    for (std::size_t i = 0; i < K; ++i) out[i] = T::from(a[i]);
    return out;
  }
};

// S (a generated struct) has static to_abi(const S&) and from_abi(const nlohmann::json&).
template <class S>
struct tuple {
  using type = S;
  static nlohmann::json to(const S& v) { return S::to_abi(v); }
  static S from(const nlohmann::json& j) { return S::from_abi(j); }
};
}  // namespace sol

// ---- errors a contract throws ---------------------------------------------------------------

// A call, gas estimate or transaction reverted, with revert data no more specific type was found
// for (including none: a bare `revert()` or `require(cond)`). Generated custom errors derive from
// it, so `catch (const eth::contract_error&)` takes every revert.
class contract_error : public std::runtime_error {
 public:
  contract_error(std::string message, bytes data) : std::runtime_error(std::move(message)), data_(std::move(data)) {}
  const bytes& data() const noexcept { return data_; }  // the revert data as the node gave it

 private:
  bytes data_;
};

// `revert("reason")` / `require(cond, "reason")`: Error(string).
class revert_error : public contract_error {
 public:
  revert_error(std::string message, bytes data, std::string reason)
      : contract_error(std::move(message), std::move(data)), reason_(std::move(reason)) {}
  const std::string& reason() const noexcept { return reason_; }

 private:
  std::string reason_;
};

// Panic(uint256): an assert, an overflow, a division by zero... (code: 0x01, 0x11, 0x12...).
class panic_error : public contract_error {
 public:
  panic_error(std::string message, bytes data, std::uint64_t code)
      : contract_error(std::move(message), std::move(data)), code_(code) {}
  std::uint64_t code() const noexcept { return code_; }

 private:
  std::uint64_t code_;
};

// ---- options and results --------------------------------------------------------------------

// Who signs a transaction: a local key (its address is the sender), or the node's own account.
signer local_signer(private_key key);
signer node_signer(const address& from);

struct call_options {
  std::string block = "latest";  // a tag (latest, pending, safe, finalized, earliest) or 0x-number
  std::optional<address> from{};  // msg.sender of the call
};

struct send_options {
  tx_options tx{};      // value is set by the payable functions' own parameter
  wait_options wait{};  // how deep the receipt, how long to wait
};

struct receipt {
  std::string tx_hash{}, block_hash{};
  std::uint64_t block_number = 0, gas_used = 0;
  std::optional<address> contract_address{};  // deployments
  nlohmann::json json{};                      // the node's receipt as it came (logs included)
};

// Where a decoded event came from.
struct log_meta {
  address contract{};
  std::uint64_t block_number = 0, log_index = 0;
  std::string block_hash{}, tx_hash{};
  bool removed = false;  // undone by a reorg (follow only): the event is no longer on the chain
};

struct log_range {
  std::string from_block = "earliest";  // a tag or 0x-number
  std::string to_block = "latest";
};

// ---- the base of generated contract classes -------------------------------------------------

class contract {
 public:
  const address& addr() const noexcept { return address_; }
  rpc_client& client() const noexcept { return *client_; }

  // An event E of this contract (a generated struct: E::filter holds its indexed inputs, each
  // optional; E::event(), E::filter_args(), E::from_record()). Its logs over a range:
  //   auto sent = token.logs<Token::Transfer>({.from = alice}, {.from_block = "0x10"});
  template <class E>
  std::vector<E> logs(const typename E::filter& f = {}, const log_range& r = {}) const {
    std::vector<E> out;
    for (const auto& rec : event_records(E::event(), E::filter_args(f), r)) out.push_back(E::from_record(rec));
    return out;
  }
  // ... and as they come, until on_event returns false (o: from_block, checkpoint, confirmations,
  // poll interval; its filter is this event's). Removed (reorged) events come with log.removed.
  template <class E>
  void follow(const std::function<bool(const E&)>& on_event, const follow_options& o = {},
              const typename E::filter& f = {}) const {
    follow_event(E::event(), E::filter_args(f),
                 [&](const nlohmann::json& rec) { return on_event(E::from_record(rec)); }, o);
  }

 protected:
  // Throws a more specific exception for revert data it knows (a generated class's custom
  // errors); returns when it does not know it.
  using revert_handler = void (*)(const bytes& data, const std::string& message);

  contract(rpc_client& client, const address& at, const abi_file& abi, revert_handler on_revert)
      : client_(&client), address_(at), abi_(&abi), on_revert_(on_revert) {}

  // eth_call: the decoded outputs, a JSON array (decode()).
  nlohmann::json call_function(const abi_function& fn, const nlohmann::json& args,
                               const std::optional<uint256>& value, const call_options& o) const;
  // Signs, sends, waits for the receipt (send_and_wait()); a revert is thrown typed.
  receipt send_function(const signer& s, const abi_function& fn, const nlohmann::json& args,
                        const std::optional<uint256>& value, const send_options& o) const;
  std::uint64_t estimate_function(const signer& s, const abi_function& fn, const nlohmann::json& args,
                                  const std::optional<uint256>& value, const tx_options& o) const;
  // Deploys `bytecode` (0x-hex, link placeholders already replaced) with the constructor's
  // encoded arguments; the receipt's contract address.
  static receipt deploy_code(rpc_client& client, const abi_file& abi, revert_handler on_revert,
                             std::string_view bytecode, const nlohmann::json& ctor_args,
                             const std::optional<uint256>& value, const signer& s, const send_options& o);
  // The event's records (event_log.hpp) over a range, and followed as blocks come (log_follower;
  // on_record returns false to stop). filter_args: as encode_topics() takes them. Both use the
  // contract's client, except a follow over ws:// or IPC: its newHeads subscription gets a
  // connection of its own, closed when the follow returns.
  std::vector<nlohmann::json> event_records(const abi_event& ev, const nlohmann::json& filter_args,
                                            const log_range& r) const;
  void follow_event(const abi_event& ev, const nlohmann::json& filter_args,
                    const std::function<bool(const nlohmann::json&)>& on_record, follow_options o) const;
  // The record's args (named, else by position) and where it came from.
  static const nlohmann::json& record_args(const nlohmann::json& record);
  static log_meta record_meta(const nlohmann::json& record);

  // Rethrows a revert (rpc_error of eth_call, eth::error revert/failed carrying data) typed:
  // on_revert's type, revert_error, panic_error, else contract_error. Anything else as it was.
  [[noreturn]] static void rethrow_typed(const abi_file& abi, revert_handler on_revert);

 private:
  rpc_client* client_;
  address address_;
  const abi_file* abi_;
  revert_handler on_revert_;
};

}  // namespace pipekit::eth
