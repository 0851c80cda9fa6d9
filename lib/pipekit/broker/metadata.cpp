// --data-path: the disk backends, their flushes and syncs (with --durable's group commit), the
// metadata file of topics and channels (nsqd's nsqd.dat), and what shutdown persists.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/broker/server_internal.hpp"
#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/atomic_file.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::broker {

// --durable keeps no message of a disk-backed topic or channel in memory only.
std::size_t server::impl::mem_capacity(bool ephemeral) const {
  if (opts.durable && !opts.data_path.empty() && !ephemeral) return 0;
  return static_cast<std::size_t>(opts.mem_queue_size);
}

std::unique_ptr<backend_queue> server::impl::make_backend(const std::string& queue_name, bool ephemeral) {
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
  return make_disk_backend(std::move(q), queue_name);
}

bool server::impl::flush_dirty() { return dirty_queues.flush(); }

// Channels first, then topics: a topic's consumed position (moved by pump() into its channels)
// is committed only once the channels hold those messages on disk (--durable).
bool server::impl::sync_disk() {
  if (opts.data_path.empty()) return true;
  bool ok = flush_dirty();
  for (auto& [n, t] : topics)
    for (auto& [cn, c] : t->channels) {
      backend_queue& q = c->queue.backend();
      const auto& unfinished = c->queue.unfinished();
      if (opts.durable) q.commit(unfinished.empty() ? q.read_position() : *unfinished.begin());
      ok = q.sync() && ok;
    }
  for (auto& [n, t] : topics) {
    if (ok) t->queue.backend().commit_read();
    ok = t->queue.backend().sync() && ok;
  }
  last_sync_ns = steady_ns();
  return ok;
}

void server::impl::hold_for_sync(connection& c) {
  held.push_back(c.weak_from_this());
  if (durable_sync_posted) return;
  durable_sync_posted = true;
  // Posted: runs after the handlers already queued in this turn, so one sync covers every
  // publish they make (group commit across connections).
  asio::post(io, [this] { durable_sync(); });
}

void server::impl::durable_sync() {
  durable_sync_posted = false;
  const bool ok = sync_disk();
  if (!ok) log::error("--durable: sync failed; publishers waiting for it are disconnected unanswered");
  std::vector<std::weak_ptr<connection>> waiting;
  waiting.swap(held);
  for (auto& w : waiting)
    if (auto c = w.lock()) c->release_held(ok);
}

// nsqd's nsqd.dat, as JSON: {"version":..,"topics":[{"name":..,"paused":..,"channels":[{"name":..,"paused":..}]}]}.
void server::impl::save_metadata() {
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

std::string server::impl::metadata_path() const {
  return (std::filesystem::path(opts.data_path) / "nsq-broker.dat").string();
}

// A damaged file never stops the broker: what cannot be used is skipped and named in the log
// (the topics and channels themselves come back when they are published to or subscribed).
void server::impl::load_metadata() {
  std::error_code ec;
  std::filesystem::create_directories(opts.data_path, ec);
  if (ec) throw option_error(option_error::kind::io, {"data_path"}, "{} " + opts.data_path + ": " + ec.message());
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
void server::impl::persist_all() {
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
      c.queue.forget_unfinished();
      c.queue.backend().commit_read();  // what was in flight is stored again above
    }
  }
  dirty_queues.forget();
  for (auto& [n, t] : topics) {
    t->queue.backend().commit_read();
    t->queue.backend().close();
    for (auto& [cn, c] : t->channels) c->queue.backend().close();
  }
  save_metadata();
  log::info("DISKQUEUE: queues persisted ({} in flight or deferred)", saved);
}

}  // namespace pipekit::broker
