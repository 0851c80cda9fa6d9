// What rpc_client makes of a node's answers, without sockets: ids, result shapes, batches,
// notifications, and the IPC stream splitter.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "pipekit/eth/rpc_response.hpp"

namespace eth = pipekit::eth;
using nlohmann::json;

namespace {
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const eth::node_error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("parse_answer: the id must be the request's; a result must have its method's shape", "[rpc]") {
  CHECK(eth::parse_answer(R"({"jsonrpc":"2.0","id":7,"result":"0x1"})", 7, "eth_chainId") == "0x1");
  CHECK(error_of([] { eth::parse_answer(R"({"jsonrpc":"2.0","id":8,"result":"0x1"})", 7, "eth_chainId"); })
            .find("the id is 8, not 7") != std::string::npos);
  CHECK(!error_of([] { eth::parse_answer(R"({"jsonrpc":"2.0","id":null,"result":"0x1"})", 7, "eth_chainId"); }).empty());
  CHECK(!error_of([] { eth::parse_answer(R"({"jsonrpc":"2.0","result":"0x1"})", 7, "eth_chainId"); }).empty());
  CHECK(!error_of([] { eth::parse_answer(R"({"jsonrpc":"2.0","id":"7","result":"0x1"})", 7, "eth_chainId"); }).empty());
  // An error may carry a null id (the node could not read ours).
  CHECK_THROWS_AS(eth::parse_answer(R"({"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"x"}})", 7, "eth_call"),
                  eth::rpc_error);
  try {
    eth::parse_answer(R"({"id":1,"error":{"code":3,"message":"execution reverted","data":"0x08c3"}})", 1, "eth_call");
  } catch (const eth::rpc_error& e) {
    CHECK(e.code == 3);
    CHECK(e.data == "0x08c3");
  }

  const std::string hundred_digits = "\"0x" + std::string(100, '1') + "\"";
  for (auto [method, result] : std::vector<std::pair<std::string, std::string>>{
           {"eth_call", "null"}, {"eth_call", "{}"}, {"eth_call", "\"0x123\""}, {"eth_call", "\"12\""},
           {"eth_chainId", "null"}, {"eth_blockNumber", hundred_digits}, {"eth_getBalance", "\"0x\""},
           {"eth_getBalance", "1"}, {"eth_getTransactionReceipt", "\"0x12\""}, {"eth_getBlockByNumber", "[]"},
           {"eth_sendRawTransaction", "\"0x12\""}, {"eth_getLogs", "{}"}, {"eth_subscribe", "1"}}) {
    INFO(method << " " << result);
    std::string e = error_of([&] { eth::parse_answer(R"({"id":1,"result":)" + result + "}", 1, method); });
    CHECK(e.find("answer to " + method) != std::string::npos);
  }
  CHECK(eth::parse_answer(R"({"id":1,"result":null})", 1, "eth_getTransactionReceipt").is_null());
  CHECK(eth::parse_answer(R"({"id":1,"result":"0x"})", 1, "eth_call") == "0x");
  CHECK(eth::parse_answer(R"({"id":1,"result":{"x":[1]}})", 1, "eth_someOtherMethod") == json{{"x", {1}}});
  CHECK(eth::parse_answer("{\"id\":1,\"result\":\"0x" + std::string(64, 'f') + "\"}", 1, "eth_getBalance").is_string());
}

TEST_CASE("parse_answer: what came back is shown short and escaped", "[rpc]") {
  std::string e = error_of([] { eth::parse_answer("{\"id\":1,\"result\":\"\\u001b[31m" + std::string(5000, 'a') + "\"}", 1, "eth_call"); });
  CHECK(e.find('\x1b') == std::string::npos);
  CHECK(e.find("\\u001b") != std::string::npos);
  CHECK(e.size() < 400);
  CHECK(e.find("bytes)") != std::string::npos);
}

TEST_CASE("parse_batch_answer: in request order; wrong shapes and missing answers are errors of their own", "[rpc]") {
  std::vector<eth::rpc_request> reqs = {{"eth_call", json::array()}, {"eth_chainId", json::array()}, {"eth_call", json::array()}};
  auto r = eth::parse_batch_answer(R"([{"id":12,"result":"0x01"},{"id":11,"result":null},{"id":10,"result":"0x"},{"id":10,"result":"0x02"},{"id":-5,"result":"0x"}])", 10, reqs);
  REQUIRE(r.size() == 3);
  CHECK(r[0].ok());
  CHECK(r[0].result == "0x");
  CHECK(!r[1].ok());
  CHECK(std::string(r[1].error->what()).find("eth_chainId") != std::string::npos);
  CHECK(r[2].result == "0x01");
  auto missing = eth::parse_batch_answer("[]", 10, reqs);
  CHECK(!missing[0].ok());
  CHECK_THROWS_AS(eth::parse_batch_answer(R"({"error":{"code":-32600,"message":"no batches"}})", 10, reqs), eth::rpc_error);
  CHECK(!error_of([&] { eth::parse_batch_answer(R"({"id":1})", 10, reqs); }).empty());
  CHECK(!error_of([&] { eth::parse_batch_answer("[", 10, reqs); }).empty());
}

TEST_CASE("notifications and the IPC splitter", "[rpc]") {
  const std::string n = R"({"jsonrpc":"2.0","method":"eth_subscription","params":{"subscription":"0x1","result":{"number":"0x5"}}})";
  CHECK(eth::is_notification(n));
  CHECK(!eth::is_notification(R"({"id":1,"result":"eth_subscription"})"));
  CHECK(eth::parse_notification(n) == json{{"number", "0x5"}});
  CHECK(!error_of([] { eth::parse_notification(R"({"method":"eth_subscription","params":1})"); }).empty());

  eth::json_stream_splitter s(64);
  s.append(R"( {"a":"}]"} [1,)");
  CHECK(s.next() == R"({"a":"}]"})");
  CHECK(!s.next());
  s.append("2]\n");
  CHECK(s.next() == "[1,2]");
  s.append("[" + std::string(100, '1'));
  CHECK_THROWS_AS(s.next(), eth::response_too_large);
  eth::json_stream_splitter t(64);
  t.append("x");
  CHECK_THROWS_AS(t.next(), eth::transport_error);
}
