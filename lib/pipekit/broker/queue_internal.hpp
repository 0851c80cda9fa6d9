#pragma once
// A topic's or channel's queue: memory first, then a backend queue (nsqd's backend_queue.go and
// memoryMsgChan). Single-threaded: touched only from the broker's io_context thread.
#include <algorithm>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "pipekit/broker/message_internal.hpp"

namespace pipekit::broker {

// Where a topic's or channel's messages go once its memory queue (--mem-queue-size) is full.
// The disk queue (lib/pipekit/broker/disk_queue.hpp) implements this; without --data-path, and for
// #ephemeral topics and channels, the overflow is kept in memory. An #ephemeral channel takes no
// more than --mem-queue-size from its topic (--ephemeral-overflow: server::impl::offer, topic_room);
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
// The overflow on disk (--data-path), logged as DISKQUEUE(name) when it fails.
std::unique_ptr<backend_queue> make_disk_backend(std::unique_ptr<disk_queue> q, std::string name);

class message_queue;

// The queues whose backend holds puts not yet flushed (--data-path): the broker flushes them all
// before it answers a publish (server::impl::flush_dirty). It owns no queue: a queue on the list
// leaves it when it is destroyed, so the list never names a queue that is gone.
class flush_list {
 public:
  flush_list() = default;
  flush_list(const flush_list&) = delete;
  flush_list& operator=(const flush_list&) = delete;
  void add(message_queue& q) { queues_.push_back(&q); }
  void remove(message_queue& q) { queues_.erase(std::remove(queues_.begin(), queues_.end(), &q), queues_.end()); }
  // Flushes every listed queue's backend and empties the list; false: some flush failed.
  bool flush();
  // Empties the list without flushing (shutdown: the queues are closed, which writes them).
  void forget();

 private:
  std::vector<message_queue*> queues_;
};

// Memory first, then the backend: nsqd's memoryMsgChan + backend.
class message_queue {
 public:
  message_queue(std::size_t mem_capacity, std::unique_ptr<backend_queue> backend)
      : capacity_(mem_capacity), backend_(std::move(backend)) {}
  ~message_queue() {
    if (dirty_) flush_list_->remove(*this);
  }
  message_queue(const message_queue&) = delete;
  message_queue& operator=(const message_queue&) = delete;
  backend_queue& backend() noexcept { return *backend_; }
  // Puts that reach a disk backend list this queue in `list` until it is flushed. REQUIRES: `list`
  // outlives this queue.
  void flush_into(flush_list& list) noexcept { flush_list_ = &list; }
  // Moves the memory queue to the backend (shutdown with a disk backend).
  bool spill() {
    bool ok = true;
    for (auto& m : mem_) ok = backend_->put(encode_message(m)) && ok;
    mem_.clear();
    return ok;
  }
  bool put(message&& m);
  bool pop(message& m);
  // --durable channels (track_unfinished()): the positions of messages read from disk and not yet
  // done with (FIN, or stored again); the consumed position may be committed up to the smallest.
  void track_unfinished() noexcept { track_unfinished_ = true; }
  const std::set<disk_position>& unfinished() const noexcept { return unfinished_; }
  void forget_unfinished() noexcept { unfinished_.clear(); }
  // m is done with (FIN, expired, sampled out) or about to be stored again.
  void release(message& m) {
    if (m.from_disk && track_unfinished_) unfinished_.erase(m.disk_at);
    m.from_disk = false;
  }
  std::int64_t depth() const { return static_cast<std::int64_t>(mem_.size()) + backend_->depth(); }
  std::int64_t backend_depth() const { return backend_->depth(); }
  bool empty() const { return mem_.empty() && backend_->depth() == 0; }
  void clear() {
    mem_.clear();
    backend_->empty();
  }

 private:
  friend class flush_list;
  std::size_t capacity_;
  std::deque<message> mem_;
  std::unique_ptr<backend_queue> backend_;
  flush_list* flush_list_ = nullptr;
  bool dirty_ = false;  // on flush_list_: the backend has puts not yet flushed
  bool track_unfinished_ = false;
  std::set<disk_position> unfinished_;
};

}  // namespace pipekit::broker
