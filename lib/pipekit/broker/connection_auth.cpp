// AUTH (nsqd's --auth-http-address): a connection's secret sent to the auth servers in turn,
// the grants it gets back checked before PUB, MPUB, DPUB and SUB, refreshed when they expire.
#include <random>

#include <nlohmann/json.hpp>

#include "pipekit/broker/auth.hpp"
#include "pipekit/broker/server_internal.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_client.hpp"

namespace pipekit::broker {

void connection::auth(const command& cmd) {
  if (auth_) return fail(client_error{"E_INVALID", "AUTH already set", true});
  if (b_.opts.auth_http_addresses.empty()) return fail(client_error{"E_AUTH_DISABLED", "AUTH disabled", true});
  auth_secret_.assign(cmd.body);
  query_auth(false);
}

bool connection::auth_expired() const { return auth_ && steady_ns() >= auth_expires_ns_; }

bool connection::check_auth(const command& cmd) {
  if (b_.opts.auth_http_addresses.empty()) return true;
  const char* name = cmd.type == command_type::pub    ? "PUB"
                     : cmd.type == command_type::mpub ? "MPUB"
                     : cmd.type == command_type::dpub ? "DPUB"
                                                      : "SUB";
  if (!auth_) {
    fail(client_error{"E_AUTH_FIRST", fmt::format("AUTH required before {}", name), true});
    return false;
  }
  const std::string_view channel_name = cmd.type == command_type::sub ? cmd.channel : std::string_view();
  if (!auth_->allows(cmd.topic, channel_name)) {
    log::warn("TCP: client({}) identity \"{}\": no permission to {} \"{}\" \"{}\"", info.remote_address,
              auth_->identity, name, cmd.topic, channel_name);
    fail(client_error{"E_UNAUTHORIZED", fmt::format("AUTH failed for {} on \"{}\" \"{}\"", name, cmd.topic, channel_name),
                      true});
    return false;
  }
  return true;
}

// Asks the auth servers in turn, from a random one, until one gives a valid answer.
void connection::query_auth(bool refresh) {
  auth_pending_ = true;
  const std::size_t n = b_.opts.auth_http_addresses.size();
  on_auth(refresh, 0, static_cast<std::size_t>(std::rand()) % n, {}, nullptr);
}

void connection::on_auth(bool refresh, std::size_t attempt, std::size_t start, std::string error, auth_state* state) {
  if (closed_) return;
  const auto& servers = b_.opts.auth_http_addresses;
  if (!state && attempt < servers.size()) {
    const std::string& server = servers[(start + attempt) % servers.size()];
    std::string ip = info.remote_address.substr(0, info.remote_address.rfind(':'));
    if (ip.size() >= 2 && ip.front() == '[') ip = ip.substr(1, ip.size() - 2);
    auth_request req = make_auth_request(server, ip, info.tls, info.tls_info.peer_common_name, auth_secret_);
    net::http_get_options ho;
    ho.accept = "application/vnd.nsq; version=1.0";
    net::async_http_get(b_.io, req.address, req.target, ho,
                        [self = shared_from_this(), refresh, attempt, start, server, error](net::http_get_result r) mutable {
                          std::string why;
                          auto st = std::make_unique<auth_state>();
                          if (r.status == 0) why = r.error;
                          else if (r.status != 200) why = fmt::format("got response {}", r.status);
                          else if (!parse_auth_answer(r.body, *st, why)) st.reset();
                          if (!why.empty()) {
                            why = fmt::format("{}failed to auth against {} - {}", error.empty() ? "" : error + "; ", server, why);
                            return self->on_auth(refresh, attempt + 1, start, std::move(why), nullptr);
                          }
                          self->on_auth(refresh, attempt, start, {}, st.get());
                        });
    return;
  }
  auth_pending_ = false;
  command_since_ns_ = steady_ns();  // the wait for the auth server is not the client's
  if (!state) {
    // The reason stays in the log: the client learns only that AUTH failed.
    log::warn("TCP: client({}) AUTH failed: {}", info.remote_address, error);
    fail(client_error{"E_AUTH_FAILED", "AUTH failed", true});
    return;
  }
  auth_ = std::make_unique<auth_state>(std::move(*state));
  auth_expires_ns_ = steady_ns() + auth_->ttl_s * 1'000'000'000;
  info.authed = true;
  info.auth_identity = auth_->identity;
  info.auth_identity_url = auth_->identity_url;
  if (!refresh) {
    if (auth_->grants.empty()) {
      log::warn("TCP: client({}) identity \"{}\": AUTH no authorizations found", info.remote_address, auth_->identity);
      fail(client_error{"E_UNAUTHORIZED", "AUTH no authorizations found", true});
      return;
    }
    log::info("TCP: client({}) AUTH as \"{}\" ({} authorizations, ttl {} s)", info.remote_address, auth_->identity,
              auth_->grants.size(), auth_->ttl_s);
    respond(nlohmann::json{{"identity", auth_->identity},
                           {"identity_url", auth_->identity_url},
                           {"permission_count", auth_->grants.size()}}
                .dump());
  }
  process_input();
}

}  // namespace pipekit::broker
