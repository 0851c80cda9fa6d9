#include "pipekit/eth/rpc.hpp"

#include <curl/curl.h>

#include <thread>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/rpc_transport.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

bool is_stream_url(std::string_view url) {
  return url.starts_with("ws://") || url.starts_with("wss://") || url.starts_with("ipc://") ||
         url.find("://") == std::string_view::npos;
}

// http(s):// through libcurl: one easy handle, so one kept-alive connection.
class http_transport final : public rpc_transport {
 public:
  explicit http_transport(const rpc_options& opts) : url_(opts.url), timeout_ms_(static_cast<long>(opts.timeout.count())) {
    static const bool global_init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
    if (!global_init) fatal(exit_code::software, "libcurl: global initialisation failed");
    curl_ = curl_easy_init();
    if (curl_ == nullptr) fatal(exit_code::software, "libcurl: cannot create a handle");
    headers_ = curl_slist_append(nullptr, "Content-Type: application/json");
    curl_easy_setopt(curl_, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
    curl_easy_setopt(curl_, CURLOPT_TIMEOUT_MS, timeout_ms_);
    curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, &response_);
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  }
  ~http_transport() override {
    curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
  }

  std::string exchange(const std::string& body) override {
    response_.clear();
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    CURLcode rc = curl_easy_perform(curl_);
    if (rc == CURLE_OPERATION_TIMEDOUT) throw transport_error(fmt::format("timed out after {} ms", timeout_ms_));
    if (rc != CURLE_OK) throw transport_error(curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    // Nodes answer JSON-RPC errors with 4xx/5xx and a JSON body: the body is the answer.
    if (status != 200 && response_.empty()) throw transport_error(fmt::format("HTTP {}", status));
    return std::move(response_);
  }

 private:
  static size_t collect(char* data, size_t size, size_t n, void* out) {
    static_cast<std::string*>(out)->append(data, size * n);
    return size * n;
  }

  std::string url_;
  long timeout_ms_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::string response_;
};

rpc_error error_of(const json& e) {
  std::int64_t code = e.is_object() && e.contains("code") && e["code"].is_number_integer() ? e["code"].get<std::int64_t>() : 0;
  std::string message = e.is_object() && e.contains("message") && e["message"].is_string()
                            ? e["message"].get<std::string>()
                            : e.dump();
  return rpc_error(code, std::move(message), e.is_object() ? e.value("data", json()) : json());
}

}  // namespace

std::unique_ptr<rpc_transport> make_http_transport(const rpc_options& opts) {
  return std::make_unique<http_transport>(opts);
}

rpc_client::rpc_client(rpc_options opts) : opts_(std::move(opts)) {
  if (opts_.url.starts_with("http://") || opts_.url.starts_with("https://")) {
    transport_ = make_http_transport(opts_);
  } else if (is_stream_url(opts_.url)) {
    transport_ = make_stream_transport(opts_);
  } else {
    fatal(exit_code::usage, "--rpc-url {}: use http(s)://, ws(s)://, or an IPC socket path", opts_.url);
  }
}

rpc_client::~rpc_client() = default;
rpc_client::rpc_client(rpc_client&&) noexcept = default;
rpc_client& rpc_client::operator=(rpc_client&&) noexcept = default;

std::string rpc_client::exchange(const std::string& body, std::string_view what, bool idempotent) {
  log::debug("-> {}", body);
  const int attempts = idempotent ? opts_.retries + 1 : 1;
  for (int i = 0;; ++i) {
    try {
      std::string answer = transport_->exchange(body);
      log::debug("<- {}", answer);
      return answer;
    } catch (const transport_error& e) {
      transport_->reset();
      if (i + 1 >= attempts) fatal(exit_code::unavailable, "{}: {}: {}", opts_.url, what, e.what());
      log::debug("{}: {}: {}; retrying", opts_.url, what, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << i));
    }
  }
}

json rpc_client::call(std::string_view method, json params, bool idempotent) {
  json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", std::move(params)}};
  std::string text = exchange(req.dump(), method, idempotent);
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok() || !parsed.value.is_object())
    fatal(exit_code::unavailable, "{}: not a JSON-RPC answer to {}: {}", opts_.url, method,
          parsed.ok() ? "not an object" : parsed.error);
  json& answer = parsed.value;
  if (auto e = answer.find("error"); e != answer.end() && !e->is_null()) throw error_of(*e);
  if (!answer.contains("result")) fatal(exit_code::unavailable, "{}: answer to {} has no result", opts_.url, method);
  return std::move(answer["result"]);
}

std::vector<rpc_reply> rpc_client::batch(std::span<const rpc_request> requests, bool idempotent) {
  std::vector<rpc_reply> replies(requests.size());
  if (requests.empty()) return replies;
  const std::int64_t first = next_id_;
  std::string body = "[";
  for (const auto& r : requests) {
    if (body.size() > 1) body += ',';
    body += json{{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", r.method}, {"params", r.params}}.dump();
  }
  body += ']';
  std::string what = fmt::format("batch of {}", requests.size());
  std::string text = exchange(body, what, idempotent);
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok()) fatal(exit_code::unavailable, "{}: not a JSON-RPC answer to a {}: {}", opts_.url, what, parsed.error);
  json& answers = parsed.value;
  // A node that refuses the whole batch answers with one error object.
  if (answers.is_object() && answers.contains("error")) throw error_of(answers["error"]);
  if (!answers.is_array()) fatal(exit_code::unavailable, "{}: answer to a {} is not an array", opts_.url, what);
  std::vector<bool> seen(requests.size(), false);
  for (auto& a : answers) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer()) continue;
    std::int64_t index = a["id"].get<std::int64_t>() - first;
    if (index < 0 || index >= static_cast<std::int64_t>(requests.size()) || seen[index]) continue;
    seen[index] = true;
    auto& r = replies[index];
    if (auto e = a.find("error"); e != a.end() && !e->is_null()) r.error = error_of(*e);
    else if (auto res = a.find("result"); res != a.end()) r.result = std::move(*res);
    else r.error = rpc_error(-32603, "answer has neither result nor error", json());
  }
  for (std::size_t i = 0; i < requests.size(); ++i)
    if (!seen[i]) replies[i].error = rpc_error(-32603, fmt::format("the node sent no answer to {}", requests[i].method), json());
  return replies;
}

bool rpc_client::supports_subscriptions() const { return transport_->streams(); }

std::string rpc_client::subscribe(json params) {
  if (!supports_subscriptions())
    fatal(exit_code::usage, "{}: subscriptions need a ws:// or IPC connection", opts_.url);
  json id = call("eth_subscribe", std::move(params), false);
  if (!id.is_string()) fatal(exit_code::unavailable, "{}: eth_subscribe returned {}", opts_.url, id.dump());
  return id.get<std::string>();
}

std::optional<json> rpc_client::next_notification(std::chrono::milliseconds wait) {
  std::optional<std::string> text;
  try {
    text = transport_->next_notification(wait);
  } catch (const transport_error& e) {
    transport_->reset();
    fatal(exit_code::unavailable, "{}: subscription: {}", opts_.url, e.what());
  }
  if (!text) return std::nullopt;
  log::debug("<- {}", *text);
  auto parsed = pipekit::json::parse(*text);
  if (!parsed.ok() || !parsed.value.is_object())
    fatal(exit_code::unavailable, "{}: malformed notification: {}", opts_.url, parsed.ok() ? "not an object" : parsed.error);
  const json& p = parsed.value.value("params", json());
  if (!p.is_object() || !p.contains("result"))
    fatal(exit_code::unavailable, "{}: notification without params.result", opts_.url);
  return p["result"];
}

json quantity_to_json(const json& q) {
  if (!q.is_string()) return q;
  const std::string& s = q.get_ref<const std::string&>();
  // Not a quantity (or a node's garbage): passed through as it came, never a crash.
  if (!s.starts_with("0x") || s.size() < 3 || s.size() > 66 ||
      find_non_hex(std::string_view(s).substr(2)) != std::string_view::npos)
    return q;
  boost::multiprecision::uint256_t v(s);
  if (v < (boost::multiprecision::uint256_t(1) << 53)) return static_cast<std::uint64_t>(v);
  return v.str();
}

}  // namespace pipekit::eth
