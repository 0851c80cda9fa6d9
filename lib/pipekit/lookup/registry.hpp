#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "pipekit/lookup/protocol.hpp"

// lookupd's registration database: which identified brokers (peers) have which topics and
// channels, tombstones, and what was created by hand over HTTP. nsqlookupd's rules, with one
// change: a topic or channel that no live broker has and that was not created by hand is gone
// (nsqlookupd keeps listing it until someone deletes it).
namespace pipekit::lookup {

using clock = std::chrono::steady_clock;

struct peer {
  std::string id;  // the connection's remote address: one peer per connection
  peer_info info;
  clock::time_point last_update;  // IDENTIFY or the last PING
};
using peer_ptr = std::shared_ptr<peer>;

struct producer {
  peer_ptr peer;
  bool tombstoned = false;
  clock::time_point tombstoned_at;
};

struct registration {
  std::map<std::string, producer> producers;  // by peer id
  bool manual = false;                        // created over HTTP: listed without producers
};

class registry {
 public:
  registry(clock::duration inactive_producer_timeout, clock::duration tombstone_lifetime)
      : inactive_(inactive_producer_timeout), tombstone_lifetime_(tombstone_lifetime) {}

  // IDENTIFY / disconnect. remove_peer drops every registration of the peer at once.
  void add_peer(peer_ptr p);
  void remove_peer(const std::string& id);

  // REGISTER: the channel (when not empty) and the topic. False when nothing was new.
  bool add_producer(const std::string& topic, const std::string& channel, const peer_ptr& p);
  // UNREGISTER topic channel: that channel; UNREGISTER topic: the topic and all its channels.
  void remove_producer(const std::string& topic, const std::string& channel, const std::string& peer_id);

  // HTTP administration.
  void create_topic(const std::string& topic);
  void create_channel(const std::string& topic, const std::string& channel);
  void delete_topic(const std::string& topic);
  bool delete_channel(const std::string& topic, const std::string& channel);  // false: not found
  void tombstone(const std::string& topic, const std::string& node_address);  // "broadcast_address:http_port"

  // Queries at time now (sorted names).
  bool has_topic(const std::string& topic, clock::time_point now) const;
  std::vector<std::string> topics(clock::time_point now) const;
  std::vector<std::string> channels(const std::string& topic, clock::time_point now) const;
  // Active, not tombstoned producers of a topic: what /lookup hands to consumers.
  std::vector<peer_ptr> lookup(const std::string& topic, clock::time_point now) const;

  struct node {
    peer_ptr peer;
    std::vector<std::string> topics;
    std::vector<bool> tombstones;
  };
  std::vector<node> nodes(clock::time_point now) const;  // active peers, tombstoned or not

  // Every registration as nsqlookupd names them: ("client","",""), ("topic",T,""), ("channel",T,C).
  void for_each(const std::function<void(const char* category, const std::string& key, const std::string& subkey,
                                         const registration&)>& fn) const;

  // Bumped by every change that can alter an answer (time aside): answers may be cached while
  // it stays the same and until valid_until().
  std::uint64_t generation() const noexcept { return generation_; }
  // When the answers about a topic change by time alone: a producer going inactive, a tombstone ending.
  clock::time_point valid_until(const std::string& topic, clock::time_point now) const;
  // PING: the peer is active again from now.
  void touch(peer& p, clock::time_point now);

  bool is_active(const peer& p, clock::time_point now) const { return now - p.last_update <= inactive_; }
  bool is_tombstoned(const producer& p, clock::time_point now) const {
    return p.tombstoned && now - p.tombstoned_at < tombstone_lifetime_;
  }
  std::size_t peer_count() const { return peers_.size(); }

 private:
  struct topic_entry {
    registration topic;
    std::map<std::string, registration> channels;
  };
  bool listed(const registration& r, clock::time_point now) const;
  void prune(const std::string& topic);

  std::uint64_t generation_ = 0;
  clock::duration inactive_;
  clock::duration tombstone_lifetime_;
  std::map<std::string, peer_ptr> peers_;
  std::map<std::string, topic_entry> topics_;
};

}  // namespace pipekit::lookup
