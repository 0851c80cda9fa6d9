#include "pipekit/lookup/registry.hpp"

#include <algorithm>

#include <fmt/format.h>

namespace pipekit::lookup {

void registry::add_peer(peer_ptr p) {
  ++generation_;
  peers_[p->id] = std::move(p);
}

void registry::remove_peer(const std::string& id) {
  ++generation_;
  peers_.erase(id);
  std::vector<std::string> touched;
  for (auto& [name, entry] : topics_) {
    bool hit = entry.topic.producers.erase(id) > 0;
    for (auto& [channel, reg] : entry.channels) hit = reg.producers.erase(id) > 0 || hit;
    if (hit) touched.push_back(name);
  }
  for (const auto& name : touched) prune(name);
}

bool registry::add_producer(const std::string& topic, const std::string& channel, const peer_ptr& p) {
  ++generation_;
  auto& entry = topics_[topic];
  bool added = false;
  if (!channel.empty()) added = entry.channels[channel].producers.try_emplace(p->id, producer{p, false, {}}).second;
  // An existing producer keeps its tombstone, as in nsqlookupd.
  added = entry.topic.producers.try_emplace(p->id, producer{p, false, {}}).second || added;
  return added;
}

void registry::remove_producer(const std::string& topic, const std::string& channel, const std::string& peer_id) {
  ++generation_;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  auto& entry = it->second;
  if (!channel.empty()) {
    auto ch = entry.channels.find(channel);
    if (ch != entry.channels.end()) ch->second.producers.erase(peer_id);
  } else {
    for (auto& [name, reg] : entry.channels) reg.producers.erase(peer_id);
    entry.topic.producers.erase(peer_id);
  }
  prune(topic);
}

// Drops what nobody has any more and nobody created by hand.
void registry::prune(const std::string& topic) {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  auto& entry = it->second;
  std::erase_if(entry.channels, [](const auto& kv) { return kv.second.producers.empty() && !kv.second.manual; });
  if (entry.channels.empty() && entry.topic.producers.empty() && !entry.topic.manual) topics_.erase(it);
}

void registry::create_topic(const std::string& topic) {
  ++generation_;
  topics_[topic].topic.manual = true;
}

void registry::create_channel(const std::string& topic, const std::string& channel) {
  ++generation_;
  auto& entry = topics_[topic];
  entry.channels[channel].manual = true;
  entry.topic.manual = true;
}

void registry::delete_topic(const std::string& topic) {
  ++generation_;
  topics_.erase(topic);
}

bool registry::delete_channel(const std::string& topic, const std::string& channel) {
  ++generation_;
  auto it = topics_.find(topic);
  if (it == topics_.end() || it->second.channels.erase(channel) == 0) return false;
  prune(topic);
  return true;
}

void registry::tombstone(const std::string& topic, const std::string& node_address) {
  ++generation_;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return;
  auto now = clock::now();
  for (auto& [id, p] : it->second.topic.producers) {
    if (fmt::format("{}:{}", p.peer->info.broadcast_address, p.peer->info.http_port) != node_address) continue;
    p.tombstoned = true;
    p.tombstoned_at = now;
  }
}

void registry::touch(peer& p, clock::time_point now) {
  if (!is_active(p, now)) ++generation_;  // back from inactive: answers change
  p.last_update = now;
}

clock::time_point registry::valid_until(const std::string& topic, clock::time_point now) const {
  auto until = clock::time_point::max();
  auto it = topics_.find(topic);
  if (it == topics_.end()) return until;
  auto consider = [&](const registration& r) {
    for (const auto& [id, p] : r.producers) {
      if (is_active(*p.peer, now)) until = std::min(until, p.peer->last_update + inactive_);
      if (is_tombstoned(p, now)) until = std::min(until, p.tombstoned_at + tombstone_lifetime_);
    }
  };
  consider(it->second.topic);
  for (const auto& [name, reg] : it->second.channels) consider(reg);
  return until;
}

bool registry::listed(const registration& r, clock::time_point now) const {
  if (r.manual) return true;
  for (const auto& [id, p] : r.producers)
    if (is_active(*p.peer, now)) return true;
  return false;
}

bool registry::has_topic(const std::string& topic, clock::time_point now) const {
  auto it = topics_.find(topic);
  if (it == topics_.end()) return false;
  if (listed(it->second.topic, now)) return true;
  for (const auto& [name, reg] : it->second.channels)
    if (listed(reg, now)) return true;
  return false;
}

std::vector<std::string> registry::topics(clock::time_point now) const {
  std::vector<std::string> out;
  for (const auto& [name, entry] : topics_)
    if (has_topic(name, now)) out.push_back(name);
  return out;
}

std::vector<std::string> registry::channels(const std::string& topic, clock::time_point now) const {
  std::vector<std::string> out;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return out;
  for (const auto& [name, reg] : it->second.channels)
    if (listed(reg, now)) out.push_back(name);
  return out;
}

std::vector<peer_ptr> registry::lookup(const std::string& topic, clock::time_point now) const {
  std::vector<peer_ptr> out;
  auto it = topics_.find(topic);
  if (it == topics_.end()) return out;
  for (const auto& [id, p] : it->second.topic.producers)
    if (is_active(*p.peer, now) && !is_tombstoned(p, now)) out.push_back(p.peer);
  return out;
}

std::vector<registry::node> registry::nodes(clock::time_point now) const {
  std::vector<node> out;
  for (const auto& [id, p] : peers_) {
    if (!is_active(*p, now)) continue;
    node n{p, {}, {}};
    for (const auto& [name, entry] : topics_) {
      auto it = entry.topic.producers.find(id);
      if (it == entry.topic.producers.end()) continue;
      n.topics.push_back(name);
      n.tombstones.push_back(is_tombstoned(it->second, now));
    }
    out.push_back(std::move(n));
  }
  return out;
}

void registry::for_each(const std::function<void(const char*, const std::string&, const std::string&,
                                                 const registration&)>& fn) const {
  registration clients;
  for (const auto& [id, p] : peers_) clients.producers.emplace(id, producer{p, false, {}});
  static const std::string empty;
  fn("client", empty, empty, clients);
  for (const auto& [name, entry] : topics_) {
    fn("topic", name, empty, entry.topic);
    for (const auto& [channel, reg] : entry.channels) fn("channel", name, channel, reg);
  }
}

}  // namespace pipekit::lookup
