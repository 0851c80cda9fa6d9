#include "pipekit/eth/contract.hpp"

#include <exception>
#include <limits>
#include <utility>

#include <fmt/format.h>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/event_log.hpp"
#include "pipekit/eth/hex.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

std::optional<u256> wei(const std::optional<uint256>& v) {
  if (!v) return std::nullopt;
  return parse_u256(v->str());
}

tx_options with_value(tx_options o, const std::optional<uint256>& value) {
  if (value) o.value = wei(value);
  return o;
}

// The hex revert data an exception carries, if it is a revert: an eth_call's JSON-RPC error
// (anvil and geth answer code 3 with the data; an empty revert has "0x" or none), or eth::error
// revert/failed from a gas estimate or a mined transaction.
std::optional<std::pair<std::string, std::string>> revert_of_exception(std::exception_ptr p) {
  try {
    std::rethrow_exception(p);
  } catch (const rpc_error& e) {
    const std::string msg = e.what();
    if (e.data.is_string()) return std::pair{e.data.get<std::string>(), msg};
    if (e.code == 3 || msg.find("revert") != std::string::npos) return std::pair{std::string("0x"), msg};
  } catch (const error& e) {
    if (e.kind() == error_kind::revert || e.kind() == error_kind::failed)
      return std::pair{e.subject().empty() ? std::string("0x") : e.subject(), std::string(e.what())};
  } catch (...) {
  }
  return std::nullopt;
}

std::uint64_t json_u64(const json& v) {
  if (v.is_number_unsigned()) return v.get<std::uint64_t>();
  if (v.is_number_integer() && v.get<std::int64_t>() >= 0) return static_cast<std::uint64_t>(v.get<std::int64_t>());
  if (v.is_string()) {
    auto q = parse_u256(v.get_ref<const std::string&>()).to_u64();
    if (q) return *q;
  }
  throw error(error_kind::response, fmt::format("expected a 64-bit quantity, got {}", v.dump()));
}

}  // namespace

// ---- value types ---------------------------------------------------------------------------

address address::from_hex(std::string_view text) {
  if (!(text.starts_with("0x") || text.starts_with("0X")) || text.size() != 42)
    throw abi_error(fmt::format("address: \"{}\" is not 0x and 40 hex digits", text.substr(0, 64)));
  const bytes raw = eth::from_hex(text);
  address_bytes b{};
  std::copy(raw.begin(), raw.end(), b.begin());
  const std::string_view digits = text.substr(2);
  const bool has_lower = digits.find_first_of("abcdef") != std::string_view::npos;
  const bool has_upper = digits.find_first_of("ABCDEF") != std::string_view::npos;
  if (has_lower && has_upper && checksum_address(b).substr(2) != digits)
    throw abi_error(fmt::format("address: {} has mixed case but not a valid EIP-55 checksum", text));
  return address(b);
}

std::string address::hex() const { return checksum_address(raw_); }

namespace sol::detail {

const std::string& text(const json& j, const char* what) {
  if (!j.is_string()) throw abi_error(fmt::format("{}: expected a string, got {}", what, j.dump()));
  return j.get_ref<const std::string&>();
}

std::string integer_text(const json& j) {
  if (j.is_string()) return j.get<std::string>();
  if (j.is_number_unsigned()) return std::to_string(j.get<std::uint64_t>());
  if (j.is_number_integer()) return std::to_string(j.get<std::int64_t>());
  throw abi_error(fmt::format("integer: expected a number or decimal text, got {}", j.dump()));
}

std::uint64_t to_u64(const json& j, unsigned bits) {
  const std::uint64_t max = bits >= 64 ? std::numeric_limits<std::uint64_t>::max() : (std::uint64_t{1} << bits) - 1;
  std::uint64_t v = 0;
  if (j.is_number_unsigned()) {
    v = j.get<std::uint64_t>();
  } else if (j.is_number_integer() && j.get<std::int64_t>() >= 0) {
    v = static_cast<std::uint64_t>(j.get<std::int64_t>());
  } else if (j.is_string()) {
    std::optional<std::uint64_t> q;
    try {
      q = parse_u256(j.get_ref<const std::string&>()).to_u64();
    } catch (const std::invalid_argument&) {
    }
    if (!q) throw abi_error(fmt::format("uint{}: {} is not a number in range", bits, j.dump()));
    v = *q;
  } else {
    throw abi_error(fmt::format("uint{}: expected a number, got {}", bits, j.dump()));
  }
  if (v > max) throw abi_error(fmt::format("uint{}: {} is out of range", bits, v));
  return v;
}

std::int64_t to_i64(const json& j, unsigned bits) {
  const std::int64_t max = bits >= 64 ? std::numeric_limits<std::int64_t>::max() : (std::int64_t{1} << (bits - 1)) - 1;
  const std::int64_t min = -max - 1;
  std::int64_t v = 0;
  if (j.is_number_integer() && !j.is_number_unsigned()) {
    v = j.get<std::int64_t>();
  } else if (j.is_number_unsigned() && j.get<std::uint64_t>() <= static_cast<std::uint64_t>(max)) {
    v = static_cast<std::int64_t>(j.get<std::uint64_t>());
  } else if (j.is_string()) {
    const std::string& s = j.get_ref<const std::string&>();
    const bool negative = s.starts_with('-');
    std::optional<std::uint64_t> q;
    try {
      q = parse_u256(negative ? std::string_view(s).substr(1) : std::string_view(s)).to_u64();
    } catch (const std::invalid_argument&) {
    }
    const std::uint64_t limit = negative ? static_cast<std::uint64_t>(max) + 1 : static_cast<std::uint64_t>(max);
    if (!q || *q > limit) throw abi_error(fmt::format("int{}: {} is not a number in range", bits, j.dump()));
    v = negative ? static_cast<std::int64_t>(0 - *q) : static_cast<std::int64_t>(*q);
  } else {
    throw abi_error(fmt::format("int{}: expected a number, got {}", bits, j.dump()));
  }
  if (v > max || v < min) throw abi_error(fmt::format("int{}: {} is out of range", bits, v));
  return v;
}

const json& component(const json& j, std::size_t index, std::string_view name) {
  if (j.is_array()) {
    if (index >= j.size()) throw abi_error(fmt::format("tuple: no component {} in {}", index, j.dump()));
    return j[index];
  }
  if (!j.is_object()) throw abi_error(fmt::format("tuple: expected an array or object, got {}", j.dump()));
  if (!name.empty()) {
    auto it = j.find(std::string(name));
    if (it != j.end()) return *it;
  }
  auto it = j.find(std::to_string(index));
  if (it != j.end()) return *it;
  throw abi_error(fmt::format("tuple: no component \"{}\" ({}) in {}", name, index, j.dump()));
}

const json& array_of(const json& j, std::size_t size, const char* what) {
  if (!j.is_array()) throw abi_error(fmt::format("{}: expected an array, got {}", what, j.dump()));
  if (size != 0 && j.size() != size)
    throw abi_error(fmt::format("{}: {} elements, {} expected", what, j.size(), size));
  return j;
}

}  // namespace sol::detail

signer local_signer(private_key key) {
  signer s;
  s.from = to_hex(key.addr());
  s.key.emplace(std::move(key));
  return s;
}

signer node_signer(const address& from) {
  signer s;
  s.from = to_hex(from.raw());
  return s;
}

// ---- contract ------------------------------------------------------------------------------

void contract::rethrow_typed(const abi_file& abi, revert_handler on_revert) {
  std::exception_ptr p = std::current_exception();
  auto revert = revert_of_exception(p);
  if (!revert) std::rethrow_exception(p);
  auto& [hex, message] = *revert;
  bytes data;
  try {
    data = from_hex(hex);
  } catch (const abi_error&) {
    std::rethrow_exception(p);
  }
  json decoded;
  try {
    decoded = decode_revert(data, &abi);
  } catch (const abi_error&) {
    throw contract_error(message, std::move(data));
  }
  const std::string kind = decoded.value("kind", "");
  // A custom error's message is the decoded error ("reverted: Insufficient(need=5, have=1)"),
  // not the node's text ("execution reverted: custom error 0xe8620800: ").
  if (kind == "custom") {
    std::string args;
    const json& a = decoded["args"];
    if (a.is_object())
      for (const auto& [k, v] : a.items()) args += fmt::format("{}{}={}", args.empty() ? "" : ", ", k, v.dump());
    else if (a.is_array())
      for (const auto& v : a) args += fmt::format("{}{}", args.empty() ? "" : ", ", v.dump());
    message = fmt::format("reverted: {}({})", decoded.value("name", ""), args);
  }
  if (on_revert && data.size() >= 4) on_revert(data, message);
  if (kind == "error") {
    std::string reason = decoded.value("message", "");
    std::string what = fmt::format("reverted: {}", reason);  // before reason is moved: argument order is unspecified
    throw revert_error(std::move(what), std::move(data), std::move(reason));
  }
  if (kind == "panic") {
    const std::uint64_t code = decoded["code"].is_number_unsigned() ? decoded["code"].get<std::uint64_t>() : 0;
    throw panic_error(fmt::format("panicked: 0x{:02x} ({})", code, decoded.value("meaning", "")), std::move(data), code);
  }
  if (kind == "custom")  // in the ABI, but the generated handler did not take it (bindings out of date)
    throw contract_error(message, std::move(data));
  throw contract_error(message, std::move(data));
}

json contract::call_function(const abi_function& fn, const json& args, const std::optional<uint256>& value,
                             const call_options& o) const {
  try {
    tx_request r{fn.signature(), address_.raw(), encode_call(fn, args), abi_};
    json call = r.call_object(o.from ? to_hex(o.from->raw()) : std::string(), wei(value));
    const json result = client_->call("eth_call", json::array({call, o.block}));
    if (!result.is_string())
      throw error(error_kind::response, fmt::format("{}: eth_call {}: not hex data: {}", client_->url(), fn.name, result.dump()));
    const bytes out = from_hex(result.get_ref<const std::string&>());
    if (out.empty() && !fn.outputs.empty())
      throw error(error_kind::response,
                  fmt::format("{}: eth_call {} at {} returned no data: is there a contract at {}?", client_->url(),
                              fn.signature(), o.block, address_.hex()));
    return decode(fn.outputs, out);
  } catch (...) {
    rethrow_typed(*abi_, on_revert_);
  }
}

receipt contract::send_function(const signer& s, const abi_function& fn, const json& args,
                                const std::optional<uint256>& value, const send_options& o) const {
  try {
    tx_request r{fmt::format("send to {} {}", address_.hex(), fn.signature()), address_.raw(), encode_call(fn, args), abi_};
    json rc = send_and_wait(*client_, r, s, with_value(o.tx, value), o.wait);
    receipt out;
    out.tx_hash = rc.value("transactionHash", "");
    out.block_hash = rc.value("blockHash", "");
    out.block_number = json_u64(rc.value("blockNumber", json()));
    out.gas_used = json_u64(rc.value("gasUsed", json()));
    if (rc.contains("contractAddress") && rc["contractAddress"].is_string())
      out.contract_address = address::from_hex(rc["contractAddress"].get<std::string>());
    out.json = std::move(rc);
    return out;
  } catch (...) {
    rethrow_typed(*abi_, on_revert_);
  }
}

std::uint64_t contract::estimate_function(const signer& s, const abi_function& fn, const json& args,
                                          const std::optional<uint256>& value, const tx_options& o) const {
  try {
    tx_request r{fmt::format("estimate {} {}", address_.hex(), fn.signature()), address_.raw(), encode_call(fn, args), abi_};
    return estimate_gas(*client_, r, r.call_object(s.from, with_value(o, value).value));
  } catch (...) {
    rethrow_typed(*abi_, on_revert_);
  }
}

receipt contract::deploy_code(rpc_client& client, const abi_file& abi, revert_handler on_revert,
                              std::string_view bytecode, const json& ctor_args, const std::optional<uint256>& value,
                              const signer& s, const send_options& o) {
  try {
    tx_request r{"deploy", std::nullopt, from_hex(bytecode), &abi};
    if (const abi_function* ctor = abi.constructor()) {
      const bytes a = encode(ctor->inputs, ctor_args);
      r.data.insert(r.data.end(), a.begin(), a.end());
    } else if (ctor_args.is_array() && !ctor_args.empty()) {
      throw abi_error("deploy: the contract has no constructor, but arguments were given");
    }
    json rc = send_and_wait(client, r, s, with_value(o.tx, value), o.wait);
    receipt out;
    out.tx_hash = rc.value("transactionHash", "");
    out.block_hash = rc.value("blockHash", "");
    out.block_number = json_u64(rc.value("blockNumber", json()));
    out.gas_used = json_u64(rc.value("gasUsed", json()));
    if (!rc.contains("contractAddress") || !rc["contractAddress"].is_string())
      throw error(error_kind::response, fmt::format("{}: deploy {}: the receipt has no contract address",
                                                    client.url(), out.tx_hash));
    out.contract_address = address::from_hex(rc["contractAddress"].get<std::string>());
    out.json = std::move(rc);
    return out;
  } catch (...) {
    rethrow_typed(abi, on_revert);
  }
}

namespace {

// Every event of the ABI (the filter's topic 0 picks this one), so a log of it that does not decode
// comes out as an error, not skipped; an anonymous event has no topic 0 and decodes only when named.
log_decoder decoder_for(const abi_file* abi, const abi_event& ev) { return log_decoder(abi, ev.anonymous ? ev.name : ""); }

json event_filter(const abi_event& ev, const json& filter_args, const address& at) {
  json topics = json::array();
  for (const auto& t : encode_topics(ev, filter_args)) topics.push_back(t ? json(to_hex(*t)) : json());
  return {{"address", to_hex(at.raw())}, {"topics", std::move(topics)}};
}

// A record of this event, or an abi_error saying why the log did not decode as it.
const json& checked(const abi_event& ev, const json& rec) {
  if (rec.value("signature", "") != ev.signature())
    throw abi_error(fmt::format("block {} log {}: does not decode as {}: {}", rec["block_number"].dump(),
                                rec["log_index"].dump(), ev.signature(), rec.value("error", "another event")));
  return rec;
}

}  // namespace

std::vector<json> contract::event_records(const abi_event& ev, const json& filter_args, const log_range& r) const {
  follow_options o;
  o.filter = event_filter(ev, filter_args, address_);
  o.from_block = r.from_block;
  o.to_block = r.to_block;
  std::vector<json> out;
  log_follower f(*client_, decoder_for(abi_, ev), o);
  f.run({[&](const json& rec) {
           out.push_back(checked(ev, rec));
           return true;
         },
         [] { return true; }});
  return out;
}

void contract::follow_event(const abi_event& ev, const json& filter_args,
                            const std::function<bool(const json&)>& on_record, follow_options o) const {
  o.filter = event_filter(ev, filter_args, address_);
  o.follow = true;
  o.to_block = "latest";
  // on_record's false stops the follower before it checkpoints the chunk at hand: a restart from
  // the checkpoint sees that chunk's events again (at least once, never lost). Over ws:// or IPC
  // the follower subscribes to newHeads, on a connection of its own so that the subscription
  // ends with it; over HTTP it polls on the contract's client.
  const log_sink sink{[&](const json& rec) { return on_record(checked(ev, rec)); }, [] { return true; }};
  if (client_->supports_subscriptions()) {
    log_follower(rpc_client(client_->options()), decoder_for(abi_, ev), o).run(sink);
  } else {
    log_follower(*client_, decoder_for(abi_, ev), o).run(sink);
  }
}

const json& contract::record_args(const json& record) {
  auto it = record.find("args");
  if (it == record.end()) throw abi_error("an event record without args");
  return *it;
}

log_meta contract::record_meta(const json& record) {
  log_meta m;
  m.contract = address::from_hex(record.value("address", ""));
  m.block_number = json_u64(record.value("block_number", json()));
  m.log_index = json_u64(record.value("log_index", json()));
  m.block_hash = record.value("block_hash", "");
  m.tx_hash = record.value("tx_hash", "");
  m.removed = record.value("removed", false);
  return m;
}

}  // namespace pipekit::eth
