#pragma once
// A topic's or channel's queue: memory first, then a backend queue (nsqd's backend_queue.go and
// memoryMsgChan). Single-threaded: touched only from the broker's io_context thread.
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

}  // namespace pipekit::broker
