// nsq-broker: topics, channels and the TCP protocol V2 on one io_context.
#include "pipekit/nsq/broker.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/cli/app.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_client.hpp"
#include "pipekit/nsq/auth.hpp"
#include "pipekit/nsq/broker_internal.hpp"
#include "pipekit/nsq/disk_queue.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::nsq {

std::int64_t steady_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
std::int64_t wall_ns() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {
constexpr std::int64_t ns_per_ms = 1000000;
constexpr std::size_t read_chunk = 64 * 1024;
// Decompressed input handed to the command parser per turn of the event loop (a deflate bomb
// of 61 KB is 60 MB of commands: decoded and run a part at a time, other clients between).
constexpr std::size_t max_decoded_per_turn = 256 * 1024;
// Output a client has not taken yet beyond which its commands are not read (nsqd's writes block
// its reads; a client that pipelines commands and never reads must not grow the broker's memory).
constexpr std::size_t max_pending_output = 1024 * 1024;
constexpr std::int64_t drop_report_interval_ns = 5'000'000'000;  // summaries of dropped messages

// The queue behind the memory queue until the disk queue exists: encoded messages in memory.
class memory_backend final : public backend_queue {
 public:
  bool put(std::string_view encoded) override {
    q_.emplace_back(encoded);
    return true;
  }
  bool get(std::string& encoded) override {
    if (q_.empty()) return false;
    encoded = std::move(q_.front());
    q_.pop_front();
    return true;
  }
  std::int64_t depth() const override { return static_cast<std::int64_t>(q_.size()); }
  void empty() override { q_.clear(); }

 private:
  std::deque<std::string> q_;
};

// A topic's or channel's overflow on disk (--data-path): pipekit/nsq/disk_queue.
class disk_backend final : public backend_queue {
 public:
  disk_backend(std::unique_ptr<disk_queue> q, std::string name) : q_(std::move(q)), name_(std::move(name)) {}
  bool put(std::string_view encoded) override { return check(q_->put({encoded.data(), encoded.size()}), "put"); }
  bool get(std::string& encoded) override {
    if (q_->pending() > 0 && !flush()) return false;
    disk_status st;
    bool got = q_->read(encoded, st);
    check(st, "read");
    return got;
  }
  std::int64_t depth() const override { return static_cast<std::int64_t>(q_->depth() + q_->pending()); }
  void empty() override { check(q_->empty(), "empty"); }
  bool flush() override { return check(q_->flush(), "write"); }
  bool sync() override { return check(q_->sync(), "sync"); }
  void manual_commit() override { q_->manual_commit(true); }
  disk_position read_position() const override { return q_->read_position(); }
  void commit(disk_position at) override { q_->commit(at); }
  void close() override { check(q_->close(), "close"); }
  void destroy() override { q_->destroy(); }
  bool on_disk() const override { return true; }

 private:
  bool check(const disk_status& st, const char* what) {
    if (st.ok()) return true;
    log::error("DISKQUEUE({}): {}: {}", name_, what, st.error);
    return false;
  }
  std::unique_ptr<disk_queue> q_;
  std::string name_;
};

}  // namespace

std::unique_ptr<backend_queue> make_memory_backend() { return std::make_unique<memory_backend>(); }

void add_topic_msg_ttl(broker_options& options, std::string_view spec) {
  auto eq = spec.rfind('=');
  if (eq == std::string_view::npos) throw std::invalid_argument("want TOPIC=DURATION");
  std::string_view name = spec.substr(0, eq);
  if (!is_valid_topic_name(name))
    throw std::invalid_argument(fmt::format("\"{}\" is not a valid topic name", name));
  auto ttl = std::chrono::duration_cast<std::chrono::milliseconds>(util::parse_duration(spec.substr(eq + 1)));
  options.topic_msg_ttl.insert_or_assign(std::string(name), ttl);
}

std::string encode_message(const message& m) {
  std::string out;
  encode_message_into(m, out);
  return out;
}

void encode_message_into(const message& m, std::string& out) {
  out.resize(message_header_length + m.body.size());
  put_u64(out.data(), static_cast<std::uint64_t>(m.timestamp_ns));
  out[8] = static_cast<char>(m.attempts >> 8);
  out[9] = static_cast<char>(m.attempts);
  auto id = make_message_id(m.id);
  std::memcpy(out.data() + 10, id.data(), msg_id_length);
  if (m.body.size()) std::memcpy(out.data() + message_header_length, m.body.view().data(), m.body.size());
}

bool decode_message(std::string_view bytes, message& m) {
  message_view v;
  if (!parse_message(bytes, v) || !parse_message_id(v.id, m.id)) return false;
  m.timestamp_ns = v.timestamp_ns;
  m.attempts = v.attempts;
  m.defer_until_ns = 0;
  m.body = body_ref::copy_of(v.body);
  return true;
}

bool message_queue::put(message&& m) {
  release(m);  // stored again: its old record may be committed past once this one is synced
  if (mem_.size() < capacity_ && backend_->depth() == 0) {
    mem_.push_back(std::move(m));
    return true;
  }
  if (!dirty && dirty_list && backend_->on_disk()) {
    dirty = true;
    dirty_list->push_back(this);
  }
  static thread_local std::string scratch;  // no allocation per message on the way to the backend
  encode_message_into(m, scratch);
  return backend_->put(scratch);
}

bool message_queue::pop(message& m) {
  if (!mem_.empty()) {
    m = std::move(mem_.front());
    mem_.pop_front();
    return true;
  }
  std::string enc;
  const disk_position at = backend_->read_position();  // at or before the record read (conservative)
  while (backend_->get(enc)) {
    if (decode_message(enc, m)) {
      if (unfinished) {
        m.from_disk = true;
        m.disk_at = at;
        unfinished->insert(at);
      }
      return true;
    }
    log::error("dropped an undecodable message of {} bytes from a backend queue", enc.size());
  }
  return false;
}

channel::channel(topic& t, std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend)
    : owner(t), name(std::move(n)), ephemeral(is_ephemeral(name)), queue(mem, std::move(backend)) {}

topic::topic(std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend)
    : name(std::move(n)), ephemeral(is_ephemeral(name)), queue(mem, std::move(backend)) {}

// --- the broker ------------------------------------------------------------------------------

broker::impl::impl(broker_options o) : opts(std::move(o)) {
  limits.max_msg_size = opts.max_msg_size;
  limits.max_body_size = opts.max_body_size;
  limits.max_rdy_count = opts.max_rdy_count;
  limits.max_req_timeout_ms = opts.max_req_timeout.count();
  limits.valid_topic = is_valid_topic_name;
  limits.valid_channel = is_valid_channel_name;
  id_limits.max_heartbeat_interval_ms = opts.max_heartbeat_interval.count();
  id_limits.max_output_buffer_size = opts.max_output_buffer_size;
  id_limits.max_output_buffer_timeout_ms = opts.max_output_buffer_timeout.count();
  id_limits.max_msg_timeout_ms = opts.max_msg_timeout.count();
  start_ns = wall_ns();
  nsqd_log_level = static_cast<int>(log::min_level()) + 1;  // debug 1, info 2, warn 3, error 4, off 5 (fatal)
}

namespace {
// --durable keeps no message of a disk-backed topic or channel in memory only.
std::size_t mem_capacity(const broker_options& o, bool ephemeral) {
  if (o.durable && !o.data_path.empty() && !ephemeral) return 0;
  return static_cast<std::size_t>(o.mem_queue_size);
}
}  // namespace

topic& broker::impl::get_topic(std::string_view name) {
  auto it = topics.find(name);
  if (it != topics.end()) return *it->second;
  auto t = std::make_unique<topic>(std::string(name), mem_capacity(opts, is_ephemeral(name)),
                                   make_backend(std::string(name), is_ephemeral(name)));
  if (opts.durable) t->queue.backend().manual_commit();
  t->queue.dirty_list = &dirty_queues;
  t->msg_ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opts.msg_ttl_for(name)).count();
  log::info("TOPIC({}): created", name);
  topic& ref = *topics.emplace(std::string(name), std::move(t)).first->second;
  notify_lookupd(true, name);
  save_metadata();
  return ref;
}

channel& broker::impl::get_channel(topic& t, std::string_view name) {
  auto it = t.channels.find(name);
  if (it != t.channels.end()) return *it->second;
  auto c = std::make_unique<channel>(t, std::string(name), mem_capacity(opts, t.ephemeral || is_ephemeral(name)),
                                     make_backend(t.name + ":" + std::string(name), t.ephemeral || is_ephemeral(name)));
  c->queue.dirty_list = &dirty_queues;
  if (opts.durable && c->queue.backend().on_disk()) {
    c->queue.backend().manual_commit();
    c->queue.unfinished = &c->unfinished;
  }
  log::info("TOPIC({}): new channel({})", t.name, name);
  channel& ref = *t.channels.emplace(std::string(name), std::move(c)).first->second;
  notify_lookupd(true, t.name, name);
  save_metadata();
  pump(t);  // a topic's backlog goes to its first channel
  return ref;
}

topic* broker::impl::find_topic(std::string_view name) {
  auto it = topics.find(name);
  return it == topics.end() ? nullptr : it->second.get();
}

channel* broker::impl::find_channel(std::string_view topic_name, std::string_view channel_name) {
  topic* t = find_topic(topic_name);
  if (!t) return nullptr;
  auto it = t->channels.find(channel_name);
  return it == t->channels.end() ? nullptr : it->second.get();
}

void broker::impl::delete_channel(topic& t, std::string_view name) {
  auto it = t.channels.find(name);
  if (it == t.channels.end()) return;
  channel& c = *it->second;
  // Its consumers are disconnected, as nsqd does.
  std::vector<connection*> consumers = c.consumers;
  for (connection* conn : consumers) {
    conn->sub = nullptr;
    conn->close();
  }
  report_drops(t, &c, steady_ns(), true);  // what it dropped since the last summary
  log::info("TOPIC({}): deleting channel({})", t.name, name);
  notify_lookupd(false, t.name, name);
  flush_dirty();
  c.queue.backend().destroy();
  t.channels.erase(it);
  save_metadata();
  if (t.ephemeral && t.channels.empty()) {
    delete_topic(t.name);
    return;
  }
  pump(t);  // it may have been the full #ephemeral channel the topic waited for
}

void broker::impl::delete_topic(std::string_view name) {
  auto it = topics.find(name);
  if (it == topics.end()) return;
  report_drops(*it->second, nullptr, steady_ns(), true);
  std::unique_ptr<topic> t = std::move(it->second);
  topics.erase(it);
  for (auto& [cname, c] : t->channels) notify_lookupd(false, t->name, cname);
  notify_lookupd(false, t->name);
  flush_dirty();
  for (auto& [cname, c] : t->channels) c->queue.backend().destroy();
  t->queue.backend().destroy();
  save_metadata();
  for (auto& [cname, c] : t->channels) {
    std::vector<connection*> consumers = c->consumers;
    for (connection* conn : consumers) {
      conn->sub = nullptr;
      conn->close();
    }
  }
  log::info("TOPIC({}): deleted", t->name);
}

void broker::impl::empty_topic(topic& t) { t.queue.clear(); }

void broker::impl::empty_channel(channel& c) {
  c.queue.clear();
  c.unfinished.clear();
  for (auto& [id, e] : c.in_flight)
    if (connection* conn = find_connection(e.client_id)) conn->message_done();
  c.in_flight.clear();
  c.in_flight_pq = {};
  c.deferred.clear();
  c.deferred_pq = {};
  pump(c.owner);  // an emptied #ephemeral channel has room for the topic's backlog
}

void broker::impl::pause_topic(topic& t, bool paused) {
  t.paused = paused;
  save_metadata();
  if (!paused) pump(t);
}

void broker::impl::pause_channel(channel& c, bool paused) {
  c.paused = paused;
  save_metadata();
  if (!paused) deliver(c);
}

message broker::impl::new_message(body_ref body, std::int64_t defer_ms, std::int64_t timestamp_ns) {
  message m;
  m.id = next_message_id++;
  m.timestamp_ns = timestamp_ns ? timestamp_ns : wall_ns();
  m.body = std::move(body);
  if (defer_ms > 0) m.defer_until_ns = steady_ns() + defer_ms * ns_per_ms;
  return m;
}

bool broker::impl::put_channel(channel& c, message&& m) {
  if (m.defer_until_ns != 0 && m.defer_until_ns > steady_ns()) {
    std::uint64_t seq = c.deferred_seq++;
    c.deferred_pq.push({m.defer_until_ns, seq});
    m.defer_until_ns = 0;
    c.deferred.emplace(seq, std::move(m));
    return true;
  }
  m.defer_until_ns = 0;
  return c.queue.put(std::move(m));
}

bool broker::impl::offer(channel& c, message&& m) {
  // nsqd's behaviour, counted: a deferred message (DPUB) is never dropped, it waits aside.
  if (c.ephemeral && opts.ephemeral_overflow_policy == ephemeral_overflow::drop && m.defer_until_ns == 0 &&
      c.queue.depth() >= ephemeral_capacity()) {
    ++c.dropped_count;
    return true;
  }
  // nsqd's message_count: what the topic put into the channel (deliveries are the clients' count).
  if (!put_channel(c, std::move(m))) return false;
  ++c.message_count;
  return true;
}

std::int64_t broker::impl::topic_room(const topic& t) const {
  std::int64_t room = std::numeric_limits<std::int64_t>::max();
  if (opts.ephemeral_overflow_policy != ephemeral_overflow::hold) return room;
  for (auto& [name, c] : t.channels)
    if (c->ephemeral) room = std::min(room, ephemeral_capacity() - c->queue.depth());
  return room;
}

bool broker::impl::put(topic& t, message&& m) {
  ++t.message_count;
  t.message_bytes += m.body.size();
  if (t.paused || t.channels.empty() || !t.queue.empty() || topic_room(t) <= 0) return t.queue.put(std::move(m));
  // Every channel gets a copy (a slice of the same body block).
  auto last = std::prev(t.channels.end());
  for (auto it = t.channels.begin(); it != last; ++it) {
    message copy = m;
    if (!offer(*it->second, std::move(copy))) return false;
  }
  return offer(*last->second, std::move(m));
}

void broker::impl::pump(topic& t) {
  // deliver() below may ask for a pump (an #ephemeral channel drained): it runs again here.
  if (t.pumping) {
    t.pump_again = true;
    return;
  }
  t.pumping = true;
  do {
    t.pump_again = false;
    if (t.paused || t.channels.empty()) break;
    const std::int64_t now = t.msg_ttl_ns > 0 ? wall_ns() : 0;
    message m;
    // --ephemeral-overflow hold: no more than the fullest #ephemeral channel can take.
    for (std::int64_t room = topic_room(t); room > 0 && t.queue.pop(m);) {
      if (expired(t, m, now)) {
        ++t.expired_count;
        continue;
      }
      auto last = std::prev(t.channels.end());
      for (auto it = t.channels.begin(); it != last; ++it) {
        message copy = m;
        offer(*it->second, std::move(copy));
      }
      offer(*last->second, std::move(m));
      --room;
    }
    for (auto& [name, c] : t.channels) deliver(*c);
  } while (t.pump_again);
  t.pumping = false;
}

void broker::impl::deliver(channel& c) {
  if (c.paused || c.consumers.empty()) return;
  topic& t = c.owner;
  const std::size_t n = c.consumers.size();
  const std::int64_t now = t.msg_ttl_ns > 0 ? wall_ns() : 0;
  message m;
  while (!c.queue.empty()) {
    connection* target = nullptr;
    for (std::size_t k = 0; k < n; ++k) {
      connection* conn = c.consumers[(c.next_consumer + k) % n];
      if (conn->ready()) {
        target = conn;
        c.next_consumer = (c.next_consumer + k + 1) % n;
        break;
      }
    }
    if (!target || !c.queue.pop(m)) break;
    if (expired(t, m, now)) {
      c.queue.release(m);  // done with, as a FIN: --durable commits past it
      ++c.expired_count;
      continue;
    }
    target->send_message(c, std::move(m));
  }
  // --ephemeral-overflow hold: the channel has room again, the topic's backlog resumes.
  if (c.ephemeral && opts.ephemeral_overflow_policy == ephemeral_overflow::hold && !t.paused && !t.queue.empty() &&
      topic_room(t) > 0)
    pump(t);
}

namespace {
bool report_due(const drop_report& r, std::uint64_t count, std::int64_t now, bool force) {
  return count != r.reported && (force || r.at_ns == 0 || now - r.at_ns >= drop_report_interval_ns);
}
std::string ttl_text(const topic& t) {
  return cli::format_duration(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(t.msg_ttl_ns)));
}
}  // namespace

void broker::impl::report_drops(topic& t, channel* only, std::int64_t now, bool force) {
  if (!only && report_due(t.expired_report, t.expired_count, now, force)) {
    log::info("TOPIC({}): {} messages expired (older than the TTL {}) before reaching a channel; {} in all", t.name,
              t.expired_count - t.expired_report.reported, ttl_text(t), t.expired_count);
    t.expired_report = {t.expired_count, now};
  }
  for (auto& [cname, cp] : t.channels) {
    channel& c = *cp;
    if (only && only != &c) continue;
    if (report_due(c.expired_report, c.expired_count, now, force)) {
      log::info("TOPIC({}): CHANNEL({}): {} messages expired (older than the TTL {}), not delivered; {} in all",
                t.name, cname, c.expired_count - c.expired_report.reported, ttl_text(t), c.expired_count);
      c.expired_report = {c.expired_count, now};
    }
    if (report_due(c.dropped_report, c.dropped_count, now, force)) {
      log::warn(
          "TOPIC({}): CHANNEL({}): {} messages dropped: the #ephemeral channel held --mem-queue-size {} "
          "(--ephemeral-overflow drop); {} in all",
          t.name, cname, c.dropped_count - c.dropped_report.reported, ephemeral_capacity(), c.dropped_count);
      c.dropped_report = {c.dropped_count, now};
    }
  }
}

void broker::impl::report_drops(std::int64_t now, bool force) {
  for (auto& [tname, t] : topics) report_drops(*t, nullptr, now, force);
}

connection* broker::impl::find_connection(std::uint64_t id) {
  auto it = connections.find(id);
  return it == connections.end() ? nullptr : it->second.get();
}

void broker::impl::remove_consumer(channel& c, connection& conn) {
  auto it = std::find(c.consumers.begin(), c.consumers.end(), &conn);
  if (it == c.consumers.end()) return;
  c.consumers.erase(it);
  c.next_consumer = 0;
  // What this client had in flight goes back to the channel now (nsqd waits for the timeout).
  std::vector<std::uint64_t> mine;
  for (auto& [id, e] : c.in_flight)
    if (e.client_id == conn.info.id) mine.push_back(id);
  std::sort(mine.begin(), mine.end());
  for (std::uint64_t id : mine) {
    auto e = c.in_flight.find(id);
    message m = std::move(e->second.msg);
    c.in_flight.erase(e);
    ++c.requeue_count;
    ++c.disconnect_requeue_count;
    put_channel(c, std::move(m));
  }
  conn.info.in_flight_count = 0;
  if (c.ephemeral && c.consumers.empty()) {
    delete_channel(c.owner, c.name);
    return;
  }
  deliver(c);
}

void broker::impl::scan() {
  const std::int64_t now = steady_ns();
  for (auto& [tname, t] : topics) {
    for (auto& [cname, cp] : t->channels) {
      channel& c = *cp;
      bool changed = false;
      while (!c.in_flight_pq.empty() && c.in_flight_pq.top().at_ns <= now) {
        timed_id top = c.in_flight_pq.top();
        c.in_flight_pq.pop();
        auto it = c.in_flight.find(top.id);
        if (it == c.in_flight.end() || it->second.deadline_ns != top.at_ns) continue;  // done or touched
        if (connection* conn = find_connection(it->second.client_id)) conn->message_done();
        message m = std::move(it->second.msg);
        c.in_flight.erase(it);
        ++c.timeout_count;
        put_channel(c, std::move(m));
        changed = true;
      }
      while (!c.deferred_pq.empty() && c.deferred_pq.top().at_ns <= now) {
        auto seq = c.deferred_pq.top().seq;
        c.deferred_pq.pop();
        auto it = c.deferred.find(seq);
        if (it == c.deferred.end()) continue;
        message m = std::move(it->second);
        c.deferred.erase(it);
        c.queue.put(std::move(m));
        changed = true;
      }
      if (changed) deliver(c);
    }
    // A topic that waited for a full #ephemeral channel (--ephemeral-overflow hold) and was not
    // woken by a delivery: its backlog moves on now.
    if (!t->queue.empty() && !t->paused && !t->channels.empty() && topic_room(*t) > 0) pump(*t);
  }
  report_drops(steady_ns(), false);
  flush_dirty();
  if (!opts.data_path.empty() && now - last_sync_ns >= opts.sync_timeout.count() * ns_per_ms) sync_disk();
  if (stopping) return;
  scan_timer.expires_after(opts.queue_scan_interval);
  scan_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) scan();
  });
}

std::string broker::impl::broadcast_address() const {
  if (!opts.broadcast_address.empty()) return opts.broadcast_address;
  auto a = tcp_listener ? tcp_listener->local_endpoint().address() : asio::ip::address();
  if (a.is_unspecified()) return a.is_v6() ? "::1" : "127.0.0.1";
  return a.to_string();
}

std::unique_ptr<backend_queue> broker::impl::make_backend(const std::string& queue_name, bool ephemeral) {
  if (opts.data_path.empty() || ephemeral) return make_memory_backend();
  disk_queue_options o;
  o.sync_every = static_cast<std::uint64_t>(opts.sync_every);
  o.max_record_size = static_cast<std::uint32_t>(opts.max_msg_size + static_cast<std::int64_t>(message_header_length));
  std::unique_ptr<disk_queue> q;
  disk_recovery rec;
  disk_status st = disk_queue::open(opts.data_path, queue_name, o, q, &rec);
  if (!st.ok()) {
    log::error("DISKQUEUE({}): {}; keeping its overflow in memory", queue_name, st.error);
    return make_memory_backend();
  }
  // Damage found on disk (data set aside, metadata unreadable) is logged even with --quiet.
  for (const auto& w : rec.warnings) log::error("DISKQUEUE({}): {}", queue_name, w);
  if (rec.records > 0) log::info("DISKQUEUE({}): {} messages on disk", queue_name, rec.records);
  return std::make_unique<disk_backend>(std::move(q), queue_name);
}

bool broker::impl::flush_dirty() {
  bool ok = true;
  for (message_queue* q : dirty_queues) {
    q->dirty = false;
    ok = q->backend().flush() && ok;
  }
  dirty_queues.clear();
  return ok;
}

// Channels first, then topics: a topic's consumed position (moved by pump() into its channels)
// is committed only once the channels hold those messages on disk (--durable).
bool broker::impl::sync_disk() {
  if (opts.data_path.empty()) return true;
  bool ok = flush_dirty();
  for (auto& [n, t] : topics)
    for (auto& [cn, c] : t->channels) {
      backend_queue& q = c->queue.backend();
      if (opts.durable) q.commit(c->unfinished.empty() ? q.read_position() : *c->unfinished.begin());
      ok = q.sync() && ok;
    }
  for (auto& [n, t] : topics) {
    if (ok) t->queue.backend().commit_read();
    ok = t->queue.backend().sync() && ok;
  }
  last_sync_ns = steady_ns();
  return ok;
}

void broker::impl::hold_for_sync(connection& c) {
  held.push_back(c.weak_from_this());
  if (durable_sync_posted) return;
  durable_sync_posted = true;
  // Posted: runs after the handlers already queued in this turn, so one sync covers every
  // publish they make (group commit across connections).
  asio::post(io, [this] { durable_sync(); });
}

void broker::impl::durable_sync() {
  durable_sync_posted = false;
  const bool ok = sync_disk();
  if (!ok) log::error("--durable: sync failed; publishers waiting for it are disconnected unanswered");
  std::vector<std::weak_ptr<connection>> waiting;
  waiting.swap(held);
  for (auto& w : waiting)
    if (auto c = w.lock()) c->release_held(ok);
}

// nsqd's nsqd.dat, as JSON: {"version":..,"topics":[{"name":..,"paused":..,"channels":[{"name":..,"paused":..}]}]}.
void broker::impl::save_metadata() {
  if (opts.data_path.empty() || stopping_metadata_frozen) return;
  nlohmann::json topics_json = nlohmann::json::array();
  for (auto& [n, t] : topics) {
    if (t->ephemeral) continue;
    nlohmann::json chans = nlohmann::json::array();
    for (auto& [cn, c] : t->channels)
      if (!c->ephemeral) chans.push_back({{"name", cn}, {"paused", c->paused}});
    topics_json.push_back({{"name", n}, {"paused", t->paused}, {"channels", chans}});
  }
  nlohmann::json j = {{"version", "1.3.0"}, {"topics", topics_json}};
  const std::string error = io::write_file_atomic(metadata_path(), j.dump() + '\n');
  if (!error.empty()) log::error("metadata: {}", error);
}

std::string broker::impl::metadata_path() const {
  return (std::filesystem::path(opts.data_path) / "nsq-broker.dat").string();
}

// A damaged file never stops the broker: what cannot be used is skipped and named in the log
// (the topics and channels themselves come back when they are published to or subscribed).
void broker::impl::load_metadata() {
  std::error_code ec;
  std::filesystem::create_directories(opts.data_path, ec);
  if (ec) fatal(exit_code::io_error, "--data-path {}: {}", opts.data_path, ec.message());
  const std::string path = metadata_path();
  std::ifstream f(path);
  if (!f) return;
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("topics") || !j["topics"].is_array()) {
    std::filesystem::rename(path, path + ".bad", ec);
    log::error("metadata: {} is not JSON with a \"topics\" array; every topic and channel in it skipped ({})",
               path, ec ? fmt::format("and it could not be renamed: {}", ec.message()) : "kept as " + path + ".bad");
    return;
  }
  auto shown = [](const nlohmann::json& v) {
    std::string s = v.dump();
    return s.size() > 120 ? s.substr(0, 120) + "..." : s;
  };
  // The entry's name, or empty (logged) when it has none or an invalid one.
  auto name_of = [&](const nlohmann::json& e, std::string_view what, bool topic) -> std::string {
    const auto* n = e.is_object() && e.contains("name") ? &e["name"] : nullptr;
    if (!n || !n->is_string()) {
      log::error("metadata: {}: {} without a \"name\" string skipped: {}", path, what, shown(e));
      return {};
    }
    std::string name = n->get<std::string>();
    if (!(topic ? is_valid_topic_name(name) : is_valid_channel_name(name))) {
      log::error("metadata: {}: {} {} skipped: not a valid name", path, what, shown(*n));
      return {};
    }
    return name;
  };
  auto paused_of = [&](const nlohmann::json& e, const std::string& what) {
    if (!e.contains("paused")) return false;
    if (e["paused"].is_boolean()) return e["paused"].get<bool>();
    log::error("metadata: {}: {}: \"paused\" is {}, not true or false; skipped (not paused)", path, what,
               shown(e["paused"]));
    return false;
  };
  stopping_metadata_frozen = true;  // no rewrites while loading
  for (const auto& tj : j["topics"]) {
    std::string name = name_of(tj, "a topic", true);
    if (name.empty()) continue;
    const std::string what = fmt::format("topic \"{}\"", name);
    topic& t = get_topic(name);
    t.paused = paused_of(tj, what);
    if (!tj.contains("channels")) continue;
    if (!tj["channels"].is_array()) {
      log::error("metadata: {}: {}: \"channels\" is not an array; its channels skipped", path, what);
      continue;
    }
    for (const auto& cj : tj["channels"]) {
      std::string cname = name_of(cj, fmt::format("{}: a channel", what), false);
      if (cname.empty()) continue;
      channel& c = get_channel(t, cname);
      c.paused = paused_of(cj, fmt::format("{} channel \"{}\"", what, cname));
    }
  }
  stopping_metadata_frozen = false;
  for (auto& [n, t] : topics) pump(*t);
}

// Shutdown with --data-path: what is in memory, in flight or deferred goes to disk, then everything
// is synced and closed, so a clean restart loses nothing.
void broker::impl::persist_all() {
  if (opts.data_path.empty()) return;
  std::uint64_t saved = 0;
  for (auto& [n, t] : topics) {
    if (!t->queue.backend().on_disk()) continue;
    t->queue.spill();
    for (auto& [cn, cp] : t->channels) {
      channel& c = *cp;
      if (!c.queue.backend().on_disk()) continue;
      std::vector<std::pair<std::uint64_t, message*>> in_flight;
      for (auto& [id, e] : c.in_flight) in_flight.emplace_back(id, &e.msg);
      std::sort(in_flight.begin(), in_flight.end(), [](auto& a, auto& b) { return a.first < b.first; });
      for (auto& [id, m] : in_flight) c.queue.backend().put(encode_message(*m)) && ++saved;
      for (auto& [seq, m] : c.deferred) c.queue.backend().put(encode_message(m)) && ++saved;
      c.in_flight.clear();
      c.deferred.clear();
      c.queue.spill();
      c.unfinished.clear();
      c.queue.backend().commit_read();  // what was in flight is stored again above
    }
  }
  dirty_queues.clear();
  for (auto& [n, t] : topics) {
    t->queue.backend().commit_read();
    t->queue.backend().close();
    for (auto& [cn, c] : t->channels) c->queue.backend().close();
  }
  save_metadata();
  log::info("DISKQUEUE: queues persisted ({} in flight or deferred)", saved);
}

void broker::impl::accept(tcp::socket socket) {
  if (stopping) return;
  if (opts.max_connections > 0 && connections.size() >= static_cast<std::size_t>(opts.max_connections)) {
    std::string frame;
    append_frame(frame, frame_type::error,
                 fmt::format("E_TOO_MANY_CONNECTIONS {} clients connected (--max-connections)", opts.max_connections));
    return refused.refuse(std::move(socket), opts.max_connections, frame);
  }
  boost::system::error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  std::uint64_t id = next_client_id++;
  auto conn = std::make_shared<connection>(*this, std::move(socket), id);
  connections.emplace(id, conn);
  conn->start();
}

void broker::impl::shutdown() {
  if (stopping) return;
  stopping = true;
  if (tcp_listener) tcp_listener->close();
  if (http) http->stop();
  stop_lookup_peers();
  scan_timer.cancel();
  report_drops(steady_ns(), true);
  std::vector<std::shared_ptr<connection>> all;
  for (auto& [id, c] : connections) all.push_back(c);
  // Consumers leave their channels first (what they had in flight goes back), then the queues are
  // persisted, then each connection writes what it has buffered and closes (1 s at most).
  for (auto& c : all)
    if (channel* ch = c->sub) {
      c->sub = nullptr;
      remove_consumer(*ch, *c);
    }
  persist_all();
  for (auto& c : all) c->drain();
  stop_timer.expires_after(std::chrono::seconds(1));
  stop_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    std::vector<std::shared_ptr<connection>> left;
    for (auto& [id, c] : connections) left.push_back(c);
    for (auto& c : left) c->close();
  });
  log::info("TCP: closing {}", tcp_port);
}

// --- a connection ----------------------------------------------------------------------------

connection::~connection() = default;

// Decodes compressed input onto the end of the commands in in_: at most max_decoded_per_turn
// bytes; the rest stays in the decoder and read() decodes it in a later turn of the event loop.
bool connection::decode_into_input(std::string_view data) {
  in_.resize(in_len_);
  const bool ok = codec_.decoder->decode(data, in_, max_decoded_per_turn);
  in_len_ = in_.size();
  if (!ok) log::warn("TCP: client({}): {}; closing", info.remote_address, codec_.decoder->error());
  return ok;
}

connection::connection(broker::impl& b, tcp::socket socket, std::uint64_t id)
    : b_(b), socket_(std::move(socket)), timer_(b.io), in_(read_chunk, '\0') {
  info.id = id;
  boost::system::error_code ec;
  auto ep = socket_.remote_endpoint(ec);
  if (!ec) info.remote_address = util::host_port{ep.address().to_string(), ep.port()}.to_string();
  info.connect_ts = wall_ns() / 1000000000;
  info.heartbeat_ms = b.opts.client_timeout.count() / 2;
  info.output_buffer_size = b.opts.output_buffer_size;
  info.output_buffer_timeout_ms = b.opts.output_buffer_timeout.count();
  info.msg_timeout_ms = b.opts.msg_timeout.count();
  heartbeat_ns_ = info.heartbeat_ms * ns_per_ms;
  msg_timeout_ns_ = info.msg_timeout_ms * ns_per_ms;
  flush_at_ = static_cast<std::size_t>(info.output_buffer_size);
}

void connection::start() {
  log::debug("TCP: new client({})", info.remote_address);
  command_since_ns_ = steady_ns();
  next_heartbeat_ns_ = command_since_ns_ + heartbeat_ns_;
  arm_timer();
  read();
}

void connection::read() {
  if (closed_ || fatal_) return;
  if (codec_ && codec_.decoder->has_pending()) {
    // Input already read decodes to more: the next part in its own turn, before reading more.
    asio::post(b_.io, [self = shared_from_this()] {
      if (self->closed_ || self->fatal_) return;
      std::size_t before = self->in_len_;
      if (!self->decode_into_input({})) return self->close();
      std::size_t got = self->in_len_ - before;
      self->in_len_ = before;
      self->on_read(got);
    });
    return;
  }
  if (codec_) {
    raw_.resize(read_chunk);
    read_some(asio::buffer(raw_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
      if (ec) return self->close();
      if (self->closed_) return;
      std::size_t before = self->in_len_;
      if (!self->decode_into_input(std::string_view(self->raw_.data(), n))) return self->close();
      std::size_t got = self->in_len_ - before;
      self->in_len_ = before;
      self->on_read(got);
    });
    return;
  }
  if (in_.size() - in_len_ < read_chunk / 4) in_.resize(std::max(in_.size() * 2, in_len_ + read_chunk));
  read_some(asio::buffer(in_.data() + in_len_, in_.size() - in_len_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                            if (ec) {
                              if (ec != asio::error::eof && ec != asio::error::operation_aborted &&
                                  ec != asio::error::connection_reset)
                                log::debug("TCP: client({}): read: {}", self->info.remote_address, ec.message());
                              self->close();
                              return;
                            }
                            self->on_read(n);
                          });
}

void connection::on_read(std::size_t n) {
  if (closed_) return;
  if (in_len_ == 0 && heartbeat_ns_ <= 0) command_since_ns_ = steady_ns();  // its first byte
  in_len_ += n;
  if (!magic_ok_) {
    if (in_len_ < 4) return read();
    if (std::string_view(in_.data(), 4) != magic_v2) {
      log::warn("TCP: client({}) bad protocol magic", info.remote_address);
      out_.clear();
      append_frame(out_, frame_type::error, "E_BAD_PROTOCOL");
      fatal_ = true;
      flush();
      return;
    }
    magic_ok_ = true;
    command_since_ns_ = steady_ns();
    std::memmove(in_.data(), in_.data() + 4, in_len_ - 4);
    in_len_ -= 4;
  }
  process_input();
}

void connection::process_input() {
  std::size_t pos = parse_input();
  if (tls_pending_ && !closed_) return after_identify_tls(pos);
  while (switch_input_ && !closed_ && !fatal_) {
    // IDENTIFY started compression: what follows it in the buffer is already compressed.
    switch_input_ = false;
    std::string rest(in_.data() + pos, in_len_ - pos);
    in_len_ = 0;
    if (!decode_into_input(rest)) return close();
    pos = parse_input();
  }
  if (closed_) return;
  if (pos > 0) {
    std::memmove(in_.data(), in_.data() + pos, in_len_ - pos);
    in_len_ -= pos;
    command_since_ns_ = steady_ns();  // the next command's time starts
  }
  if (heartbeat_ns_ <= 0) arm_timer();  // no heartbeat timer runs: a partial command needs its deadline
  if (auth_pending_) return request_flush();
  if (pending_output() >= max_pending_output && !fatal_) {
    paused_for_output_ = true;  // resume_after_output() reads on once the client has taken half
    return flush();
  }
  request_flush();
  read();
}

void connection::resume_after_output() {
  if (!paused_for_output_ || closed_ || pending_output() >= max_pending_output / 2) return;
  paused_for_output_ = false;
  command_since_ns_ = steady_ns();  // as nsqd: its read deadline is set once the blocked write is done
  process_input();
}

// Parses and runs the commands in in_; returns the bytes they took.
std::size_t connection::parse_input() {
  std::size_t pos = 0;
  parse_context ctx;
  while (pos < in_len_ && !fatal_ && !closed_ && !switch_input_ && !auth_pending_ && !tls_pending_ &&
         pending_output() < max_pending_output) {
    if (b_.opts.tls_required != tls_required_mode::no && !info.tls &&
        tls_refuses(std::string_view(in_.data() + pos, in_len_ - pos)))
      break;
    ctx.state = info.state;
    ctx.heartbeats_enabled = heartbeat_ns_ > 0;
    parse_result r = parse_command(std::string_view(in_.data() + pos, in_len_ - pos), b_.limits, ctx);
    if (r.status == parse_status::need_more) break;
    if (r.status == parse_status::error) {
      fail(r.err);
      break;
    }
    if (auth_expired() && (r.cmd.type == command_type::pub || r.cmd.type == command_type::mpub ||
                           r.cmd.type == command_type::dpub || r.cmd.type == command_type::sub)) {
      query_auth(true);  // the command runs again, parsed anew, once the auth server answered
      break;
    }
    pos += r.consumed;
    if (!handle(r.cmd)) break;
  }
  return pos;
}

bool connection::handle(const command& cmd) {
  switch (cmd.type) {
    case command_type::nop:
      return true;
    case command_type::pub:
    case command_type::mpub:
    case command_type::dpub:
      if (check_auth(cmd)) pub(cmd);
      return !fatal_;
    case command_type::identify:
      identify(cmd);
      return !fatal_;
    case command_type::auth:
      auth(cmd);
      return !fatal_ && !auth_pending_;
    case command_type::sub:
      if (check_auth(cmd)) subscribe(cmd);
      return !fatal_;
    case command_type::rdy:
      if (cmd.ignored) return true;
      info.ready_count = cmd.count;
      if (sub) b_.deliver(*sub);
      return true;
    case command_type::cls:
      info.ready_count = 0;
      info.state = client_state::closing;
      respond("CLOSE_WAIT");
      return true;
    case command_type::fin:
    case command_type::req:
    case command_type::touch:
      fin_req_touch(cmd);
      return !fatal_;
  }
  return true;
}

void connection::pub(const command& cmd) {
  topic& t = b_.get_topic(cmd.topic);
  bool ok = true;
  if (cmd.type == command_type::mpub) {
    body_ref block = body_ref::copy_of(cmd.body);
    const std::int64_t now = wall_ns();  // one clock read per MPUB
    for_each_mpub_message(block.view(), [&](std::string_view body) {
      if (ok) ok = b_.put(t, b_.new_message(block.slice(body), 0, now));
    });
  } else {
    ok = b_.put(t, b_.new_message(body_ref::copy_of(cmd.body), cmd.timeout_ms));
  }
  if (!b_.flush_dirty()) ok = false;
  if (!ok) {
    const char* name = cmd.type == command_type::pub ? "PUB" : cmd.type == command_type::mpub ? "MPUB" : "DPUB";
    fail(client_error{std::string("E_") + name + "_FAILED", std::string(name) + " failed writing to disk", true});
    return;
  }
  auto counted = info.pub_counts.find(cmd.topic);
  if (counted == info.pub_counts.end()) counted = info.pub_counts.emplace(std::string(cmd.topic), 0).first;
  counted->second += cmd.type == command_type::mpub ? cmd.messages : 1;
  b_.pump(t);
  if (b_.opts.durable && !t.ephemeral) {
    if (!t.queue.backend().on_disk()) {  // its disk queue could not be opened: never a false OK
      const char* name = cmd.type == command_type::pub ? "PUB" : cmd.type == command_type::mpub ? "MPUB" : "DPUB";
      fail(client_error{std::string("E_") + name + "_FAILED", std::string(name) + " failed writing to disk", true});
      return;
    }
    if (held_count_++ == 0) b_.hold_for_sync(*this);
    hold_response("OK");
    return;
  }
  respond("OK");
}

void connection::hold_response(std::string_view data) { append_frame(held_, frame_type::response, data); }

void connection::release_held(bool synced) {
  held_count_ = 0;
  if (closed_) return;
  if (!synced) {
    held_.clear();
    close();
    return;
  }
  frames() += held_;
  held_.clear();
  request_flush();
}

void connection::identify(const command& cmd) {
  identify_data d;
  client_error err;
  if (!parse_identify(cmd.body, b_.id_limits, d, err)) return fail(err);
  info.client_id = d.client_id;
  info.hostname = d.hostname;
  info.user_agent = d.user_agent;
  if (d.heartbeat_interval == -1) info.heartbeat_ms = 0;
  else if (d.heartbeat_interval > 0) info.heartbeat_ms = d.heartbeat_interval;
  if (d.output_buffer_timeout == -1) info.output_buffer_timeout_ms = 0;
  else if (d.output_buffer_timeout > 0) info.output_buffer_timeout_ms = d.output_buffer_timeout;
  if (d.output_buffer_size == -1) {  // nsqd: no buffering, so no buffer timeout either
    info.output_buffer_size = 1;
    info.output_buffer_timeout_ms = 0;
  } else if (d.output_buffer_size > 0) {
    info.output_buffer_size = d.output_buffer_size;
  }
  if (d.msg_timeout > 0) info.msg_timeout_ms = d.msg_timeout;
  info.sample_rate = d.sample_rate;
  heartbeat_ns_ = info.heartbeat_ms * ns_per_ms;
  msg_timeout_ns_ = info.msg_timeout_ms * ns_per_ms;
  flush_at_ = static_cast<std::size_t>(info.output_buffer_size);
  next_heartbeat_ns_ = steady_ns() + heartbeat_ns_;
  timer_.cancel();
  arm_timer();
  if (!d.feature_negotiation) return respond("OK");
  if (d.deflate && d.snappy)
    return fail(client_error{"E_IDENTIFY_FAILED", "cannot enable both deflate and snappy compression", true});
  // Compression and TLS are negotiated once (nsqd takes IDENTIFY only in its first state).
  const bool deflate = d.deflate && !codec_;
  const bool snappy = d.snappy && !codec_;
  const bool tls = d.tls_v1 && b_.tls && !tls_ && !tls_pending_ && !holding();
  // nsqd: 6 unless deflate is on and a level asked for, at most --max-deflate-level; reported
  // also when deflate is off.
  std::int64_t level = deflate && d.deflate_level > 0 ? d.deflate_level : 6;
  level = std::min<std::int64_t>(level, max_deflate_level);
  // nsqd's response.
  nlohmann::json r = {
      {"max_rdy_count", b_.opts.max_rdy_count},
      {"version", nsq_version},
      {"max_msg_timeout", b_.opts.max_msg_timeout.count()},
      {"msg_timeout", info.msg_timeout_ms},
      {"tls_v1", tls},
      {"deflate", deflate},
      {"deflate_level", level},
      {"max_deflate_level", max_deflate_level},
      {"snappy", snappy},
      {"sample_rate", info.sample_rate},
      {"auth_required", !b_.opts.auth_http_addresses.empty()},
      {"output_buffer_size", info.output_buffer_size},
      {"output_buffer_timeout", info.output_buffer_timeout_ms},
  };
  respond(r.dump());
  if (tls) {
    begin_tls();      // the response above goes out in plain text, the rest through TLS
    respond("OK");    // the first frame inside TLS
  }
  if (!deflate && !snappy) return;
  // As nsqd: the response goes out as it is, then both directions switch, and an OK is the first
  // compressed frame. nsqd puts TLS first, then snappy or deflate on top: so here.
  try {
    codec_ = snappy ? make_snappy_codec() : make_deflate_codec(static_cast<int>(level));
  } catch (const std::exception& e) {
    return fail(client_error{"E_IDENTIFY_FAILED", std::string("IDENTIFY failed ") + e.what(), true});
  }
  log::debug("TCP: client({}) upgrading connection to {}", info.remote_address, snappy ? "snappy" : "deflate");
  info.deflate = deflate;
  info.snappy = snappy;
  switch_input_ = true;
  respond("OK");  // staged: the first compressed frame
}

// --- AUTH -------------------------------------------------------------------------------------

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

void connection::subscribe(const command& cmd) {
  topic& t = b_.get_topic(cmd.topic);
  channel& c = b_.get_channel(t, cmd.channel);
  c.consumers.push_back(this);
  sub = &c;
  info.state = client_state::subscribed;
  respond("OK");
}

void connection::fin_req_touch(const command& cmd) {
  const char* name = cmd.type == command_type::fin ? "FIN" : cmd.type == command_type::req ? "REQ" : "TOUCH";
  std::uint64_t id = 0;
  channel* c = sub;
  auto not_ok = [&](const char* why) {
    // Not fatal: the client may have lost a race with a timeout.
    fail(client_error{std::string("E_") + name + "_FAILED",
                      std::string(name) + " " + std::string(cmd.id) + " failed " + why, false});
  };
  if (!c || !parse_message_id(cmd.id, id)) return not_ok("ID not in flight");
  auto it = c->in_flight.find(id);
  if (it == c->in_flight.end()) return not_ok("ID not in flight");
  if (it->second.client_id != info.id) return not_ok("client does not own message");
  const std::int64_t now = steady_ns();
  if (cmd.type == command_type::touch) {
    std::int64_t deadline = now + msg_timeout_ns_;
    std::int64_t cap = it->second.delivered_ns + b_.opts.max_msg_timeout.count() * ns_per_ms;
    if (deadline > cap) deadline = cap;
    it->second.deadline_ns = deadline;
    c->in_flight_pq.push({deadline, id});
    return;
  }
  message m = std::move(it->second.msg);
  c->in_flight.erase(it);
  --info.in_flight_count;
  if (cmd.type == command_type::fin) {
    c->queue.release(m);
    ++info.finish_count;
  } else {
    if (cmd.clamped)
      log::info("TCP: client({}): REQ timeout out of range 0-{} ms; set to {} ms (as nsqd)", info.remote_address,
                b_.opts.max_req_timeout.count(), cmd.timeout_ms);
    ++info.requeue_count;
    ++c->requeue_count;
    if (cmd.timeout_ms > 0) m.defer_until_ns = now + cmd.timeout_ms * ns_per_ms;
    b_.put_channel(*c, std::move(m));
  }
  b_.deliver(*c);
}

void connection::send_message(channel& c, message&& m) {
  ++m.attempts;
  if (info.sample_rate > 0 && static_cast<std::int64_t>(std::rand() % 100) > info.sample_rate) {
    c.queue.release(m);  // sampled out: done with, as nsqd does
    return;
  }
  const std::int64_t now = steady_ns();
  append_message_frame(frames(), m.timestamp_ns, m.attempts, make_message_id(m.id), m.body.view());
  ++info.in_flight_count;
  ++info.message_count;
  std::uint64_t id = m.id;
  std::int64_t deadline = now + msg_timeout_ns_;
  c.in_flight.insert_or_assign(id, in_flight_entry{std::move(m), info.id, deadline, now});
  c.in_flight_pq.push({deadline, id});
  if (frames().size() >= flush_at_) flush();
  else request_flush();
}

void connection::respond(std::string_view data) {
  if (holding()) return hold_response(data);  // behind a publish waiting for its sync
  append_frame(frames(), frame_type::response, data);
  request_flush();
}

void connection::fail(const client_error& err) {
  if (err.fatal) log::warn("TCP: client({}): {}", info.remote_address, err.wire());
  else log::debug("TCP: client({}): {}", info.remote_address, err.wire());
  if (holding() && !err.fatal) {
    append_frame(held_, frame_type::error, err.wire());
    return;
  }
  append_frame(frames(), frame_type::error, err.wire());
  if (err.fatal) {
    fatal_ = true;
    flush();
  } else {
    request_flush();
  }
}

void connection::request_flush() {
  if (flush_posted_ || closed_) return;
  flush_posted_ = true;
  asio::post(b_.io, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->flush();
  });
}

void connection::flush() {
  if (closed_ || write_pending_) return;
  if (tls_pending_) {
    // The IDENTIFY response goes out in plain text; once written, the handshake starts.
    if (tls_plain_.empty()) return start_tls_handshake();
    write_pending_ = true;
    write_since_ns_ = steady_ns();
    writing_.swap(tls_plain_);
    tls_plain_.clear();
    write_all(asio::buffer(writing_), [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
      self->on_write(ec);
    });
    return;
  }
  if (codec_ && (!stage_.empty() || finish_stream_)) {
    if (!stage_.empty()) codec_.encoder->encode(stage_, out_);
    if (finish_stream_) codec_.encoder->finish(out_);
    finish_stream_ = false;
    stage_.clear();
  }
  if (out_.empty()) {
    if (fatal_) close();
    return;
  }
  write_pending_ = true;
  write_since_ns_ = steady_ns();
  if (heartbeat_ns_ <= 0) arm_timer();  // the write deadline
  writing_.swap(out_);
  write_all(asio::buffer(writing_),
                   [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                     self->on_write(ec);
                   });
}

void connection::on_write(const boost::system::error_code& ec) {
  write_pending_ = false;
  writing_.clear();
  if (ec) {
    if (ec != asio::error::operation_aborted)
      log::debug("TCP: client({}): write: {}", info.remote_address, ec.message());
    close();
    return;
  }
  flush();
  resume_after_output();
}

std::int64_t connection::write_timeout_ns() const noexcept {
  return heartbeat_ns_ > 0 ? heartbeat_ns_ : b_.opts.client_timeout.count() * ns_per_ms;  // nsqd: the heartbeat interval
}

std::int64_t connection::read_deadline_ns() const noexcept {
  if (closed_ || fatal_ || paused_for_output_ || auth_pending_ || tls_pending_) return 0;
  if (heartbeat_ns_ > 0) return command_since_ns_ + 2 * heartbeat_ns_;
  if (in_len_ > 0 || !magic_ok_) return command_since_ns_ + b_.opts.client_timeout.count() * ns_per_ms;
  return 0;  // heartbeats off: an idle client may stay, as with nsqd
}

void connection::arm_timer() {
  if (closed_) return;
  std::int64_t at = std::numeric_limits<std::int64_t>::max();
  if (heartbeat_ns_ > 0 && !fatal_) at = next_heartbeat_ns_;
  if (std::int64_t read_at = read_deadline_ns()) at = std::min(at, read_at);
  if (write_pending_) at = std::min(at, write_since_ns_ + write_timeout_ns());
  if (at == std::numeric_limits<std::int64_t>::max()) return;
  timer_.expires_after(std::chrono::nanoseconds(std::max<std::int64_t>(at - steady_ns(), 0)));
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) self->on_timer();
  });
}

void connection::on_timer() {
  if (closed_) return;
  const std::int64_t now = steady_ns();
  if (write_pending_ && now >= write_since_ns_ + write_timeout_ns()) {
    log::warn("TCP: client({}) did not read its output for {} ms ({} bytes waiting); closing", info.remote_address,
              write_timeout_ns() / ns_per_ms, pending_output());
    return close();
  }
  const std::int64_t read_at = read_deadline_ns();
  if (read_at && now >= read_at) {
    // A client that stalls mid-command gets the error nsqd gives for the read it was in.
    parse_context ctx{info.state, true};
    std::size_t skip = magic_ok_ ? 0 : in_len_;
    parse_result r = parse_command(std::string_view(in_.data() + skip, in_len_ - skip), b_.limits, ctx);
    if (in_len_ > 0)
      log::warn("TCP: client({}) timed out: a command not complete within {} ms", info.remote_address,
                (read_at - command_since_ns_) / ns_per_ms);
    else
      log::warn("TCP: client({}) timed out after {} ms without a command", info.remote_address,
                (read_at - command_since_ns_) / ns_per_ms);
    if (r.status == parse_status::need_more && !r.err.empty()) fail(r.err);
    else {
      fatal_ = true;
      flush();
    }
    return arm_timer();  // the write deadline still holds for the error
  }
  if (heartbeat_ns_ > 0 && !fatal_ && now >= next_heartbeat_ns_) {
    append_frame(frames(), frame_type::response, heartbeat_body);
    flush();
    next_heartbeat_ns_ = now + heartbeat_ns_;
  }
  arm_timer();
}

void connection::drain() {
  if (closed_) return;
  fatal_ = true;  // no more reading; closes once the output is written
  timer_.cancel();
  if (codec_) finish_stream_ = true;
  flush();
}

void connection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  auto self = shared_from_this();
  if (sub) {
    channel* c = sub;
    sub = nullptr;
    b_.remove_consumer(*c, *this);
  }
  b_.connections.erase(info.id);
  if (b_.stopping && b_.connections.empty()) b_.stop_timer.cancel();
  log::debug("TCP: client({}) closed", info.remote_address);
}

// --- the public face -------------------------------------------------------------------------

broker::broker(broker_options options) : impl_(std::make_unique<impl>(std::move(options))) {}
broker::~broker() = default;

void broker::start() {
  impl& b = *impl_;
  if (b.opts.durable && b.opts.data_path.empty())
    fatal(exit_code::config, "--durable needs --data-path; durable messages live in its disk queues");
  b.load_tls();
  for (const auto& a : b.opts.auth_http_addresses) {
    if (a.rfind("https://", 0) == 0)
      fatal(exit_code::config, "--auth-http-address {}: https is not supported; use http:// (on a trusted network)", a);
    if (auto scheme = a.find("://"); scheme != std::string::npos && a.rfind("http://", 0) != 0)
      fatal(exit_code::config, "--auth-http-address {}: only http:// URLs", a);
  }
  if (b.opts.max_connections < 0) b.opts.max_connections = static_cast<std::int64_t>(net::default_max_connections());
  b.tcp_listener = std::make_unique<net::tcp_listener>(
      b.io, b.opts.tcp_address, [&b](tcp::socket s) { b.accept(std::move(s)); }, "--tcp-address");
  b.tcp_port = b.tcp_listener->port();
  log::info("TCP: listening on {} (--max-connections {})", net::to_string(b.tcp_listener->local_endpoint()),
            b.opts.max_connections);
  if (!b.opts.http_address.empty()) {
    b.http = make_http_frontend(b, b.opts.http_address);
    if (b.http) b.http_port = b.http->port();
  }
  if (!b.opts.data_path.empty()) b.load_metadata();
  b.start_lookup_peers();
  b.scan_timer.expires_after(b.opts.queue_scan_interval);
  b.scan_timer.async_wait([&b](const boost::system::error_code& e) {
    if (!e) b.scan();
  });
}

std::uint16_t broker::tcp_port() const { return impl_->tcp_port; }
std::uint16_t broker::http_port() const { return impl_->http_port; }

void broker::run() { impl_->io.run(); }

void broker::stop() {
  asio::post(impl_->io, [b = impl_.get()] { b->shutdown(); });
}

}  // namespace pipekit::nsq
