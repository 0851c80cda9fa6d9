// Channels (nsqd's channel.go): a message into one channel's queue, or aside while deferred;
// delivery to its ready consumers in turn; what a departing consumer had in flight taken back.
#include <algorithm>

#include "pipekit/broker/server_internal.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::broker {

channel::channel(topic& t, std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend)
    : owner(t), name(std::move(n)), ephemeral(is_ephemeral(name)), queue(mem, std::move(backend)) {}

channel& server::impl::get_channel(topic& t, std::string_view name) {
  auto it = t.channels.find(name);
  if (it != t.channels.end()) return *it->second;
  auto c = std::make_unique<channel>(t, std::string(name), mem_capacity(t.ephemeral || is_ephemeral(name)),
                                     make_backend(t.name + ":" + std::string(name), t.ephemeral || is_ephemeral(name)));
  c->queue.flush_into(dirty_queues);
  if (opts.durable && c->queue.backend().on_disk()) {
    c->queue.backend().manual_commit();
    c->queue.track_unfinished();
  }
  log::info("TOPIC({}): new channel({})", t.name, name);
  channel& ref = *t.channels.emplace(std::string(name), std::move(c)).first->second;
  notify_lookupd(true, t.name, name);
  save_metadata();
  pump(t);  // a topic's backlog goes to its first channel
  return ref;
}

channel* server::impl::find_channel(std::string_view topic_name, std::string_view channel_name) {
  topic* t = find_topic(topic_name);
  if (!t) return nullptr;
  auto it = t->channels.find(channel_name);
  return it == t->channels.end() ? nullptr : it->second.get();
}

void server::impl::delete_channel(channel& c) {
  topic& t = c.owner;
  auto it = t.channels.find(c.name);
  if (it == t.channels.end() || it->second.get() != &c) return;
  close_consumers(c);  // as nsqd does
  report_drops(t, &c, steady_ns(), true);  // what it dropped since the last summary
  log::info("TOPIC({}): deleting channel({})", t.name, c.name);
  notify_lookupd(false, t.name, c.name);
  flush_dirty();
  c.queue.backend().destroy();
  const std::unique_ptr<channel> gone = std::move(it->second);  // c lives until this call returns
  t.channels.erase(it);
  save_metadata();
  if (t.ephemeral && t.channels.empty()) return delete_topic(t);
  pump(t);  // it may have been the full #ephemeral channel the topic waited for
}

void server::impl::empty_channel(channel& c) {
  c.queue.clear();
  c.queue.forget_unfinished();
  for (auto& [id, e] : c.in_flight)
    if (connection* conn = find_connection(e.client_id)) conn->message_done();
  c.in_flight.clear();
  c.in_flight_pq = {};
  c.deferred.clear();
  c.deferred_pq = {};
  pump(c.owner);  // an emptied #ephemeral channel has room for the topic's backlog
}

void server::impl::pause_channel(channel& c, bool paused) {
  c.paused = paused;
  save_metadata();
  if (!paused) deliver(c);
}

bool server::impl::put_channel(channel& c, message&& m) {
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

bool server::impl::offer(channel& c, message&& m) {
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

void server::impl::deliver(channel& c) {
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

void server::impl::add_consumer(channel& c, connection& conn) {
  c.consumers.push_back(&conn);
  conn.sub_ = &c;
}

void server::impl::close_consumers(channel& c) {
  std::vector<connection*> leaving;
  leaving.swap(c.consumers);
  c.next_consumer = 0;
  for (connection* conn : leaving) conn->sub_ = nullptr;
  for (connection* conn : leaving) conn->close();  // with no subscription: nothing goes back to c
}

void server::impl::remove_consumer(channel& c, connection& conn) {
  conn.sub_ = nullptr;
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
  if (c.ephemeral && c.consumers.empty()) return delete_channel(c);  // c is gone on return
  deliver(c);
}

}  // namespace pipekit::broker
