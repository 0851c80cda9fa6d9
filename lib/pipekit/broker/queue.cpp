// A topic's or channel's queue: memory first, then the backend (memory or disk).
#include <deque>
#include <string>

#include "pipekit/broker/queue_internal.hpp"
#include "pipekit/log/log.hpp"

namespace pipekit::broker {

namespace {

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

// A topic's or channel's overflow on disk (--data-path): pipekit/broker/disk_queue.
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

std::unique_ptr<backend_queue> make_disk_backend(std::unique_ptr<disk_queue> q, std::string name) {
  return std::make_unique<disk_backend>(std::move(q), std::move(name));
}

bool flush_list::flush() {
  bool ok = true;
  for (message_queue* q : queues_) {
    q->dirty_ = false;
    ok = q->backend().flush() && ok;
  }
  queues_.clear();
  return ok;
}

void flush_list::forget() {
  for (message_queue* q : queues_) q->dirty_ = false;
  queues_.clear();
}

bool message_queue::put(message&& m) {
  release(m);  // stored again: its old record may be committed past once this one is synced
  if (mem_.size() < capacity_ && backend_->depth() == 0) {
    mem_.push_back(std::move(m));
    return true;
  }
  if (!dirty_ && flush_list_ && backend_->on_disk()) {
    dirty_ = true;
    flush_list_->add(*this);
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
      if (track_unfinished_) {
        m.from_disk = true;
        m.disk_at = at;
        unfinished_.insert(at);
      }
      return true;
    }
    log::error("dropped an undecodable message of {} bytes from a backend queue", enc.size());
  }
  return false;
}

}  // namespace pipekit::broker
