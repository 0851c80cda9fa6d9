// Topics (nsqd's topic.go): created on first use, a message put into every channel, the backlog
// pumped into channels as they take it, expired and dropped messages summarised in the log.
#include <chrono>
#include <limits>

#include "pipekit/broker/server_internal.hpp"
#include "pipekit/cli/app.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::broker {

namespace {
constexpr std::int64_t drop_report_interval_ns = 5'000'000'000;  // summaries of dropped messages
}  // namespace

topic::topic(std::string n, std::size_t mem, std::unique_ptr<backend_queue> backend)
    : name(std::move(n)), ephemeral(is_ephemeral(name)), queue(mem, std::move(backend)) {}

topic& server::impl::get_topic(std::string_view name) {
  auto it = topics.find(name);
  if (it != topics.end()) return *it->second;
  auto t = std::make_unique<topic>(std::string(name), mem_capacity(is_ephemeral(name)),
                                   make_backend(std::string(name), is_ephemeral(name)));
  if (opts.durable) t->queue.backend().manual_commit();
  t->queue.flush_into(dirty_queues);
  t->msg_ttl_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(opts.msg_ttl_for(name)).count();
  log::info("TOPIC({}): created", name);
  topic& ref = *topics.emplace(std::string(name), std::move(t)).first->second;
  notify_lookupd(true, name);
  save_metadata();
  return ref;
}

topic* server::impl::find_topic(std::string_view name) {
  auto it = topics.find(name);
  return it == topics.end() ? nullptr : it->second.get();
}

void server::impl::delete_topic(topic& t) {
  auto it = topics.find(t.name);
  if (it == topics.end() || it->second.get() != &t) return;
  report_drops(t, nullptr, steady_ns(), true);
  const std::unique_ptr<topic> gone = std::move(it->second);  // t lives until this call returns
  topics.erase(it);
  for (auto& [cname, c] : t.channels) notify_lookupd(false, t.name, cname);
  notify_lookupd(false, t.name);
  flush_dirty();
  for (auto& [cname, c] : t.channels) c->queue.backend().destroy();
  t.queue.backend().destroy();
  save_metadata();
  for (auto& [cname, c] : t.channels) close_consumers(*c);
  log::info("TOPIC({}): deleted", t.name);
}

void server::impl::empty_topic(topic& t) { t.queue.clear(); }

void server::impl::pause_topic(topic& t, bool paused) {
  t.paused = paused;
  save_metadata();
  if (!paused) pump(t);
}

message server::impl::new_message(body_ref body, std::int64_t defer_ms, std::int64_t timestamp_ns) {
  message m;
  m.id = next_message_id++;
  m.timestamp_ns = timestamp_ns ? timestamp_ns : wall_ns();
  m.body = std::move(body);
  if (defer_ms > 0) m.defer_until_ns = steady_ns() + defer_ms * ns_per_ms;
  return m;
}

std::int64_t server::impl::topic_room(const topic& t) const {
  std::int64_t room = std::numeric_limits<std::int64_t>::max();
  if (opts.ephemeral_overflow_policy != ephemeral_overflow::hold) return room;
  for (auto& [name, c] : t.channels)
    if (c->ephemeral) room = std::min(room, ephemeral_capacity() - c->queue.depth());
  return room;
}

bool server::impl::put(topic& t, message&& m) {
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

void server::impl::pump(topic& t) {
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

namespace {
bool report_due(const drop_report& r, std::uint64_t count, std::int64_t now, bool force) {
  return count != r.reported && (force || r.at_ns == 0 || now - r.at_ns >= drop_report_interval_ns);
}

std::string ttl_text(const topic& t) {
  return cli::format_duration(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(t.msg_ttl_ns)));
}
}  // namespace

void server::impl::report_drops(topic& t, channel* only, std::int64_t now, bool force) {
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

void server::impl::report_drops(std::int64_t now, bool force) {
  for (auto& [tname, t] : topics) report_drops(*t, nullptr, now, force);
}

}  // namespace pipekit::broker
