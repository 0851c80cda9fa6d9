#include "pipekit/eth/event_log.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace pipekit::eth;
using nlohmann::json;

namespace {

constexpr const char* transfer_topic0 = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef";
constexpr const char* alice = "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266";
constexpr const char* bob = "0x00000000000000000000000070997970c51812dc3a010c7d01b50e0d17dc79c8";

abi_file erc20() {
  return abi_file::parse(json::parse(R"([
    {"type":"event","name":"Transfer","anonymous":false,"inputs":[
      {"name":"from","type":"address","indexed":true},{"name":"to","type":"address","indexed":true},
      {"name":"value","type":"uint256","indexed":false}]},
    {"type":"event","name":"Approval","anonymous":false,"inputs":[
      {"name":"owner","type":"address","indexed":true},{"name":"spender","type":"address","indexed":true},
      {"name":"value","type":"uint256","indexed":false}]},
    {"type":"event","name":"Note","anonymous":true,"inputs":[{"name":"who","type":"address","indexed":true}]}
  ])"));
}

json transfer_log() {
  return {{"address", "0x5fbdb2315678afecb367f032d93f642f64180aa3"},
          {"topics", {transfer_topic0, alice, bob}},
          {"data", "0x00000000000000000000000000000000000000000000000000000000000003e8"},
          {"blockNumber", "0x1a"},
          {"blockHash", "0x" + std::string(64, 'b')},
          {"transactionHash", "0x" + std::string(64, 'c')},
          {"logIndex", "0x2"},
          {"removed", false}};
}

}  // namespace

TEST_CASE("log_decoder: a log of an ABI event becomes a record", "[eth]") {
  const abi_file abi = erc20();
  log_decoder d(&abi, "");
  json rec = d.record(transfer_log());
  CHECK(rec["event"] == "Transfer");
  CHECK(rec["signature"] == "Transfer(address,address,uint256)");
  CHECK(rec["args"] == json{{"from", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
                            {"to", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
                            {"value", 1000}});
  CHECK(rec["address"] == "0x5FbDB2315678afecb367f032d93F642f64180aa3");
  CHECK(rec["block_number"] == 26);
  CHECK(rec["log_index"] == 2);
  CHECK(rec["removed"] == false);
  CHECK_FALSE(rec.contains("topics"));
}

TEST_CASE("log_decoder: an unknown log keeps its topics and data", "[eth]") {
  const abi_file abi = erc20();
  json log = transfer_log();
  log["topics"][0] = "0x" + std::string(64, '1');
  json rec = log_decoder(&abi, "").record(log);
  CHECK(rec["event"].is_null());
  CHECK(rec["topics"] == log["topics"]);
  CHECK(rec["data"] == log["data"]);
  CHECK_FALSE(rec.contains("args"));
}

TEST_CASE("log_decoder: anonymous events only when named", "[eth]") {
  const abi_file abi = erc20();
  json log = transfer_log();
  log["topics"] = json::array({alice});
  log["data"] = "0x";
  CHECK(log_decoder(&abi, "").record(log)["event"].is_null());
  json rec = log_decoder(&abi, "Note").record(log);
  CHECK(rec["event"] == "Note");
  CHECK(rec["args"]["who"] == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266");
}

TEST_CASE("log_decoder: --event by name, by signature, unknown", "[eth]") {
  const abi_file abi = erc20();
  CHECK(log_decoder(&abi, "Transfer").named_events().size() == 1);
  log_decoder by_sig(nullptr, "event Transfer(address indexed, address indexed, uint256)");
  json rec = by_sig.record(transfer_log());
  CHECK(rec["args"] == json{{"0", "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"},
                            {"1", "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"},
                            {"2", 1000}});
  CHECK_THROWS_AS(log_decoder(&abi, "Nope"), abi_error);
  CHECK_THROWS_AS(log_decoder(nullptr, "Transfer"), abi_error);
}

TEST_CASE("args_by_name: names, else positions", "[eth]") {
  abi_event ev = parse_event("event E(uint256 a, uint256, uint256 a)");
  CHECK(args_by_name(ev, json::array({1, 2, 3})) == json{{"a", 1}, {"1", 2}, {"2", 3}});
}

TEST_CASE("topic_filter_value and log_filter", "[eth]") {
  CHECK(topic_filter_value("").is_null());
  CHECK(topic_filter_value("null").is_null());
  CHECK(topic_filter_value("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266") == alice);
  CHECK(topic_filter_value(std::string(alice) + "," + bob) == json::array({alice, bob}));
  CHECK_THROWS_AS(topic_filter_value("zz"), abi_error);
  CHECK_THROWS_AS(topic_filter_value("0x" + std::string(66, '0')), abi_error);

  const abi_file abi = erc20();
  json f = log_filter({"0x5FbDB2315678afecb367f032d93F642f64180aa3"}, log_decoder(&abi, "Transfer"), {"null", bob, ""});
  CHECK(f == json{{"address", "0x5FbDB2315678afecb367f032d93F642f64180aa3"},
                  {"topics", {transfer_topic0, nullptr, bob}}});
  json any = log_filter({}, log_decoder(&abi, ""), {alice});
  CHECK(any == json{{"topics", {alice}}});
  CHECK(log_filter({}, log_decoder(&abi, ""), {}) == json::object());
  CHECK_THROWS_AS(log_filter({"0x12"}, log_decoder(&abi, ""), {}), abi_error);
}
