#pragma once
// A channel (nsqd's channel.go): its queue, the messages in flight and deferred, its consumers.
// Single-threaded: touched only from the broker's io_context thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <vector>

#include <boost/unordered/unordered_flat_map.hpp>

#include "pipekit/broker/queue_internal.hpp"

namespace pipekit::broker {

class connection;
struct topic;

struct in_flight_entry {
  message msg;
  std::uint64_t client_id = 0;
  std::int64_t deadline_ns = 0;
  std::int64_t delivered_ns = 0;
};

struct timed_id {
  std::int64_t at_ns;
  std::uint64_t id;
  bool operator>(const timed_id& o) const noexcept { return at_ns > o.at_ns; }
};

struct deferred_entry {
  std::int64_t at_ns;
  std::uint64_t seq;
  bool operator>(const deferred_entry& o) const noexcept { return at_ns > o.at_ns || (at_ns == o.at_ns && seq > o.seq); }
};

// Dropped messages are logged as a summary (per topic or channel, at most every few seconds),
// never one line per message: what was counted up to the last report, and when it was.
struct drop_report {
  std::uint64_t reported = 0;
  std::int64_t at_ns = 0;
};

struct channel {
  channel(topic& t, std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend);
  topic& owner;
  std::string name;
  bool ephemeral = false;
  bool paused = false;
  message_queue queue;
  boost::unordered_flat_map<std::uint64_t, in_flight_entry> in_flight;
  std::priority_queue<timed_id, std::vector<timed_id>, std::greater<>> in_flight_pq;
  // Deferred messages (REQ with a delay, DPUB): ordered by time, held in a map by sequence.
  std::priority_queue<deferred_entry, std::vector<deferred_entry>, std::greater<>> deferred_pq;
  boost::unordered_flat_map<std::uint64_t, message> deferred;
  std::uint64_t deferred_seq = 0;
  // The connections subscribed (owned by server::impl::connections; see server::impl::add_consumer).
  std::vector<connection*> consumers;
  std::size_t next_consumer = 0;
  std::uint64_t message_count = 0;
  std::uint64_t requeue_count = 0;
  std::uint64_t timeout_count = 0;
  // Beyond nsqd: in-flight messages taken back from a client that disconnected (nsqd leaves them
  // to the timeout). A client right against nsqd leaves none: it REQs what it holds before CLS.
  std::uint64_t disconnect_requeue_count = 0;
  std::uint64_t expired_count = 0;  // dropped unsent: older than the topic's TTL (--msg-ttl)
  std::uint64_t dropped_count = 0;  // #ephemeral, --ephemeral-overflow drop: the channel was full
  drop_report expired_report;
  drop_report dropped_report;
};

}  // namespace pipekit::broker
