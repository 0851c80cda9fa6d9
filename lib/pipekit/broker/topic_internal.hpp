#pragma once
// A topic (nsqd's topic.go): its queue, held while it has no channel or is paused, and its
// channels. Single-threaded: touched only from the broker's io_context thread.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "pipekit/broker/channel_internal.hpp"

namespace pipekit::broker {

struct topic {
  topic(std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend);
  std::string name;
  bool ephemeral = false;
  bool paused = false;
  message_queue queue;  // held while the topic has no channel or is paused
  std::map<std::string, std::unique_ptr<channel>, std::less<>> channels;
  std::uint64_t message_count = 0;
  std::uint64_t message_bytes = 0;
  std::int64_t msg_ttl_ns = 0;      // 0: messages never expire
  std::uint64_t expired_count = 0;  // dropped from this queue by the TTL, before reaching a channel
  drop_report expired_report;
  // pump() is running: a pump asked for meanwhile (a channel that drained) runs again in it.
  bool pumping = false;
  bool pump_again = false;
};

}  // namespace pipekit::broker
