#pragma once
// nsq-broker's state (nsqd's nsqd.go): the topics, the connections, the listeners and the disk,
// shared by the broker's units (server.cpp, topic.cpp, channel.cpp, metadata.cpp, protocol_v2.cpp,
// http.cpp, lookupd.cpp, tls.cpp). Single-threaded: everything here is touched only from the
// broker's io_context thread.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pipekit/broker/connection_internal.hpp"
#include "pipekit/broker/server.hpp"
#include "pipekit/broker/topic_internal.hpp"
#include "pipekit/net/tcp_listener.hpp"
#include "pipekit/net/tls.hpp"

namespace pipekit::broker {

using net::tls_context;

struct server::impl {
  impl(asio::io_context& io, options o);

  options opts;
  asio::io_context& io;  // run on one thread
  std::unique_ptr<net::tcp_listener> tcp_listener;  // TCP clients
  net::connection_refuser refused;                  // past --max-connections
  std::uint16_t tcp_port = 0;
  std::uint16_t http_port = 0;
  std::unique_ptr<class http_frontend> http;
  std::shared_ptr<tls_context> tls;  // --tls-cert/--tls-key given: tls_v1 is offered
  void load_tls();                    // tls.cpp; at start()
  void start();                       // server.cpp: everything server::server does
  asio::steady_timer scan_timer{io};
  asio::steady_timer stop_timer{io};
  parse_limits limits;
  identify_limits id_limits;
  // --data-path: queues with puts not yet flushed (before topics: it outlives every queue).
  flush_list dirty_queues;
  // Owned here: topics by name (a topic owns its channels), connections by id. A channel's
  // consumers and a connection's subscription refer to each other and own nothing.
  std::map<std::string, std::unique_ptr<topic>, std::less<>> topics;
  std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
  std::uint64_t next_message_id = 1;
  std::uint64_t next_client_id = 1;
  std::int64_t start_ns = 0;
  bool stopping = false;
  int nsqd_log_level = 2;  // nsqd's number for the log level (1 debug .. 5 fatal): /config/log_level

  // Topics and channels (topic.cpp, channel.cpp): created on first use; ephemeral ones deleted
  // with their last user.
  topic& get_topic(std::string_view name);
  channel& get_channel(topic& t, std::string_view name);
  topic* find_topic(std::string_view name);
  channel* find_channel(std::string_view topic_name, std::string_view channel_name);
  // Delete t or c (and what it holds; its consumers are closed). The object is gone on return:
  // callers pass the object, never a name of its own that would dangle inside the call.
  void delete_topic(topic& t);
  void delete_channel(channel& c);
  void empty_topic(topic& t);
  void empty_channel(channel& c);
  void pause_topic(topic& t, bool paused);
  void pause_channel(channel& c, bool paused);

  // Publishing (topic.cpp; a channel's side in channel.cpp): false when a backend refused the message.
  message new_message(body_ref body, std::int64_t defer_ms, std::int64_t timestamp_ns = 0);
  bool put(topic& t, message&& m);       // no delivery yet
  void pump(topic& t);                   // topic queue -> channels, then deliver
  void deliver(channel& c);              // channel queue -> ready consumers
  // Into a channel's queue (or its deferred set): requeues, timeouts, and offer()'s messages.
  bool put_channel(channel& c, message&& m);
  // A message from the topic into one channel: an #ephemeral channel that is full drops it
  // (--ephemeral-overflow drop, counted); hold never offers to a full one (see topic_room).
  bool offer(channel& c, message&& m);
  // --ephemeral-overflow hold: how many messages the topic may pass on now: the least room left
  // in its #ephemeral channels (each holds at most ephemeral_capacity); no limit without one.
  std::int64_t topic_room(const topic& t) const;
  std::int64_t ephemeral_capacity() const { return std::max<std::int64_t>(opts.mem_queue_size, 1); }
  // --msg-ttl: is m older than its topic's TTL at wall-clock now_ns?
  static bool expired(const topic& t, const message& m, std::int64_t now_ns) {
    return t.msg_ttl_ns > 0 && now_ns - m.timestamp_ns > t.msg_ttl_ns;
  }
  // The summaries of expired and dropped messages: at most one per drop_report interval unless forced
  // (a channel or topic deleted, shutdown); of one topic (and only one of its channels when given).
  void report_drops(std::int64_t now_ns, bool force);
  void report_drops(topic& t, channel* only, std::int64_t now_ns, bool force);

  // lookupd registration (lookupd.cpp).
  std::vector<std::shared_ptr<class lookup_peer>> lookup_peers;
  void start_lookup_peers();
  void stop_lookup_peers();
  void notify_lookupd(bool registered, std::string_view topic_name, std::string_view channel_name = {});

  // --data-path (metadata.cpp): disk backends and metadata (topics, channels, paused).
  std::int64_t last_sync_ns = 0;
  bool stopping_metadata_frozen = false;
  std::unique_ptr<backend_queue> make_backend(const std::string& queue_name, bool ephemeral);
  std::size_t mem_capacity(bool ephemeral) const;  // of a topic's or channel's memory queue
  bool flush_dirty();
  bool sync_disk();  // false: some queue failed to sync
  // --durable: answers held until a group sync; one sync is posted per turn that wrote messages.
  std::vector<std::weak_ptr<connection>> held;
  bool durable_sync_posted = false;
  void hold_for_sync(connection& c);
  void durable_sync();
  void save_metadata();
  void load_metadata();
  std::string metadata_path() const;
  void persist_all();

  void accept(tcp::socket socket);
  void scan();
  // A channel's consumers (channel.cpp): channel::consumers lists conn exactly while
  // conn.subscription() is &c; only these change either side. remove_consumer: conn leaves, what
  // it had in flight goes back to c; an #ephemeral channel left without consumers is deleted (c is
  // then gone on return). close_consumers: all leave (c is being deleted) and are closed.
  void add_consumer(channel& c, connection& conn);
  void remove_consumer(channel& c, connection& conn);
  void close_consumers(channel& c);
  connection* find_connection(std::uint64_t id);
  std::string broadcast_address() const;
  void shutdown();
};

// The HTTP API (http.cpp): binds in start(), serves on the broker's io_context.
class http_frontend {
 public:
  virtual ~http_frontend() = default;
  virtual std::uint16_t port() const = 0;
  virtual std::size_t connections() const = 0;
  virtual void stop() = 0;
};
std::unique_ptr<http_frontend> make_http_frontend(server::impl& b, const std::string& address);

}  // namespace pipekit::broker
