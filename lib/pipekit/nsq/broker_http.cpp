// nsq-broker's HTTP API (nsqd's routes). Placeholder until pipekit/net/http_server lands on main.
#include "pipekit/log/log.hpp"
#include "pipekit/nsq/broker_internal.hpp"

namespace pipekit::nsq {

std::unique_ptr<http_frontend> make_http_frontend(broker::impl&, const std::string& address) {
  log::warn("HTTP: not available yet; --http-address {} ignored", address);
  return nullptr;
}

}  // namespace pipekit::nsq
