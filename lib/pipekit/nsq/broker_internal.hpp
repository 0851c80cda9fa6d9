#pragma once
// nsq-broker's state, shared by broker.cpp (TCP, topics, channels) and broker_http.cpp.
// Single-threaded: everything here is touched only from the broker's io_context thread.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <queue>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/unordered/unordered_flat_map.hpp>

#include "pipekit/net/tcp_listener.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/nsq/broker.hpp"
#include "pipekit/nsq/compress.hpp"
#include "pipekit/nsq/disk_queue.hpp"
#include "pipekit/nsq/protocol.hpp"

namespace pipekit::nsq {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

inline constexpr int max_deflate_level = 6;  // nsqd --max-deflate-level

std::int64_t steady_ns() noexcept;
std::int64_t wall_ns() noexcept;

// A reference-counted byte block (non-atomic: one thread). One PUB or one whole MPUB body is copied
// once into a block; each message, and each channel's copy of it, holds a slice of it.
class body_ref {
 public:
  body_ref() = default;
  static body_ref copy_of(std::string_view bytes) {
    auto* b = static_cast<block*>(std::malloc(sizeof(block) + bytes.size()));
    if (!b) throw std::bad_alloc();
    b->refs = 1;
    if (!bytes.empty()) std::memcpy(b->data(), bytes.data(), bytes.size());
    body_ref r;
    r.b_ = b;
    r.data_ = b->data();
    r.size_ = static_cast<std::uint32_t>(bytes.size());
    return r;
  }
  // A slice of this block (shares it).
  body_ref slice(std::string_view inside) const {
    body_ref r(*this);
    r.data_ = inside.data();
    r.size_ = static_cast<std::uint32_t>(inside.size());
    return r;
  }
  body_ref(const body_ref& o) noexcept : b_(o.b_), data_(o.data_), size_(o.size_) {
    if (b_) ++b_->refs;
  }
  body_ref(body_ref&& o) noexcept : b_(o.b_), data_(o.data_), size_(o.size_) { o.b_ = nullptr; }
  body_ref& operator=(body_ref o) noexcept {
    std::swap(b_, o.b_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~body_ref() {
    if (b_ && --b_->refs == 0) std::free(b_);
  }
  std::string_view view() const noexcept { return {data_, size_}; }
  std::size_t size() const noexcept { return size_; }

 private:
  struct block {
    std::uint32_t refs;
    char* data() noexcept { return reinterpret_cast<char*>(this + 1); }
  };
  block* b_ = nullptr;
  const char* data_ = nullptr;
  std::uint32_t size_ = 0;
};

struct message {
  std::uint64_t id = 0;
  std::int64_t timestamp_ns = 0;
  std::uint16_t attempts = 0;
  std::int64_t defer_until_ns = 0;  // steady clock; 0: deliverable now (DPUB while held by the topic)
  body_ref body;
  // --durable channels: where the message was read from the channel's disk queue; the consumed
  // position is not committed past it until it is FINished or stored again (REQ, timeout).
  disk_position disk_at;
  bool from_disk = false;
};

// nsqd's encoding of a message for a backend queue: [ts i64][attempts u16][16-byte id][body].
std::string encode_message(const message& m);
void encode_message_into(const message& m, std::string& out);
bool decode_message(std::string_view bytes, message& m);

// Where a topic's or channel's messages go once its memory queue (--mem-queue-size) is full.
// The disk queue (lib/pipekit/nsq/disk_queue.hpp) implements this; without --data-path, and for
// #ephemeral topics and channels, the overflow is kept in memory. An #ephemeral channel takes no
// more than --mem-queue-size from its topic (--ephemeral-overflow: broker::impl::offer, topic_room);
// only its requeues go beyond that.
class backend_queue {
 public:
  virtual ~backend_queue() = default;
  // Appends one encoded message; false when it could not be stored (the PUB then fails).
  virtual bool put(std::string_view encoded) = 0;
  // Takes the oldest message; false when empty.
  virtual bool get(std::string& encoded) = 0;
  virtual std::int64_t depth() const = 0;
  virtual void empty() = 0;
  // Makes what put() accepted durable enough to answer OK (disk: written); false: those puts failed.
  virtual bool flush() { return true; }
  virtual bool sync() { return true; }
  // --durable: the consumed position moves only at commit_read() (to where reading stands).
  virtual void manual_commit() {}
  virtual disk_position read_position() const { return {}; }
  virtual void commit(disk_position) {}
  void commit_read() { commit(read_position()); }
  virtual void close() {}    // at shutdown: flush, sync, close
  virtual void destroy() {}  // the topic or channel was deleted: remove its data
  virtual bool on_disk() const { return false; }
};

std::unique_ptr<backend_queue> make_memory_backend();

// Memory first, then the backend: nsqd's memoryMsgChan + backend.
class message_queue {
 public:
  message_queue(std::size_t mem_capacity, std::unique_ptr<backend_queue> backend)
      : capacity_(mem_capacity), backend_(std::move(backend)) {}
  backend_queue& backend() noexcept { return *backend_; }
  // Moves the memory queue to the backend (shutdown with a disk backend).
  bool spill() {
    bool ok = true;
    for (auto& m : mem_) ok = backend_->put(encode_message(m)) && ok;
    mem_.clear();
    return ok;
  }
  bool dirty = false;  // the backend has puts not yet flushed
  bool put(message&& m);
  bool pop(message& m);
  // --durable channels: positions of messages read from disk and not yet done with (FIN, or stored
  // again); the consumed position may be committed up to the smallest of them.
  std::set<disk_position>* unfinished = nullptr;
  void release(message& m) {
    if (m.from_disk && unfinished) unfinished->erase(m.disk_at);
    m.from_disk = false;
  }
  std::vector<message_queue*>* dirty_list = nullptr;  // where put() to the backend enlists this queue
  std::int64_t depth() const { return static_cast<std::int64_t>(mem_.size()) + backend_->depth(); }
  std::int64_t backend_depth() const { return backend_->depth(); }
  bool empty() const { return mem_.empty() && backend_->depth() == 0; }
  void clear() {
    mem_.clear();
    backend_->empty();
  }

 private:
  std::size_t capacity_;
  std::deque<message> mem_;
  std::unique_ptr<backend_queue> backend_;
};

class connection;
struct topic;
struct auth_state;  // pipekit/nsq/auth.hpp

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
  std::set<disk_position> unfinished;  // --durable: see message_queue::unfinished
};

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

struct client_info {
  std::uint64_t id = 0;
  std::string remote_address;
  std::string client_id;
  std::string hostname;
  std::string user_agent;
  client_state state = client_state::init;
  std::int64_t ready_count = 0;
  std::int64_t in_flight_count = 0;
  std::uint64_t message_count = 0;
  std::uint64_t finish_count = 0;
  std::uint64_t requeue_count = 0;
  std::int64_t connect_ts = 0;
  std::int64_t sample_rate = 0;
  std::int64_t heartbeat_ms = 0;
  std::int64_t output_buffer_size = 0;
  std::int64_t output_buffer_timeout_ms = 0;
  std::int64_t msg_timeout_ms = 0;
  std::map<std::string, std::uint64_t, std::less<>> pub_counts;  // messages published, by topic
  bool deflate = false;
  bool snappy = false;
  bool authed = false;
  std::string auth_identity;
  std::string auth_identity_url;
  bool tls = false;
  net::tls_state tls_info;  // once tls
};

struct broker::impl {
  explicit impl(broker_options o);

  broker_options opts;
  asio::io_context io{1};
  std::unique_ptr<net::tcp_listener> tcp_listener;  // TCP clients
  net::connection_refuser refused;                  // past --max-connections
  std::uint16_t tcp_port = 0;
  std::uint16_t http_port = 0;
  std::unique_ptr<class http_frontend> http;
  std::shared_ptr<net::tls_context> tls;  // --tls-cert/--tls-key given: tls_v1 is offered
  void load_tls();                    // broker_tls.cpp; at start()
  asio::steady_timer scan_timer{io};
  asio::steady_timer stop_timer{io};
  parse_limits limits;
  identify_limits id_limits;
  std::map<std::string, std::unique_ptr<topic>, std::less<>> topics;
  std::unordered_map<std::uint64_t, std::shared_ptr<connection>> connections;
  std::uint64_t next_message_id = 1;
  std::uint64_t next_client_id = 1;
  std::int64_t start_ns = 0;
  bool stopping = false;
  int nsqd_log_level = 2;  // nsqd's number for the log level (1 debug .. 5 fatal): /config/log_level

  // Topics and channels (created on first use; ephemeral ones deleted with their last user).
  topic& get_topic(std::string_view name);
  channel& get_channel(topic& t, std::string_view name);
  topic* find_topic(std::string_view name);
  channel* find_channel(std::string_view topic_name, std::string_view channel_name);
  void delete_topic(std::string_view name);
  void delete_channel(topic& t, std::string_view name);
  void empty_topic(topic& t);
  void empty_channel(channel& c);
  void pause_topic(topic& t, bool paused);
  void pause_channel(channel& c, bool paused);

  // Publishing: false when a backend refused the message.
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

  // lookupd registration (broker_lookupd.cpp).
  std::vector<std::shared_ptr<class lookup_peer>> lookup_peers;
  void start_lookup_peers();
  void stop_lookup_peers();
  void notify_lookupd(bool registered, std::string_view topic_name, std::string_view channel_name = {});

  // --data-path: disk backends and metadata (topics, channels, paused).
  std::vector<message_queue*> dirty_queues;
  std::int64_t last_sync_ns = 0;
  bool stopping_metadata_frozen = false;
  std::unique_ptr<backend_queue> make_backend(const std::string& queue_name, bool ephemeral);
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
  void remove_consumer(channel& c, connection& conn);
  connection* find_connection(std::uint64_t id);
  std::string broadcast_address() const;
  void shutdown();
};

// One TCP client (protocol V2). Reads commands in batches, answers in one output buffer that is
// flushed when full, at the end of the current turn of the io_context, or when a write completes.
class connection : public std::enable_shared_from_this<connection> {
 public:
  connection(broker::impl& b, tcp::socket socket, std::uint64_t id);
  ~connection();
  void start();
  void close();  // idempotent; requeues what this client had in flight
  void drain();  // shutdown: write what is buffered (and the compressed stream's end), then close
  bool closed() const noexcept { return closed_; }

  // Delivery (called by the broker for a channel this client consumes).
  bool ready() const noexcept {
    return info.state == client_state::subscribed && info.in_flight_count < info.ready_count && !closed_ &&
           !fatal_;
  }
  void send_message(channel& c, message&& m);
  void message_done() noexcept { --info.in_flight_count; }
  // --durable: answers wait here, in command order, until a sync covers the publishes before them.
  void release_held(bool synced);
  bool holding() const noexcept { return held_count_ > 0; }
  void hold_response(std::string_view data);

  client_info info;
  channel* sub = nullptr;

 private:
  void read();
  void on_read(std::size_t n);
  bool handle(const command& cmd);
  void respond(std::string_view data);
  void fail(const client_error& err);
  void request_flush();
  void flush();
  void on_write(const boost::system::error_code& ec);
  // The connection's one timer: heartbeats, the read deadline of a command (read_deadline_ns), the
  // write deadline of output the client does not take (write_timeout_ns).
  void arm_timer();
  void on_timer();
  std::int64_t read_deadline_ns() const noexcept;  // 0: none now
  std::int64_t write_timeout_ns() const noexcept;
  // Answers and messages framed but not yet taken by the client: past max_pending_output the
  // connection stops reading commands (paused_for_output_) until the client has read half of it.
  std::size_t pending_output() const noexcept {
    return out_.size() + stage_.size() + writing_.size() + tls_plain_.size();
  }
  void resume_after_output();
  void pub(const command& cmd);
  void identify(const command& cmd);
  void subscribe(const command& cmd);
  void fin_req_touch(const command& cmd);
  // Compression (deflate or snappy, negotiated in IDENTIFY): frames are staged, then compressed
  // into out_ at flush; what is read is decoded into in_.
  std::string& frames() noexcept { return codec_ ? stage_ : out_; }
  bool decode_into_input(std::string_view data);
  // AUTH (--auth-http-address): the auth server is asked asynchronously; meanwhile this
  // connection reads and runs nothing more, then goes on with what it had buffered.
  void auth(const command& cmd);
  bool check_auth(const command& cmd);  // false: failed (fatal) for PUB/MPUB/DPUB/SUB
  bool auth_expired() const;
  void query_auth(bool refresh);
  void on_auth(bool refresh, std::size_t attempt, std::size_t start, std::string error, auth_state* state);
  void process_input();  // runs what is buffered, then reads on (unless waiting for the auth server)
  std::size_t parse_input();
  // TLS (broker_tls.cpp): IDENTIFY with tls_v1 moves what is buffered (its response) aside to be
  // written in plain text; the handshake follows, then everything else goes through tls_.
  void begin_tls();
  void after_identify_tls(std::size_t parsed);
  void start_tls_handshake();
  bool tls_refuses(std::string_view input);  // --tls-required: a command before TLS fails
  template <class Handler>
  void read_some(asio::mutable_buffer b, Handler&& h);
  template <class Handler>
  void write_all(asio::const_buffer b, Handler&& h);

  broker::impl& b_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  std::string in_;  // in_len_ bytes of commands; the rest is room to read into
  std::size_t in_len_ = 0;
  std::string out_;
  std::string writing_;
  std::string stage_;
  stream_codec codec_;
  std::vector<char> raw_;  // compressed input, read before decoding
  bool switch_input_ = false;    // the rest of in_ is compressed (compression started mid-buffer)
  bool finish_stream_ = false;   // drain: end the compressed stream (deflate's final block)
  std::unique_ptr<net::tls_session> tls_;  // after the handshake began; the socket stays socket_
  std::string tls_plain_;             // the IDENTIFY response (and what was before it), in plain text
  bool tls_pending_ = false;          // IDENTIFY negotiated TLS; the handshake has not finished
  bool magic_ok_ = false;
  bool write_pending_ = false;
  bool flush_posted_ = false;
  bool fatal_ = false;  // an error closes this connection once the output is written
  bool closed_ = false;
  bool paused_for_output_ = false;
  // When the command being read began: the end of the one before (nsqd's read deadline is set
  // before each command), or with heartbeats off its first byte. It must be whole within
  // 2 x heartbeat interval (client_timeout with heartbeats off).
  std::int64_t command_since_ns_ = 0;
  std::int64_t write_since_ns_ = 0;  // the pending write began
  std::int64_t next_heartbeat_ns_ = 0;
  std::int64_t heartbeat_ns_ = 0;
  std::int64_t msg_timeout_ns_ = 0;
  std::size_t flush_at_ = 16 * 1024;
  std::unique_ptr<auth_state> auth_;
  std::string auth_secret_;
  std::int64_t auth_expires_ns_ = 0;
  bool auth_pending_ = false;    // waiting for the auth server: nothing is read or run meanwhile
  std::string held_;             // framed answers held for a sync (--durable)
  std::size_t held_count_ = 0;   // publishes among them
};

template <class Handler>
void connection::read_some(asio::mutable_buffer b, Handler&& h) {
  if (tls_) tls_->async_read_some(b, std::forward<Handler>(h));
  else socket_.async_read_some(b, std::forward<Handler>(h));
}

template <class Handler>
void connection::write_all(asio::const_buffer b, Handler&& h) {
  if (tls_) tls_->async_write(b, std::forward<Handler>(h));
  else asio::async_write(socket_, b, std::forward<Handler>(h));
}

// The HTTP API (broker_http.cpp): binds in start(), serves on the broker's io_context.
class http_frontend {
 public:
  virtual ~http_frontend() = default;
  virtual std::uint16_t port() const = 0;
  virtual void stop() = 0;
};
std::unique_ptr<http_frontend> make_http_frontend(broker::impl& b, const std::string& address);


}  // namespace pipekit::nsq
