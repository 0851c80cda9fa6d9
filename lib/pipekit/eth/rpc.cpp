#include "pipekit/eth/rpc.hpp"

#include "pipekit/eth/hex.hpp"

#include <curl/curl.h>

#include <thread>

#include <boost/multiprecision/cpp_int.hpp>
#include <fmt/format.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/json/parse.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::eth {
namespace {

using nlohmann::json;

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

rpc_client::rpc_client(rpc_options opts) : opts_(std::move(opts)) {
  if (!opts_.url.starts_with("http://") && !opts_.url.starts_with("https://")) {
    fatal(exit_code::usage, "--rpc-url {}: only http:// and https:// are supported so far", opts_.url);
  }
  static const bool global_init = [] { return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK; }();
  (void)global_init;
  curl_ = curl_easy_init();
  if (curl_ == nullptr) fatal(exit_code::software, "libcurl: cannot create a handle");
}

rpc_client::~rpc_client() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

std::string rpc_client::post(const std::string& body, bool idempotent) {
  CURL* c = static_cast<CURL*>(curl_);
  std::string response;
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, opts_.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(opts_.timeout.count()));
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
  int attempts = idempotent ? opts_.retries + 1 : 1;
  CURLcode rc = CURLE_OK;
  for (int i = 0; i < attempts; ++i) {
    response.clear();
    rc = curl_easy_perform(c);
    if (rc == CURLE_OK) break;
    if (i + 1 < attempts) {
      log::debug("{}: {}; retrying", opts_.url, curl_easy_strerror(rc));
      std::this_thread::sleep_for(std::chrono::milliseconds(100 << i));
    }
  }
  curl_slist_free_all(headers);
  if (rc != CURLE_OK) fatal(exit_code::unavailable, "{}: {}", opts_.url, curl_easy_strerror(rc));
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  if (status != 200 && response.empty()) fatal(exit_code::unavailable, "{}: HTTP {}", opts_.url, status);
  return response;
}

json rpc_client::call(std::string_view method, json params, bool idempotent) {
  json req = {{"jsonrpc", "2.0"}, {"id", next_id_++}, {"method", method}, {"params", std::move(params)}};
  log::debug("-> {}", req.dump());
  std::string text = post(req.dump(), idempotent);
  log::debug("<- {}", text);
  auto parsed = pipekit::json::parse(text);
  if (!parsed.ok() || !parsed.value.is_object())
    fatal(exit_code::unavailable, "{}: not a JSON-RPC answer to {}: {}", opts_.url, method,
          parsed.ok() ? "not an object" : parsed.error);
  json& answer = parsed.value;
  if (auto e = answer.find("error"); e != answer.end() && !e->is_null()) {
    std::int64_t code = e->value("code", std::int64_t{0});
    std::string message = e->contains("message") && (*e)["message"].is_string() ? (*e)["message"].get<std::string>()
                                                                                  : e->dump();
    throw rpc_error(code, message, e->value("data", json()));
  }
  if (!answer.contains("result")) fatal(exit_code::unavailable, "{}: answer to {} has no result", opts_.url, method);
  return std::move(answer["result"]);
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
