#include "pipekit/eth/rpc.hpp"

#include <algorithm>
#include <thread>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/format.h>

#include "pipekit/eth/error.hpp"
#include "pipekit/eth/hex.hpp"
#include "pipekit/eth/rpc_response.hpp"
#include "pipekit/eth/rpc_transport.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_session.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

bool is_stream_url(std::string_view url) {
  return url.starts_with("ws://") || url.starts_with("wss://") || url.starts_with("ipc://") ||
         url.find("://") == std::string_view::npos;
}

// http(s):// through net::http_session (Beast): one kept-alive connection.
class http_transport final : public rpc_transport {
 public:
  explicit http_transport(const rpc_options& opts) : max_response_(opts.max_response), session_(open(opts)) {}

  std::string exchange(const std::string& body) override {
    net::http_answer r;
    try {
      r = session_.post({}, "application/json", body);
    } catch (const net::http_body_too_large&) {
      throw response_too_large(fmt::format("the answer is larger than {} bytes", max_response_));
    } catch (const net::http_error& e) {
      throw transport_error(e.what());
    }
    // Nodes answer JSON-RPC errors with 4xx/5xx and a JSON body: the body is the answer.
    if (r.status != 200 && r.body.empty()) throw transport_error(fmt::format("HTTP {}", r.status));
    return std::move(r.body);
  }

  void reset() override { session_.close(); }

 private:
  static net::http_session open(const rpc_options& opts) {
    try {
      return net::http_session(opts.url, {.timeout = opts.timeout, .max_body = opts.max_response});
    } catch (const std::invalid_argument& e) {
      throw error(error_kind::invalid_url, fmt::format("{}: {}", opts.url, e.what()));
    }
  }

  std::size_t max_response_;
  net::http_session session_;
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
    throw error(error_kind::invalid_url, fmt::format("{}: use http(s)://, ws(s)://, or an IPC socket path", opts_.url));
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
      throw error(error_kind::response_too_large, fmt::format("{}: {}: {}", opts_.url, what, e.what()));
    } catch (const tls_refused& e) {
      transport_->reset();
      throw error(error_kind::transport, fmt::format("{}: {}: {}", opts_.url, what, e.what()));
    } catch (const transport_error& e) {
      transport_->reset();
      if (i + 1 >= attempts) throw error(error_kind::transport, fmt::format("{}: {}: {}", opts_.url, what, e.what()));
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
    throw error(error_kind::response, fmt::format("{}: {}", opts_.url, e.what()));
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
    throw error(error_kind::response, fmt::format("{}: {}", opts_.url, e.what()));
  }
}

bool rpc_client::supports_subscriptions() const { return transport_->streams(); }

std::string rpc_client::subscribe(json params) {
  if (!supports_subscriptions())
    throw error(error_kind::invalid_argument, fmt::format("{}: subscriptions need a ws:// or IPC connection", opts_.url));
  return call("eth_subscribe", std::move(params), false).get<std::string>();  // a string: parse_answer checked
}

std::optional<json> rpc_client::next_notification(std::chrono::milliseconds wait) {
  std::optional<std::string> text;
  try {
    text = transport_->next_notification(wait);
  } catch (const response_too_large& e) {
    transport_->reset();
    throw error(error_kind::response_too_large, fmt::format("{}: subscription: {}", opts_.url, e.what()));
  } catch (const transport_error& e) {
    transport_->reset();
    throw error(error_kind::transport, fmt::format("{}: subscription: {}", opts_.url, e.what()));
  }
  if (!text) return std::nullopt;
  log::debug("<- {}", *text);
  try {
    return parse_notification(*text);
  } catch (const node_error& e) {
    throw error(error_kind::response, fmt::format("{}: {}", opts_.url, e.what()));
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
