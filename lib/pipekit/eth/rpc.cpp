#include "pipekit/eth/rpc.hpp"

#include <curl/curl.h>

#include <algorithm>
#include <thread>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/rpc_response.hpp"
#include "pipekit/eth/rpc_transport.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

bool is_stream_url(std::string_view url) {
  return url.starts_with("ws://") || url.starts_with("wss://") || url.starts_with("ipc://") ||
         url.find("://") == std::string_view::npos;
}

constexpr std::size_t initial_buffer = 64 * 1024;  // of an HTTP answer; a power of 2

// http(s):// through libcurl: one easy handle, so one kept-alive connection.
class http_transport final : public rpc_transport {
 public:
  explicit http_transport(const rpc_options& opts)
      : url_(opts.url), timeout_ms_(static_cast<long>(opts.timeout.count())), max_response_(opts.max_response) {
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
    curl_easy_setopt(curl_, CURLOPT_WRITEDATA, this);
    // Refused up front when the node announces a larger body; collect() bounds the rest.
    curl_easy_setopt(curl_, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(max_response_));
    curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  }
  ~http_transport() override {
    curl_easy_cleanup(curl_);
    curl_slist_free_all(headers_);
  }

  std::string exchange(const std::string& body) override {
    response_.clear();
    response_.reserve(initial_buffer);
    too_large_ = false;
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(curl_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
    CURLcode rc = curl_easy_perform(curl_);
    if (too_large_ || rc == CURLE_FILESIZE_EXCEEDED) {
      response_ = std::string();  // its memory goes now, not at the next exchange
      throw response_too_large(fmt::format("the answer is larger than {} bytes (--max-response-size)", max_response_));
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) throw transport_error(fmt::format("timed out after {} ms", timeout_ms_));
    if (rc != CURLE_OK) throw transport_error(curl_easy_strerror(rc));
    long status = 0;
    curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
    // Nodes answer JSON-RPC errors with 4xx/5xx and a JSON body: the body is the answer.
    if (status != 200 && response_.empty()) throw transport_error(fmt::format("HTTP {}", status));
    return std::move(response_);
  }

 private:
  static size_t collect(char* data, size_t size, size_t n, void* self) {
    auto* t = static_cast<http_transport*>(self);
    if (size * n > t->max_response_ - t->response_.size()) {
      t->too_large_ = true;
      return 0;  // libcurl ends the transfer (CURLE_WRITE_ERROR)
    }
    std::string& r = t->response_;
    // Grown by doubling from a power of 2 (see exchange()), but never past the bound: a 256 MiB
    // answer must not take 512 (std::string's own growth would double past it).
    if (r.capacity() - r.size() < size * n) r.reserve(std::min(std::max(2 * r.capacity(), r.size() + size * n), t->max_response_));
    r.append(data, size * n);
    return size * n;
  }

  std::string url_;
  long timeout_ms_;
  std::size_t max_response_;
  bool too_large_ = false;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  std::string response_;
};

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
    } catch (const response_too_large& e) {
      transport_->reset();
      fatal(exit_code::unavailable, "{}: {}: {}", opts_.url, what, e.what());
    } catch (const transport_error& e) {
      transport_->reset();
      if (i + 1 >= attempts) fatal(exit_code::unavailable, "{}: {}: {}", opts_.url, what, e.what());
      log::debug("{}: {}: {}; retrying", opts_.url, what, e.what());
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << i));
    }
  }
}

json rpc_client::call(std::string_view method, json params, bool idempotent) {
  const std::int64_t id = next_id_++;
  json req = {{"jsonrpc", "2.0"}, {"id", id}, {"method", method}, {"params", std::move(params)}};
  std::string text = exchange(req.dump(), method, idempotent);
  try {
    return parse_answer(text, id, method);
  } catch (const node_error& e) {
    fatal(exit_code::unavailable, "{}: {}", opts_.url, e.what());
  }
}

std::vector<rpc_reply> rpc_client::batch(std::span<const rpc_request> requests, bool idempotent) {
  if (requests.empty()) return {};
  const std::int64_t first = next_id_;
  std::string body = "[";
  for (const auto& r : requests) {
    if (body.size() > 1) body += ',';
    body += json{{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", r.method}, {"params", r.params}}.dump();
  }
  body += ']';
  std::string text = exchange(body, fmt::format("batch of {}", requests.size()), idempotent);
  try {
    return parse_batch_answer(text, first, requests);
  } catch (const node_error& e) {
    fatal(exit_code::unavailable, "{}: {}", opts_.url, e.what());
  }
}

bool rpc_client::supports_subscriptions() const { return transport_->streams(); }

std::string rpc_client::subscribe(json params) {
  if (!supports_subscriptions())
    fatal(exit_code::usage, "{}: subscriptions need a ws:// or IPC connection", opts_.url);
  return call("eth_subscribe", std::move(params), false).get<std::string>();  // a string: parse_answer checked
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
  try {
    return parse_notification(*text);
  } catch (const node_error& e) {
    fatal(exit_code::unavailable, "{}: {}", opts_.url, e.what());
  }
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
