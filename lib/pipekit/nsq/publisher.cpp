#include "pipekit/nsq/publisher.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/rejects.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/nsq/client.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::nsq {
namespace {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr auto backoff_min = std::chrono::milliseconds(100);
constexpr auto backoff_max = std::chrono::milliseconds(5000);
constexpr std::int64_t default_max_msg_size = 1024 * 1024;
constexpr std::int64_t default_max_body_size = 5 * 1024 * 1024;

// One input line on its way: published when every copy of it was acknowledged.
struct item {
  std::string body;
  std::string topic;
  std::uint64_t line = 0;
  std::uint32_t source = 0;
  std::uint32_t copies_left = 0;
  bool failed = false;
};
using item_ptr = std::shared_ptr<item>;

// Consecutive items of one topic sent as one MPUB (or, with --defer, as DPUBs) to one broker.
struct batch {
  std::string topic;
  std::vector<item_ptr> items;
  clock::time_point first_try;
  std::string last_error;
};
using batch_ptr = std::shared_ptr<batch>;

// Thread-safe front for the rejects output: the reader thread reports bad lines, the io thread
// reports lines the brokers would not take.
class reject_sink {
 public:
  explicit reject_sink(const std::string& path) : r_(path.empty() ? io::rejects() : io::rejects(path)) {}
  void add(const std::vector<std::string>& sources, const item& it, std::string_view code, std::string_view error) {
    std::lock_guard lock(mu_);
    r_.add(sources.at(it.source), it.line, code, error, it.body);
  }
  void add(const std::string& source, std::uint64_t line, std::string_view code, std::string_view error,
           std::string_view input) {
    std::lock_guard lock(mu_);
    r_.add(source, line, code, error, input);
  }
  void flush() {
    std::lock_guard lock(mu_);
    r_.flush();
  }

 private:
  std::mutex mu_;
  io::rejects r_;
};

class publisher;

// One broker: its connection, what it has in flight (answers come back in order) and, in
// "all" mode, its own queue of copies to send.
struct broker {
  std::string address;
  std::shared_ptr<client> conn;
  struct in_flight_entry {
    batch_ptr b;
    std::int32_t index;  // -1: the whole batch (MPUB); else one item (DPUB/PUB)
  };
  std::deque<in_flight_entry> in_flight;
  std::deque<batch_ptr> queue;
  std::chrono::milliseconds backoff = backoff_min;
  std::unique_ptr<net::steady_timer> retry_timer;
  std::int64_t max_msg_size = default_max_msg_size;
  std::int64_t max_body_size = default_max_body_size;
  bool ready() const { return conn && conn->ready() && !conn->closed(); }
};

class publisher {
 public:
  explicit publisher(const publish_options& o) : o_(o), rejects_(o.rejects_path), batch_timer_(io_), tick_(io_) {
    for (const auto& a : o_.nsqd_tcp_addresses) {
      auto b = std::make_unique<broker>();
      b->address = a;
      b->retry_timer = std::make_unique<net::steady_timer>(io_);
      brokers_.push_back(std::move(b));
    }
    if (o_.rate > 0) batch_size_ = std::max<std::size_t>(1, std::min<std::size_t>(o_.batch_size, static_cast<std::size_t>(o_.rate / 10)));
    else batch_size_ = std::max<std::size_t>(1, o_.batch_size);
    max_queued_ = std::max<std::size_t>(batch_size_ * o_.in_flight * brokers_.size() * 2, 10000);
  }

  publish_result run();

 private:
  // --- reader thread ---
  void read_inputs();
  bool read_source(const std::string& path, std::uint32_t source);
  item_ptr make_item(std::string_view text, std::uint64_t line, std::uint32_t source, const std::string& name);
  void post_items(std::vector<item_ptr>& items);

  // --- io thread ---
  void accept(std::vector<item_ptr> items);
  void close_batch(const std::string& topic);
  void input_done();
  void dispatch(batch_ptr b);
  void pump();
  void pump(broker& br);
  bool send_to(broker& br, const batch_ptr& b);
  void connect(broker& br);
  void on_ready(broker& br, const json& identify);
  void on_response(broker& br, std::string_view data);
  void on_error(broker& br, std::string_view data);
  void on_close(broker& br, const std::string& why);
  void copy_done(const batch_ptr& b, std::int32_t index, broker& br);
  void copy_failed(const batch_ptr& b, std::int32_t index, broker& br, std::string_view code, const std::string& why,
                   bool retry);
  void retry(const batch_ptr& b, broker& br);
  void item_done(const item_ptr& it);
  void reject_items(const batch_ptr& b, std::string_view code, const std::string& why);
  void on_tick();
  void maybe_finish();
  void stop(int signal);

  const publish_options& o_;
  net::io_context io_;
  reject_sink rejects_;
  std::vector<std::string> sources_;
  std::vector<std::unique_ptr<broker>> brokers_;
  std::size_t batch_size_ = 200;
  std::size_t max_queued_ = 10000;

  // reader <-> io thread
  std::mutex mu_;
  std::condition_variable room_;
  std::size_t queued_ = 0;  // items read and not yet finished
  std::atomic<bool> stopping_{false};
  bool reader_blocked_ = false;    // in read(2), holding no line
  bool reader_abandoned_ = false;  // stopped while blocked: the io thread finished without it
  std::exception_ptr reader_error_;

  // io thread only
  std::unordered_map<std::string, batch_ptr> open_;  // partial batches by topic
  std::deque<batch_ptr> waiting_;                   // ready to send, no broker free (round-robin, failover)
  net::steady_timer batch_timer_;
  bool batch_timer_armed_ = false;
  net::steady_timer tick_;
  bool input_done_ = false;
  bool finished_ = false;
  std::size_t next_broker_ = 0;
  std::uint64_t unfinished_ = 0;  // items accepted and not yet done
  double tokens_ = 0;
  clock::time_point tokens_at_ = clock::now();
  publish_result result_;
  std::atomic<std::uint64_t> lines_{0}, empty_{0}, read_rejects_{0};
  clock::time_point started_ = clock::now();
};

// ---------------------------------------------------------------------------------------------
// Reading (its own thread: a slow pipe never stalls heartbeats or batch timeouts)

item_ptr publisher::make_item(std::string_view text, std::uint64_t line, std::uint32_t source,
                              const std::string& name) {
  auto reject = [&](std::string_view code, const std::string& why) -> item_ptr {
    rejects_.add(name, line, code, why, text);
    ++read_rejects_;
    return nullptr;
  };
  auto it = std::make_shared<item>();
  it->line = line;
  it->source = source;
  it->topic = o_.topic;
  bool need_dom = !o_.topic_pointer.empty() || !o_.body_pointer.empty();
  if (o_.raw && !need_dom) {
    it->body.assign(text);
  } else if (!need_dom) {
    if (!json::accept(text)) return reject("invalid_json", "not valid JSON (use --raw to publish lines as they are)");
    it->body.assign(text);
  } else {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return reject("invalid_json", "not valid JSON");
    if (!o_.topic_pointer.empty()) {
      const json* t = nullptr;
      try {
        t = &doc.at(json::json_pointer(o_.topic_pointer));
      } catch (const json::exception&) {
      }
      if (!t || !t->is_string())
        return reject("missing_field", fmt::format("no string at {} for the topic", o_.topic_pointer));
      it->topic = t->get<std::string>();
    }
    if (!o_.body_pointer.empty()) {
      const json* b = nullptr;
      try {
        b = &doc.at(json::json_pointer(o_.body_pointer));
      } catch (const json::exception&) {
      }
      if (!b) return reject("missing_field", fmt::format("nothing at {} for the body", o_.body_pointer));
      it->body = b->dump(-1, ' ', false, json::error_handler_t::replace);
    } else {
      it->body.assign(text);
    }
  }
  if (!is_valid_topic_name(it->topic))
    return reject("bad_topic", fmt::format("\"{}\" is not a valid topic name", it->topic));
  return it;
}

void publisher::post_items(std::vector<item_ptr>& items) {
  if (items.empty()) return;
  {
    std::unique_lock lock(mu_);
    queued_ += items.size();
  }
  net::post(io_, [this, batch = std::move(items)]() mutable { accept(std::move(batch)); });
  items.clear();
  std::unique_lock lock(mu_);
  room_.wait(lock, [&] { return queued_ < max_queued_ || stopping_.load(); });
}

bool publisher::read_source(const std::string& path, std::uint32_t source) {
  io::line_reader reader(path);
  std::vector<item_ptr> items;
  reader.on_refill([&] {  // before blocking: hand over what was read
    post_items(items);
    std::lock_guard lock(mu_);
    reader_blocked_ = true;
  });
  while (!stopping_) {
    auto l = reader.next();
    {
      std::lock_guard lock(mu_);
      reader_blocked_ = false;
      if (reader_abandoned_) return false;  // a line read after the stop: not taken
    }
    if (!l) break;
    ++lines_;
    if (l->too_long) {
      rejects_.add(reader.source(), l->number, "too_large", "line longer than 16 MiB", "");
      ++read_rejects_;
      continue;
    }
    if (l->text.empty()) {
      ++empty_;
      continue;
    }
    if (auto it = make_item(l->text, l->number, source, reader.source())) items.push_back(std::move(it));
    if (items.size() >= 1024) post_items(items);
  }
  post_items(items);
  return !stopping_;
}

void publisher::read_inputs() {
  try {
    if (o_.message) {
      ++lines_;
      std::vector<item_ptr> items;
      if (auto it = make_item(*o_.message, 1, 0, sources_[0])) items.push_back(std::move(it));
      post_items(items);
    } else {
      for (std::uint32_t i = 0; i < sources_.size() && !stopping_; ++i) read_source(o_.inputs.empty() ? "-" : o_.inputs[i], i);
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    reader_error_ = std::current_exception();
  }
  std::lock_guard lock(mu_);
  if (!reader_abandoned_) net::post(io_, [this] { input_done(); });
}

// ---------------------------------------------------------------------------------------------
// Batching and dispatch (io thread)

void publisher::accept(std::vector<item_ptr> items) {
  for (auto& it : items) {
    ++unfinished_;
    it->copies_left = o_.mode == publish_mode::all ? static_cast<std::uint32_t>(brokers_.size()) : 1;
    auto& open = open_[it->topic];
    if (!open) {
      open = std::make_shared<batch>();
      open->topic = it->topic;
    }
    open->items.push_back(std::move(it));
    if (open->items.size() >= batch_size_) close_batch(open->topic);
  }
  if (!open_.empty() && !batch_timer_armed_) {
    batch_timer_armed_ = true;
    batch_timer_.expires_after(o_.batch_timeout);
    batch_timer_.async_wait([this](boost::system::error_code ec) {
      batch_timer_armed_ = false;
      if (ec) return;
      while (!open_.empty()) close_batch(open_.begin()->first);
    });
  }
}

void publisher::close_batch(const std::string& topic) {
  auto node = open_.extract(topic);
  if (node.empty()) return;
  batch_ptr b = std::move(node.mapped());
  b->first_try = clock::now();
  dispatch(std::move(b));
}

void publisher::input_done() {
  input_done_ = true;
  while (!open_.empty()) close_batch(open_.begin()->first);
  maybe_finish();
}

void publisher::dispatch(batch_ptr b) {
  if (o_.mode == publish_mode::all) {
    for (auto& br : brokers_) br->queue.push_back(b);
  } else {
    waiting_.push_back(std::move(b));
  }
  pump();
}

void publisher::pump() {
  if (o_.mode == publish_mode::all) {
    for (auto& br : brokers_) pump(*br);
    return;
  }
  while (!waiting_.empty()) {
    broker* target = nullptr;
    for (std::size_t n = 0; n < brokers_.size(); ++n) {
      std::size_t i = o_.mode == publish_mode::failover ? n : (next_broker_ + n) % brokers_.size();
      broker& br = *brokers_[i];
      if (!br.ready()) continue;
      if (br.in_flight.size() < o_.in_flight) {
        target = &br;
        if (o_.mode == publish_mode::round_robin) next_broker_ = (i + 1) % brokers_.size();
      }
      break;  // failover: the first live broker, or wait for it; round-robin: the next live one with room
    }
    if (o_.mode == publish_mode::round_robin && !target) {
      for (auto& br : brokers_)
        if (br->ready() && br->in_flight.size() < o_.in_flight) target = br.get();
    }
    if (!target) return;
    batch_ptr b = waiting_.front();
    waiting_.pop_front();
    if (!send_to(*target, b)) {
      waiting_.push_front(std::move(b));
      return;
    }
  }
}

void publisher::pump(broker& br) {
  while (br.ready() && !br.queue.empty() && br.in_flight.size() < o_.in_flight) {
    batch_ptr b = br.queue.front();
    br.queue.pop_front();
    if (!send_to(br, b)) {
      br.queue.push_front(std::move(b));
      return;
    }
  }
}

// Writes the batch's command(s) to br. False when the rate limit says wait.
bool publisher::send_to(broker& br, const batch_ptr& b) {
  // Messages this broker cannot take are rejects now; an MPUB over its body limit is split.
  std::vector<item_ptr> keep;
  for (auto& it : b->items) {
    if (static_cast<std::int64_t>(it->body.size()) > br.max_msg_size) {
      copy_failed(std::make_shared<batch>(batch{b->topic, {it}, b->first_try, {}}), 0, br, "too_large",
                  fmt::format("{} bytes, over the broker's max-msg-size of {}", it->body.size(), br.max_msg_size),
                  false);
    } else {
      keep.push_back(it);
    }
  }
  b->items.swap(keep);
  if (b->items.empty()) return true;
  std::int64_t total = 4;
  for (auto& it : b->items) total += 4 + static_cast<std::int64_t>(it->body.size());
  if (!o_.defer && b->items.size() > 1 && total > br.max_body_size) {
    auto second = std::make_shared<batch>(batch{b->topic, {}, b->first_try, {}});
    std::size_t half = b->items.size() / 2;
    second->items.assign(b->items.begin() + static_cast<std::ptrdiff_t>(half), b->items.end());
    b->items.resize(half);
    if (o_.mode == publish_mode::all) br.queue.push_front(second);
    else waiting_.push_front(second);
    return send_to(br, b);
  }
  if (o_.rate > 0) {
    auto now = clock::now();
    tokens_ = std::min(tokens_ + o_.rate * std::chrono::duration<double>(now - tokens_at_).count(),
                       std::max(o_.rate / 10, 1.0) + static_cast<double>(batch_size_));
    tokens_at_ = now;
    if (tokens_ < static_cast<double>(b->items.size())) return false;  // on_tick pumps again
    tokens_ -= static_cast<double>(b->items.size());
  }
  std::string& out = br.conn->output();
  if (o_.defer) {
    std::string line = fmt::format("DPUB {} {}", b->topic, o_.defer->count());
    for (std::size_t i = 0; i < b->items.size(); ++i) {
      append_command(out, line, b->items[i]->body);
      br.in_flight.push_back({b, static_cast<std::int32_t>(i)});
    }
  } else if (b->items.size() == 1) {
    append_command(out, "PUB " + b->topic, b->items[0]->body);
    br.in_flight.push_back({b, -1});
  } else {
    std::vector<std::string_view> bodies;
    bodies.reserve(b->items.size());
    for (auto& it : b->items) bodies.emplace_back(it->body);
    append_mpub(out, b->topic, bodies);
    br.in_flight.push_back({b, -1});
  }
  br.conn->flush();
  return true;
}

// ---------------------------------------------------------------------------------------------
// Connections

void publisher::connect(broker& br) {
  client_options co;
  co.address = br.address;
  co.connect_timeout = o_.connect_timeout;
  client::handlers h;
  h.on_ready = [this, &br](const json& id) { on_ready(br, id); };
  h.on_response = [this, &br](std::string_view d) { on_response(br, d); };
  h.on_error = [this, &br](std::string_view d) { on_error(br, d); };
  h.on_close = [this, &br](const std::string& why) { on_close(br, why); };
  br.conn = client::create(io_, co, std::move(h));
  br.conn->start();
}

void publisher::on_ready(broker& br, const json& id) {
  result_.broker_reached = true;
  br.backoff = backoff_min;
  br.max_msg_size = id.value("max_msg_size", default_max_msg_size);
  br.max_body_size = id.value("max_body_size", default_max_body_size);
  log::debug("{}: connected", br.address);
  pump();
}

void publisher::on_response(broker& br, std::string_view data) {
  if (data != "OK" || br.in_flight.empty()) {
    log::warn("{}: unexpected response \"{}\"", br.address, data);
    return;
  }
  auto e = br.in_flight.front();
  br.in_flight.pop_front();
  copy_done(e.b, e.index, br);
  pump();
}

// nsqd's PUB/MPUB/DPUB errors close the connection; what was sent after the failed command was
// not processed and is retried by on_close.
void publisher::on_error(broker& br, std::string_view data) {
  std::string text(data);
  std::string code = text.substr(0, text.find(' '));
  if (br.in_flight.empty()) {
    log::warn("{}: {}", br.address, text);
    return;
  }
  auto e = br.in_flight.front();
  br.in_flight.pop_front();
  bool transient = code == "E_PUB_FAILED" || code == "E_MPUB_FAILED" || code == "E_DPUB_FAILED";
  copy_failed(e.b, e.index, br, code, fmt::format("{}: {}", br.address, text), transient);
}

void publisher::on_close(broker& br, const std::string& why) {
  if (finished_) return;
  log::warn("{}: {}; reconnecting in {} ms", br.address, why, br.backoff.count());
  auto in_flight = std::move(br.in_flight);
  br.in_flight.clear();
  br.conn.reset();
  // Unanswered commands: retried (after this broker reconnects, or elsewhere). Reverse order keeps
  // the input order at the front of the queues.
  for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
    it->b->last_error = fmt::format("{}: {}", br.address, why);
    if (it->index >= 0) {
      auto one = std::make_shared<batch>(batch{it->b->topic, {it->b->items[static_cast<std::size_t>(it->index)]},
                                               it->b->first_try, it->b->last_error});
      if (o_.mode == publish_mode::all) br.queue.push_front(one);
      else waiting_.push_front(one);
    } else if (o_.mode == publish_mode::all) {
      br.queue.push_front(it->b);
    } else {
      waiting_.push_front(it->b);
    }
  }
  br.retry_timer->expires_after(br.backoff);
  br.backoff = std::min(br.backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(backoff_max));
  br.retry_timer->async_wait([this, &br](boost::system::error_code ec) {
    if (!ec && !finished_) connect(br);
  });
  pump();
}

// ---------------------------------------------------------------------------------------------
// Outcomes

void publisher::copy_done(const batch_ptr& b, std::int32_t index, broker&) {
  if (index >= 0) return item_done(b->items[static_cast<std::size_t>(index)]);
  for (auto& it : b->items) item_done(it);
}

void publisher::copy_failed(const batch_ptr& b, std::int32_t index, broker& br, std::string_view code,
                            const std::string& why, bool retry_later) {
  batch_ptr target = b;
  if (index >= 0) target = std::make_shared<batch>(batch{b->topic, {b->items[static_cast<std::size_t>(index)]}, b->first_try, {}});
  target->last_error = why;
  if (retry_later) return retry(target, br);
  if (target->items.size() > 1) {
    // One bad message fails the whole MPUB: send them one by one to find it.
    for (auto it = target->items.rbegin(); it != target->items.rend(); ++it) {
      auto one = std::make_shared<batch>(batch{target->topic, {*it}, target->first_try, {}});
      if (o_.mode == publish_mode::all) br.queue.push_front(one);
      else waiting_.push_front(one);
    }
    return;
  }
  // nsqd does not announce its max-msg-size: a message over it is known by the answer.
  bool too_big = code == "too_large" || (code == "E_BAD_MESSAGE" && why.find("too big") != std::string::npos);
  std::string reason = too_big ? "too_large" : "broker_rejected";
  reject_items(target, reason, why);
}

void publisher::retry(const batch_ptr& b, broker& br) {
  if (clock::now() - b->first_try >= o_.retry_timeout) {
    return reject_items(b, "unavailable", fmt::format("not published within --retry-timeout: {}", b->last_error));
  }
  if (o_.mode == publish_mode::all) br.queue.push_back(b);
  else waiting_.push_back(b);
}

void publisher::reject_items(const batch_ptr& b, std::string_view code, const std::string& why) {
  for (auto& it : b->items) {
    if (!it->failed) {
      it->failed = true;
      rejects_.add(sources_, *it, code, why);
      ++result_.rejected;
    }
    item_done(it);
  }
}

void publisher::item_done(const item_ptr& it) {
  if (it->copies_left == 0) return;
  if (--it->copies_left > 0) return;
  if (!it->failed) ++result_.published;
  --unfinished_;
  {
    std::lock_guard lock(mu_);
    --queued_;
  }
  room_.notify_one();
  maybe_finish();
}

// Every 100 ms: give up on what waited past --retry-timeout, pump the rate limit, show progress.
void publisher::on_tick() {
  auto now = clock::now();
  auto expire = [&](std::deque<batch_ptr>& q, broker* br) {
    for (auto it = q.begin(); it != q.end();) {
      if (now - (*it)->first_try >= o_.retry_timeout) {
        batch_ptr b = *it;
        it = q.erase(it);
        std::string why = b->last_error.empty() ? (br ? br->address + ": not connected" : "no broker connected")
                                                : b->last_error;
        reject_items(b, "unavailable", fmt::format("not published within --retry-timeout: {}", why));
      } else {
        ++it;
      }
    }
  };
  expire(waiting_, nullptr);
  for (auto& br : brokers_) expire(br->queue, br.get());
  pump();
  if (o_.progress) {
    static clock::time_point last;
    if (now - last >= std::chrono::seconds(1)) {
      last = now;
      double s = std::chrono::duration<double>(now - started_).count();
      std::fprintf(stderr, "\r%s: %llu published, %llu rejected, %.0f msg/s ", std::string(log::tool_name()).c_str(),
                   static_cast<unsigned long long>(result_.published),
                   static_cast<unsigned long long>(result_.rejected + read_rejects_),
                   s > 0 ? static_cast<double>(result_.published) / s : 0.0);
    }
  }
  maybe_finish();
  if (finished_) return;
  tick_.expires_after(std::chrono::milliseconds(100));
  tick_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_tick();
  });
}

void publisher::maybe_finish() {
  if (finished_ || !input_done_ || unfinished_ > 0 || !open_.empty()) return;
  finished_ = true;
  for (auto& br : brokers_) {
    if (br->conn) br->conn->close();
    br->retry_timer->cancel();
  }
  batch_timer_.cancel();
  tick_.cancel();
  io_.stop();
}

void publisher::stop(int signal) {
  if (stopping_.exchange(true)) {
    log::warn("second signal: exiting without waiting for the brokers");
    std::_Exit(128 + signal);
  }
  log::info("stopping: publishing what was read, then exiting");
  result_.interrupted = true;
  room_.notify_all();
  // A reader blocked in read(2) holds nothing: finish without it. Otherwise it stops after the
  // line in hand and hands over what it read.
  std::lock_guard lock(mu_);
  if (reader_blocked_) {
    reader_abandoned_ = true;
    net::post(io_, [this] { input_done(); });
  }
}

publish_result publisher::run() {
  if (o_.message) {
    sources_ = {"--message"};
  } else if (o_.inputs.empty()) {
    sources_ = {"stdin"};
  } else {
    for (const auto& p : o_.inputs) sources_.push_back(p == "-" ? "stdin" : p);
  }
  for (auto& br : brokers_) connect(*br);
  util::on_stop_signals(io_, [this](int sig) { stop(sig); });
  on_tick();
  std::thread reader([this] { read_inputs(); });
  io_.run();
  if (stopping_) reader.detach();
  else reader.join();
  if (o_.progress) std::fputc('\n', stderr);
  rejects_.flush();
  {
    std::lock_guard lock(mu_);
    if (reader_error_ && !stopping_) std::rethrow_exception(reader_error_);
  }
  result_.lines = lines_;
  result_.empty = empty_;
  result_.rejected += read_rejects_;
  result_.seconds = std::chrono::duration<double>(clock::now() - started_).count();
  return result_;
}

}  // namespace

publish_result publish(const publish_options& options) {
  if (options.topic.empty() && options.topic_pointer.empty())
    fatal(exit_code::usage, "--topic or --topic-pointer is required");
  if (!options.topic.empty() && !is_valid_topic_name(options.topic))
    fatal(exit_code::usage, "--topic: \"{}\" is not a valid topic name", options.topic);
  if (options.nsqd_tcp_addresses.empty()) fatal(exit_code::usage, "no --nsqd-tcp-address");
  for (const auto& p : {options.topic_pointer, options.body_pointer}) {
    if (p.empty()) continue;
    try {
      (void)nlohmann::json::json_pointer(p);
    } catch (const nlohmann::json::exception&) {
      fatal(exit_code::usage, "\"{}\" is not a JSON Pointer (RFC 6901), e.g. /args/to", p);
    }
  }
  for (const auto& in : options.inputs)
    if (in != "-" && ::access(in.c_str(), R_OK) != 0) fatal(exit_code::no_input, "{}: cannot be read", in);
  publisher p(options);
  return p.run();
}

int exit_status(const publish_result& r) {
  if (!r.broker_reached && r.rejected > 0) return exit_code::unavailable;
  if (r.rejected > 0) return exit_code::data_error;
  return exit_code::ok;
}

}  // namespace pipekit::nsq
