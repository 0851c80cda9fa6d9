#include "pipekit/nsq/publisher.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <condition_variable>
#include <deque>
#include <limits>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <simdjson.h>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/rejects.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_session.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/nsq/client.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::nsq {
namespace {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr auto backoff_min = std::chrono::milliseconds(100);
constexpr auto backoff_max = std::chrono::milliseconds(5000);
constexpr std::int64_t default_max_body_size = 5 * 1024 * 1024;

// One input line on its way: published when every copy of it was acknowledged.
struct item {
  std::uint32_t off = 0, len = 0;  // its body in the batch's arena
  std::uint64_t line = 0;
  std::uint32_t source = 0;
  std::uint32_t copies_left = 0;
  bool failed = false;
};

// Consecutive lines of one topic, batched by the reader: bodies in one arena, no allocation per line.
struct batch {
  std::string topic;
  std::string arena;
  std::vector<item> items;
  std::size_t unfinished = 0;
  clock::time_point opened;     // first line added (for --batch-timeout)
  clock::time_point first_try;  // handed to the brokers (for --retry-timeout)
  std::string last_error;
  std::string_view body(const item& it) const { return {arena.data() + it.off, it.len}; }
};
using batch_ptr = std::shared_ptr<batch>;

// What one command carries: items [begin, end) of a batch; MPUB for several, PUB for one
// (DPUB each with --defer).
struct span {
  span() = default;
  span(batch_ptr batch, std::uint32_t first, std::uint32_t last, clock::time_point at = {})
      : b(std::move(batch)), begin(first), end(last), sent(at) {}
  batch_ptr b;
  std::uint32_t begin = 0, end = 0;
  clock::time_point sent;  // written to its broker (for the command's deadline)
  std::uint32_t size() const { return end - begin; }
};

// Thread-safe front for the rejects output: the reader thread reports bad lines, the io thread
// reports lines the brokers would not take.
class reject_sink {
 public:
  explicit reject_sink(const std::string& path) : r_(path.empty() ? io::rejects() : io::rejects(path)) {}
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

// One broker: its connection, what it has in flight (answers come back in order) and, in
// "all" mode, its own queue of copies to send.
struct broker {
  std::string address;
  bool http = false;  // nsqd's HTTP API instead of TCP
  std::unique_ptr<pipekit::net::http_session> http_session;
  clock::time_point down_until;  // http: after a failure, not before this
  std::shared_ptr<client> conn;
  std::deque<span> in_flight;
  std::deque<span> queue;
  std::chrono::milliseconds backoff = backoff_min;
  std::unique_ptr<net::steady_timer> retry_timer;
  std::int64_t max_msg_size = std::numeric_limits<std::int64_t>::max();  // nsqd does not say; nsq-broker may
  std::int64_t max_body_size = default_max_body_size;
  std::string dead;  // why it failed in a way retries will not cure (TLS, AUTH, a --defer it refuses)
  std::string_view dead_code;  // the reject code for what only it could take
  bool ready() const {
    return dead.empty() && (http ? clock::now() >= down_until : conn && conn->ready() && !conn->closed());
  }
};

class publisher {
 public:
  explicit publisher(const publish_options& o) : o_(o), rejects_(o.rejects_path), tick_(io_) {
    if (o_.connection.tls.wanted()) tls_ = pipekit::net::tls_context::client(o_.connection.tls);  // bad files end the program here
    for (const auto& a : o_.nsqd_tcp_addresses) {
      auto b = std::make_unique<broker>();
      b->address = a;
      b->retry_timer = std::make_unique<net::steady_timer>(io_);
      brokers_.push_back(std::move(b));
    }
    for (const auto& a : o_.nsqd_http_addresses) {
      auto b = std::make_unique<broker>();
      b->address = a;
      b->http = true;
      b->retry_timer = std::make_unique<net::steady_timer>(io_);
      brokers_.push_back(std::move(b));
    }
    if (o_.rate > 0) batch_size_ = std::max<std::size_t>(1, std::min<std::size_t>(o_.batch_size, static_cast<std::size_t>(o_.rate / 10)));
    else batch_size_ = std::max<std::size_t>(1, o_.batch_size);
    max_queued_ = std::max<std::size_t>(batch_size_ * o_.in_flight * brokers_.size() * 2, 20000);
    command_timeout_ = std::max(o_.retry_timeout / 2, std::chrono::milliseconds(1));
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_fd_ < 0) fatal(exit_code::software, "eventfd: {}", std::strerror(errno));
  }
  ~publisher() { ::close(wake_fd_); }
  publisher(const publisher&) = delete;
  publisher& operator=(const publisher&) = delete;

  publish_result run();

 private:
  // --- reader thread ---
  void read_inputs();
  void read_source(const std::string& path, std::uint32_t source);
  // slack: bytes readable past the end of text (simdjson reads up to SIMDJSON_PADDING beyond it).
  void add_line(std::string_view text, std::uint64_t line, std::uint32_t source, const std::string& name,
                std::size_t slack = 0);
  void wait_or_post_partial(int fd);
  void post(batch_ptr b);
  void post_all();

  // --- io thread ---
  void accept(batch_ptr b);
  void input_done();
  void queue_front(broker& br, span s);
  void queue_back(broker& br, span s);
  void pump();
  void pump(broker& br);
  bool send_to(broker& br, span s);
  void send_http(broker& br, span s);
  void connect(broker& br);
  void on_ready(broker& br, const json& identify);
  void on_response(broker& br, std::string_view data);
  void on_error(broker& br, std::string_view data);
  void on_close(broker& br, const std::string& why);
  void failed(broker& br, span s, std::string_view code, const std::string& why, bool transient);
  void reject(const span& s, std::string_view code, const std::string& why);
  void item_done(batch& b, item& it);
  void abandon();
  clock::time_point deadline(const span& s) const;
  void check_deadlines(broker& br);
  void on_tick();
  void maybe_finish();
  void stop(int signal);
  void stop_reader();

  const publish_options& o_;
  net::io_context io_;
  std::shared_ptr<pipekit::net::tls_context> tls_;  // --tls: one context for every connection
  reject_sink rejects_;
  std::vector<std::string> sources_;
  std::vector<std::unique_ptr<broker>> brokers_;
  std::size_t batch_size_ = 200;
  std::size_t max_queued_ = 20000;
  std::chrono::milliseconds command_timeout_;  // a command unanswered this long: its connection is dropped

  // reader thread only
  std::unordered_map<std::string, batch_ptr> open_;  // partial batches by topic
  simdjson::dom::parser json_check_;

  // reader <-> io thread
  std::mutex mu_;
  std::condition_variable room_;
  std::size_t queued_ = 0;  // lines posted and not yet finished
  std::atomic<bool> stopping_{false};
  int wake_fd_ = -1;  // an eventfd, written to stop the reader: it polls it beside its input
  std::exception_ptr reader_error_;

  // io thread only
  std::deque<span> waiting_;  // ready to send, no broker free (round-robin, failover)
  net::steady_timer tick_;
  bool input_done_ = false;
  bool finished_ = false;
  bool abandoned_ = false;  // a second signal: whatever is not published yet is rejected
  std::size_t next_broker_ = 0;
  std::uint64_t unfinished_batches_ = 0;
  double tokens_ = 0;
  clock::time_point tokens_at_ = clock::now();
  clock::time_point last_progress_;
  publish_result result_;
  std::atomic<std::uint64_t> lines_{0}, empty_{0}, read_rejects_{0};
  clock::time_point started_ = clock::now();
};

// ---------------------------------------------------------------------------------------------
// Reading and batching (its own thread: a slow pipe never stalls heartbeats or answers)

void publisher::add_line(std::string_view text, std::uint64_t line, std::uint32_t source, const std::string& name,
                         std::size_t slack) {
  auto reject = [&](std::string_view code, const std::string& why) {
    rejects_.add(name, line, code, why, text);
    ++read_rejects_;
  };
  std::string_view topic = o_.topic;
  std::string body_storage;
  std::string topic_storage;
  std::string_view body = text;
  if (!o_.topic_pointer.empty() || !o_.body_pointer.empty()) {
    json doc = json::parse(text, nullptr, false);
    if (doc.is_discarded()) return reject("invalid_json", "not valid JSON");
    auto at = [&](const std::string& pointer) -> const json* {
      try {
        return &doc.at(json::json_pointer(pointer));
      } catch (const json::exception&) {
        return nullptr;
      }
    };
    if (!o_.topic_pointer.empty()) {
      const json* t = at(o_.topic_pointer);
      if (!t || !t->is_string())
        return reject("missing_field", fmt::format("no string at {} for the topic", o_.topic_pointer));
      topic_storage = t->get<std::string>();
      topic = topic_storage;
    }
    if (!o_.body_pointer.empty()) {
      const json* b = at(o_.body_pointer);
      if (!b) return reject("missing_field", fmt::format("nothing at {} for the body", o_.body_pointer));
      body_storage = b->dump(-1, ' ', false, json::error_handler_t::replace);
      body = body_storage;
    }
  } else if (!o_.raw) {
    // simdjson validates at memory speed; numbers it cannot hold (beyond 64 bits) are still
    // valid JSON, so those lines get a second opinion.
    // In the reader's buffer a line is usually followed by enough bytes to parse it in place.
    auto err = json_check_.parse(text.data(), text.size(), slack < simdjson::SIMDJSON_PADDING).error();
    if (err && (err != simdjson::NUMBER_ERROR || !json::accept(text)))
      return reject("invalid_json", "not valid JSON (use --raw to publish lines as they are)");
  }
  if (!is_valid_topic_name(topic)) return reject("bad_topic", fmt::format("\"{}\" is not a valid topic name", topic));

  auto it = open_.find(std::string(topic));
  if (it == open_.end()) {
    auto b = std::make_shared<batch>();
    b->topic = topic;
    b->opened = clock::now();
    b->items.reserve(batch_size_);
    b->arena.reserve(std::min<std::size_t>(batch_size_ * (body.size() + body.size() / 4 + 16), 8u << 20));
    it = open_.emplace(b->topic, std::move(b)).first;
  }
  batch& b = *it->second;
  b.items.push_back({static_cast<std::uint32_t>(b.arena.size()), static_cast<std::uint32_t>(body.size()), line, source});
  b.arena.append(body);
  if (b.items.size() >= batch_size_) {
    batch_ptr full = std::move(it->second);
    open_.erase(it);
    post(std::move(full));
  }
}

void publisher::post(batch_ptr b) {
  std::size_t n = b->items.size();
  {
    std::lock_guard lock(mu_);
    queued_ += n;
  }
  net::post(io_, [this, b = std::move(b)]() mutable { accept(std::move(b)); });
  std::unique_lock lock(mu_);
  room_.wait(lock, [&] { return queued_ < max_queued_ || stopping_.load(); });
}

void publisher::post_all() {
  while (!open_.empty()) {
    batch_ptr b = std::move(open_.begin()->second);
    open_.erase(open_.begin());
    post(std::move(b));
  }
}

// Before read(2) could block: partial batches wait for more input until --batch-timeout after
// their first line, then go (a regular file never blocks, so its batches are always full).
void publisher::wait_or_post_partial(int fd) {
  while (!open_.empty()) {
    clock::time_point oldest = clock::time_point::max();
    for (auto& [topic, b] : open_) oldest = std::min(oldest, b->opened);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(oldest + o_.batch_timeout - clock::now());
    if (left.count() <= 0) break;
    pollfd p[2] = {{wake_fd_, POLLIN, 0}, {fd, POLLIN, 0}};
    int rc = ::poll(p, 2, static_cast<int>(std::min<std::int64_t>(left.count(), 60000)));
    if (rc > 0 && p[0].revents != 0) break;  // stopping: what is open goes now
    if (rc > 0) return;                      // more input (or its end): read it
  }
  post_all();
}

// After a stop the lines already read (they have left the pipe) are still taken; nothing more
// is read, and the start of a line that had not ended is rejected (code interrupted).
void publisher::read_source(const std::string& path, std::uint32_t source) {
  io::line_reader reader(path);
  reader.stop_on(wake_fd_);
  reader.on_refill([&] { wait_or_post_partial(reader.fd()); });
  while (auto l = reader.next()) {
    ++lines_;
    if (l->too_long) {
      rejects_.add(reader.source(), l->number, "too_large", "line longer than 16 MiB", "");
      ++read_rejects_;
    } else if (l->text.empty()) {
      ++empty_;
    } else {
      add_line(l->text, l->number, source, reader.source(), l->slack);
    }
  }
  if (reader.stopped() && !reader.unfinished().empty()) {
    ++lines_;
    rejects_.add(reader.source(), reader.line_number() + 1, "interrupted",
                 "stopped before this line ended (no newline yet); only its start was read", reader.unfinished());
    ++read_rejects_;
  }
}

// The reader thread: always joined by run(); stop_reader() ends it within a refill.
void publisher::read_inputs() {
  try {
    if (o_.message) {
      ++lines_;
      add_line(*o_.message, 1, 0, sources_[0]);
    } else {
      for (std::uint32_t i = 0; i < sources_.size() && !stopping_; ++i)
        read_source(o_.inputs.empty() ? "-" : o_.inputs[i], i);
    }
  } catch (...) {
    std::lock_guard lock(mu_);
    reader_error_ = std::current_exception();
  }
  post_all();
  net::post(io_, [this] { input_done(); });
}

// ---------------------------------------------------------------------------------------------
// Dispatch (io thread)

void publisher::accept(batch_ptr b) {
  if (finished_) {
    // Cannot happen (the io thread finishes only after the reader's last post); should it ever,
    // its lines are reported, not lost.
    log::error("internal error: {} lines arrived after publishing finished; rejected", b->items.size());
    for (auto& it : b->items)
      rejects_.add(sources_.at(it.source), it.line, "internal", "arrived after publishing finished", b->body(it));
    rejects_.flush();
    return;
  }
  ++unfinished_batches_;
  b->unfinished = b->items.size();
  b->first_try = clock::now();
  std::uint32_t copies = o_.mode == publish_mode::all && !abandoned_ ? static_cast<std::uint32_t>(brokers_.size()) : 1;
  for (auto& it : b->items) it.copies_left = copies;
  span s{std::move(b), 0, 0};
  s.end = static_cast<std::uint32_t>(s.b->items.size());
  if (abandoned_) return reject(s, "interrupted", "a second signal ended the run before it was published");
  if (o_.mode == publish_mode::all) {
    for (auto& br : brokers_) br->queue.push_back(s);
  } else {
    waiting_.push_back(std::move(s));
  }
  pump();
}

void publisher::input_done() {
  input_done_ = true;
  maybe_finish();
}

void publisher::queue_front(broker& br, span s) {
  if (o_.mode == publish_mode::all) br.queue.push_front(std::move(s));
  else waiting_.push_front(std::move(s));
}

void publisher::queue_back(broker& br, span s) {
  if (o_.mode == publish_mode::all) br.queue.push_back(std::move(s));
  else waiting_.push_back(std::move(s));
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
    span s = std::move(waiting_.front());
    waiting_.pop_front();
    if (!send_to(*target, s)) {
      waiting_.push_front(std::move(s));
      return;
    }
  }
}

void publisher::pump(broker& br) {
  while (br.ready() && !br.queue.empty() && br.in_flight.size() < o_.in_flight) {
    span s = std::move(br.queue.front());
    br.queue.pop_front();
    if (!send_to(br, s)) {
      br.queue.push_front(std::move(s));
      return;
    }
  }
}

// Writes the span's command(s) to br. False when the rate limit says wait.
bool publisher::send_to(broker& br, span s) {
  const batch& b = *s.b;
  if (clock::now() - b.first_try >= o_.retry_timeout) {  // e.g. taken back from a broker that did not answer
    reject(s, "unavailable", fmt::format("not published within --retry-timeout: {}",
                                         b.last_error.empty() ? "it waited to be sent" : b.last_error));
    return true;
  }
  std::int64_t total = 4;
  bool oversized = false;
  for (std::uint32_t i = s.begin; i < s.end; ++i) {
    total += 4 + b.items[i].len;
    oversized |= b.items[i].len > br.max_msg_size;
  }
  if (oversized || (!o_.defer && s.size() > 1 && total > br.max_body_size)) {
    if (s.size() == 1) {
      failed(br, s, "too_large", fmt::format("{} bytes, over the broker's max-msg-size of {}", b.items[s.begin].len, br.max_msg_size), false);
      return true;
    }
    // Halves until each part fits (and a message too big for the broker stands alone).
    std::uint32_t mid = s.begin + s.size() / 2;
    queue_front(br, {s.b, mid, s.end});
    return send_to(br, {s.b, s.begin, mid});
  }
  if (o_.rate > 0) {
    auto now = clock::now();
    tokens_ = std::min(tokens_ + o_.rate * std::chrono::duration<double>(now - tokens_at_).count(),
                       std::max(o_.rate / 10, 1.0) + static_cast<double>(batch_size_));
    tokens_at_ = now;
    if (tokens_ < static_cast<double>(s.size())) return false;  // on_tick pumps again
    tokens_ -= static_cast<double>(s.size());
  }
  if (br.http) {
    send_http(br, std::move(s));
    return true;
  }
  std::string& out = br.conn->output();
  char len[4];
  s.sent = clock::now();
  if (o_.defer) {
    std::string line = fmt::format("DPUB {} {}", b.topic, o_.defer->count());
    for (std::uint32_t i = s.begin; i < s.end; ++i) {
      append_command(out, line, b.body(b.items[i]));
      br.in_flight.push_back({s.b, i, i + 1, s.sent});
    }
  } else if (s.size() == 1) {
    out.append("PUB ").append(b.topic).push_back('\n');
    put_u32(len, b.items[s.begin].len);
    out.append(len, 4).append(b.body(b.items[s.begin]));
    br.in_flight.push_back(std::move(s));
  } else {
    out.append("MPUB ").append(b.topic).push_back('\n');
    put_u32(len, static_cast<std::uint32_t>(total));
    out.append(len, 4);
    put_u32(len, s.size());
    out.append(len, 4);
    for (std::uint32_t i = s.begin; i < s.end; ++i) {
      put_u32(len, b.items[i].len);
      out.append(len, 4).append(b.body(b.items[i]));
    }
    br.in_flight.push_back(std::move(s));
  }
  br.conn->flush();
  return true;
}

// nsqd's HTTP API, synchronously on the io thread (one request at a time per address, the
// connection kept alive): /mpub?binary=true for several, /pub for one (with defer).
void publisher::send_http(broker& br, span s) {
  const batch& b = *s.b;
  if (!br.http_session) {
    try {
      pipekit::net::http_session_options so{.connect_timeout = o_.connect_timeout, .max_body = 1u << 20};
      br.http_session = std::make_unique<pipekit::net::http_session>("http://" + br.address, so);
    } catch (const std::invalid_argument& e) {
      throw option_error(option_error::kind::usage, {"nsqd_http_address"}, "{} " + br.address + ": " + e.what());
    }
  }
  std::vector<span> requests;
  if (o_.defer || s.size() == 1) {
    for (std::uint32_t i = s.begin; i < s.end; ++i) requests.push_back({s.b, i, i + 1});
  } else {
    requests.push_back(s);
  }
  for (std::size_t r = 0; r < requests.size(); ++r) {
    const span& q = requests[r];
    std::string target, body;
    if (q.size() == 1) {
      target = fmt::format("/pub?topic={}", util::url_escape(b.topic));
      if (o_.defer) target += fmt::format("&defer={}", o_.defer->count());
      body.assign(b.body(b.items[q.begin]));
    } else {
      target = fmt::format("/mpub?topic={}&binary=true", util::url_escape(b.topic));
      char len[4];
      put_u32(len, q.size());
      body.append(len, 4);
      for (std::uint32_t i = q.begin; i < q.end; ++i) {
        put_u32(len, b.items[i].len);
        body.append(len, 4).append(b.body(b.items[i]));
      }
    }
    span timed = q;
    timed.sent = clock::now();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline(timed) - timed.sent);
    // The TCP connections' heartbeats wait meanwhile: a broker closes a client silent for two.
    left = std::max(std::min(left, client_options{}.heartbeat_interval), std::chrono::milliseconds(1));
    pipekit::net::http_answer answer;
    std::string failure;  // no answer came: why
    try {
      answer = br.http_session->post(target, "application/octet-stream", body, left);
    } catch (const pipekit::net::http_error& e) {
      failure = e.what();
    }
    if (failure.empty() && answer.status == 200) {
      result_.broker_reached = true;
      br.backoff = backoff_min;
      for (std::uint32_t i = q.begin; i < q.end; ++i) item_done(*q.b, q.b->items[i]);
      continue;
    }
    std::string why;
    std::string code;
    if (!failure.empty()) {
      why = fmt::format("{}: {}", br.address, failure);
    } else {
      result_.broker_reached = true;
      auto j = json::parse(answer.body, nullptr, false);
      code = j.is_object() ? j.value("message", "") : "";
      why = fmt::format("{}: HTTP {} {}", br.address, answer.status, code.empty() ? answer.body.substr(0, 200) : code);
    }
    bool transient = !failure.empty() || answer.status >= 500;
    if (transient) {
      log::warn("{}; retrying in {} ms", why, br.backoff.count());
      br.down_until = clock::now() + br.backoff;
      br.backoff = std::min(br.backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(backoff_max));
    }
    // This request and the ones not sent yet go back (or, for a refusal, are split / rejected).
    for (std::size_t later = requests.size(); later-- > r + 1;) queue_front(br, requests[later]);
    failed(br, q, code == "MSG_TOO_BIG" ? "too_large" : code, why, transient);
    return;
  }
}

// ---------------------------------------------------------------------------------------------
// Connections

void publisher::connect(broker& br) {
  if (br.http) return;
  client_options co;
  co.address = br.address;
  co.connect_timeout = o_.connect_timeout;
  co.connection = o_.connection;
  co.tls = tls_;
  client::handlers h;
  h.on_ready = [this, &br](const json& id) { on_ready(br, id); };
  h.on_response = [this, &br](std::string_view d) { on_response(br, d); };
  h.on_error = [this, &br](std::string_view d) { on_error(br, d); };
  h.on_close = [this, &br](const std::string& why) { on_close(br, why); };
  br.conn = client::create(io_, co, std::move(h));
  br.conn->start();
}

void publisher::on_ready(broker& br, const json& id) {
  result_.broker_reached = true;  // the backoff is reset by the first OK: a broker that takes
                                  // connections but fails every command is retried ever slower
  if (id.contains("max_msg_size")) br.max_msg_size = id.value("max_msg_size", br.max_msg_size);
  br.max_body_size = id.value("max_body_size", default_max_body_size);
  log::debug("{}: connected", br.address);
  pump();
}

void publisher::on_response(broker& br, std::string_view data) {
  if (data != "OK" || br.in_flight.empty()) {
    log::warn("{}: unexpected response \"{}\"", br.address, data);
    return;
  }
  br.backoff = backoff_min;
  span s = std::move(br.in_flight.front());
  br.in_flight.pop_front();
  for (std::uint32_t i = s.begin; i < s.end; ++i) item_done(*s.b, s.b->items[i]);
  pump();
}

// nsqd's PUB/MPUB/DPUB errors close the connection; what was sent after the failed command was
// not processed and is sent again by on_close.
void publisher::on_error(broker& br, std::string_view data) {
  std::string text(data);
  std::string code = text.substr(0, text.find(' '));
  if (br.in_flight.empty()) {
    log::warn("{}: {}", br.address, text);
    return;
  }
  span s = std::move(br.in_flight.front());
  br.in_flight.pop_front();
  // E_AUTH_FAILED here: the broker's AUTH expired and its auth server did not renew it; the next
  // connection AUTHs again, and a refusal there is final.
  bool transient = code == "E_PUB_FAILED" || code == "E_MPUB_FAILED" || code == "E_DPUB_FAILED" ||
                   code == "E_AUTH_FAILED";
  if (code == "E_INVALID" && o_.defer) {
    // A --defer over the broker's --max-req-timeout: every DPUB to it would get the same answer
    // (each on a new connection, as nsqd closes it), so it takes none.
    br.dead = fmt::format("{}: {}", br.address, text);
    br.dead_code = "broker_rejected";
  }
  failed(br, std::move(s), code, fmt::format("{}: {}", br.address, text), transient);
  if (!br.dead.empty() && br.conn && !br.conn->closed()) {
    br.conn->close();
    on_close(br, text);
  }
}

void publisher::on_close(broker& br, const std::string& why) {
  if (finished_) return;
  // A certificate that does not verify or a refused AUTH will not pass on the next try either:
  // that broker is not retried, and what waits for it is rejected at once (on_tick) with the reason.
  if (br.dead.empty() && br.conn && br.conn->failed_permanently()) {
    using final_failure = client::final_failure;
    br.dead = fmt::format("{}: {}", br.address, why);
    auto f = br.conn->permanent_failure();
    br.dead_code = f == final_failure::auth_failed    ? "auth_failed"
                   : f == final_failure::unauthorized ? "unauthorized"
                                                      : "unavailable";
  }
  if (!br.dead.empty()) {
    log::error("{}; not retried", br.dead);
  } else {
    log::warn("{}: {}; reconnecting in {} ms", br.address, why, br.backoff.count());
  }
  auto in_flight = std::move(br.in_flight);
  br.in_flight.clear();
  br.conn.reset();
  // Unanswered commands go again (after this broker reconnects, or elsewhere), in input order.
  for (auto it = in_flight.rbegin(); it != in_flight.rend(); ++it) {
    it->b->last_error = fmt::format("{}: {}", br.address, why);
    queue_front(br, std::move(*it));
  }
  if (br.dead.empty()) {
    br.retry_timer->expires_after(br.backoff);
    br.backoff = std::min(br.backoff * 2, std::chrono::duration_cast<std::chrono::milliseconds>(backoff_max));
    br.retry_timer->async_wait([this, &br](boost::system::error_code ec) {
      if (!ec && !finished_ && !abandoned_) connect(br);
    });
  }
  pump();
  if (!br.dead.empty()) on_tick();  // reject now what only it could take
}

// ---------------------------------------------------------------------------------------------
// Outcomes

void publisher::failed(broker& br, span s, std::string_view code, const std::string& why, bool transient) {
  s.b->last_error = why;
  if (transient) {
    if (clock::now() - s.b->first_try >= o_.retry_timeout)
      return reject(s, "unavailable", fmt::format("not published within --retry-timeout: {}", why));
    return queue_back(br, std::move(s));
  }
  // Refusals of the topic itself (not of one message) reject the whole command at once.
  const bool topic_refused = code == "E_UNAUTHORIZED" || code == "E_AUTH_FIRST" || code == "E_BAD_TOPIC";
  if (s.size() > 1 && !topic_refused) {
    // One bad message fails the whole MPUB: send them one by one to find it.
    for (std::uint32_t i = s.end; i-- > s.begin;) queue_front(br, {s.b, i, i + 1});
    return;
  }
  // nsqd does not announce its max-msg-size: a message over it is known by the answer.
  bool too_big = code == "too_large" || (code == "E_BAD_MESSAGE" && why.find("too big") != std::string::npos);
  reject(s, too_big ? "too_large" : code == "E_UNAUTHORIZED" ? "unauthorized" : "broker_rejected", why);
}

void publisher::reject(const span& s, std::string_view code, const std::string& why) {
  for (std::uint32_t i = s.begin; i < s.end; ++i) {
    item& it = s.b->items[i];
    if (!it.failed) {
      it.failed = true;
      rejects_.add(sources_.at(it.source), it.line, code, why, s.b->body(it));
      ++result_.rejected;
      if (code == "auth_failed" || code == "unauthorized") ++result_.refused;
    }
    item_done(*s.b, it);
  }
}

void publisher::item_done(batch& b, item& it) {
  if (it.copies_left == 0 || --it.copies_left > 0) return;
  if (!it.failed) ++result_.published;
  if (--b.unfinished > 0) return;
  --unfinished_batches_;
  {
    std::lock_guard lock(mu_);
    queued_ -= b.items.size();
  }
  room_.notify_one();
  maybe_finish();
}

// Half of --retry-timeout after it was written, and no later than its lines' --retry-timeout: a
// command's answer is due by then (nsqd answers at once; a durable broker within a sync).
clock::time_point publisher::deadline(const span& s) const {
  return std::min(s.sent + command_timeout_, s.b->first_try + o_.retry_timeout);
}

// A broker that leaves a command unanswered past its deadline is dropped (heartbeats or not):
// what it holds goes to another broker, or again to it after a reconnect, or is rejected.
void publisher::check_deadlines(broker& br) {
  if (finished_ || !br.conn || br.in_flight.empty()) return;
  auto now = clock::now();
  for (const span& s : br.in_flight) {
    if (now < deadline(s)) continue;
    const char* command = o_.defer ? "DPUB" : s.size() == 1 ? "PUB" : "MPUB";
    std::string why = fmt::format("no answer to {} within {} ms", command,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(now - s.sent).count());
    br.conn->close();  // no handler runs after this: on_close is called here
    return on_close(br, why);
  }
}

// Every 100 ms: give up on what waited past --retry-timeout or its command's deadline, pump the
// rate limit, show progress.
void publisher::on_tick() {
  for (auto& br : brokers_) check_deadlines(*br);
  auto now = clock::now();
  const bool all_dead = std::all_of(brokers_.begin(), brokers_.end(), [](const auto& b) { return !b->dead.empty(); });
  auto expire = [&](std::deque<span>& q, broker* br) {
    const broker* dead = br && !br->dead.empty() ? br : all_dead ? brokers_.front().get() : nullptr;
    for (auto it = q.begin(); it != q.end();) {
      if (dead || now - it->b->first_try >= o_.retry_timeout) {
        span s = std::move(*it);
        it = q.erase(it);
        std::string why = s.b->last_error.empty() ? (br ? br->address + ": not connected" : "no broker connected")
                                                  : s.b->last_error;
        if (dead) reject(s, dead->dead_code, fmt::format("not published: {}", dead->dead));
        else reject(s, "unavailable", fmt::format("not published within --retry-timeout: {}", why));
        it = q.begin();  // reject() may have changed the queue; start over (expired ones are gone)
      } else {
        ++it;
      }
    }
  };
  expire(waiting_, nullptr);
  for (auto& br : brokers_) expire(br->queue, br.get());
  pump();
  if (o_.progress && now - last_progress_ >= std::chrono::seconds(1)) {
    last_progress_ = now;
    double secs = std::chrono::duration<double>(now - started_).count();
    std::fprintf(stderr, "\r%s: %llu published, %llu rejected, %.0f msg/s ", std::string(log::tool_name()).c_str(),
                 static_cast<unsigned long long>(result_.published),
                 static_cast<unsigned long long>(result_.rejected + read_rejects_),
                 secs > 0 ? static_cast<double>(result_.published) / secs : 0.0);
  }
  maybe_finish();
  if (finished_) return;
  tick_.expires_after(std::chrono::milliseconds(100));
  tick_.async_wait([this](boost::system::error_code ec) {
    if (!ec) on_tick();
  });
}

void publisher::maybe_finish() {
  if (finished_ || !input_done_ || unfinished_batches_ > 0) return;
  finished_ = true;
  for (auto& br : brokers_) {
    if (br->conn) br->conn->close();
    br->retry_timer->cancel();
  }
  tick_.cancel();
  io_.stop();
}

void publisher::stop(int signal) {
  if (stopping_) {
    if (abandoned_) return;
    log::warn("second signal: rejecting what is not published yet, then exiting");
    result_.signal = signal;
    return abandon();
  }
  log::info("stopping: publishing what was read, then exiting");
  result_.interrupted = true;
  stop_reader();
}

// The reader takes what it has read and ends: at once if it waits for input or for room.
void publisher::stop_reader() {
  stopping_ = true;
  std::uint64_t one = 1;
  [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);  // fails only when already written
  { std::lock_guard lock(mu_); }  // a reader between its look at stopping_ and its wait is waiting now
  room_.notify_all();
}

// A second signal: what is not published yet is rejected now (code interrupted; what was in
// flight may have reached its broker, whose answer is no longer awaited), and the run ends.
void publisher::abandon() {
  abandoned_ = true;
  const std::string why = "a second signal ended the run before it was published";
  for (auto& br : brokers_) {
    if (br->conn) br->conn->close();
    br->conn.reset();
    br->retry_timer->cancel();
    auto in_flight = std::move(br->in_flight);
    auto queue = std::move(br->queue);
    br->in_flight.clear();
    br->queue.clear();
    for (auto& s : in_flight) reject(s, "interrupted", why);
    for (auto& s : queue) reject(s, "interrupted", why);
  }
  auto waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& s : waiting) reject(s, "interrupted", why);
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
  {
    std::thread reader([this] { read_inputs(); });
    struct join_reader {  // on every way out (an exception from a handler too)
      publisher& p;
      std::thread& t;
      ~join_reader() {
        p.stop_reader();
        t.join();
      }
    } join{*this, reader};
    io_.run();
  }
  if (o_.progress) std::fputc('\n', stderr);
  rejects_.flush();
  if (reader_error_) std::rethrow_exception(reader_error_);
  result_.lines = lines_;
  result_.empty = empty_;
  result_.rejected += read_rejects_;
  result_.seconds = std::chrono::duration<double>(clock::now() - started_).count();
  return result_;
}

}  // namespace

publish_result publish(const publish_options& options) {
  if (options.topic.empty() && options.topic_pointer.empty())
    throw option_error(option_error::kind::usage, {"topic", "topic_pointer"}, "{} or {} is required");
  if (!options.topic.empty() && !is_valid_topic_name(options.topic))
    throw option_error(option_error::kind::usage, {"topic"}, "{}: \"" + options.topic + "\" is not a valid topic name");
  if (options.nsqd_tcp_addresses.empty() && options.nsqd_http_addresses.empty())
    throw option_error(option_error::kind::usage, {"nsqd_tcp_address", "nsqd_http_address"}, "no {} or {}");
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
  if (r.signal != 0) return 128 + r.signal;
  if (r.refused > 0) return exit_code::no_perm;
  if (!r.broker_reached && r.rejected > 0) return exit_code::unavailable;
  if (r.rejected > 0) return exit_code::data_error;
  return exit_code::ok;
}

}  // namespace pipekit::nsq
