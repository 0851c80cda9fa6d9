#include "pipekit/eth/batch_pipeline.hpp"

namespace pipekit::eth {

bool batch_pipeline::push(batch_chunk c) {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stopped_ || pending_.size() + done_.size() + working_ < max_in_flight_; });
  if (stopped_) return false;
  pending_.push_back(std::move(c));
  cv_.notify_all();
  return true;
}

void batch_pipeline::close_input() {
  std::lock_guard lock(mu_);
  input_closed_ = true;
  cv_.notify_all();
}

std::optional<batch_chunk> batch_pipeline::take() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return stopped_ || !pending_.empty() || input_closed_; });
  if (stopped_ || pending_.empty()) return std::nullopt;
  batch_chunk c = std::move(pending_.front());
  pending_.pop_front();
  ++working_;
  return c;
}

void batch_pipeline::finish(std::uint64_t seq, batch_result r) {
  std::lock_guard lock(mu_);
  --working_;
  done_.emplace(seq, std::move(r));
  cv_.notify_all();
}

std::optional<batch_result> batch_pipeline::next_in_order() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] {
    return stopped_ || done_.contains(next_out_) || (input_closed_ && pending_.empty() && working_ == 0 && done_.empty());
  });
  auto it = done_.find(next_out_);
  if (stopped_ || it == done_.end()) return std::nullopt;
  batch_result r = std::move(it->second);
  done_.erase(it);
  ++next_out_;
  cv_.notify_all();
  return r;
}

bool batch_pipeline::ready_in_order() {
  std::lock_guard lock(mu_);
  return done_.contains(next_out_);
}

void batch_pipeline::stop(std::exception_ptr failure) {
  std::lock_guard lock(mu_);
  if (failure && !failure_) failure_ = failure;
  stopped_ = true;
  cv_.notify_all();
}

std::exception_ptr batch_pipeline::failure() {
  std::lock_guard lock(mu_);
  return failure_;
}

}  // namespace pipekit::eth
