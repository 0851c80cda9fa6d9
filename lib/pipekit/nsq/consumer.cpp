#include "pipekit/nsq/consumer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_client.hpp"
#include "pipekit/net/tls.hpp"
#include "pipekit/nsq/archive.hpp"
#include "pipekit/nsq/client.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/util/base64.hpp"
#include "pipekit/util/parse.hpp"
#include "pipekit/util/utf8.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::nsq {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr auto backoff_min = std::chrono::milliseconds(250);
constexpr auto backoff_max = std::chrono::milliseconds(8000);
constexpr auto poll_period = std::chrono::milliseconds(10);
constexpr auto hold_poll_period = std::chrono::milliseconds(1);  // a line held back: is the pipe empty yet?
constexpr auto close_deadline = std::chrono::milliseconds(3000);
constexpr auto healthy_after = std::chrono::seconds(5);  // connected this long: reconnect backoff resets
constexpr auto error_log_window = std::chrono::seconds(10);
constexpr int error_log_lines = 5;  // error lines per broker per window; the rest summarised
constexpr std::size_t flush_size = 256 * 1024;
constexpr int error_flood = 50;  // errors from one broker within a second that pause its RDY

enum class sink_kind { pipe, file, terminal, archive };

// --- output formatting ----------------------------------------------------------------------

std::string json_string(std::string_view s) {
  return json(std::string(s)).dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string_view trim(std::string_view s) {
  auto ws = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!s.empty() && ws(s.front())) s.remove_prefix(1);
  while (!s.empty() && ws(s.back())) s.remove_suffix(1);
  return s;
}

// --- the consumer -----------------------------------------------------------------------------

struct broker_conn {
  std::string address;
  bool from_flags = false;
  bool wanted = true;     // given by a flag or listed by lookupd
  bool departing = false; // no longer listed: drain, then CLS
  std::shared_ptr<client> conn;
  std::uint64_t generation = 0;
  bool subscribed = false;
  bool cls_sent = false;
  clock::time_point subscribed_at;
  bool healthy = false;  // a message from this connection was FINished
  std::size_t pending = 0;  // its messages awaiting FIN
  std::int64_t rdy = 0;
  std::int64_t max_rdy = 2500;
  std::chrono::milliseconds msg_timeout{60000};
  std::chrono::milliseconds backoff = backoff_min;
  std::unique_ptr<net::steady_timer> retry_timer;
  std::unique_ptr<net::steady_timer> pause_timer;
  clock::time_point error_window;
  int errors = 0;
  bool paused = false;
  clock::time_point error_log_start;  // rate limit of the error lines
  int error_lines = 0;
  std::uint64_t errors_unlogged = 0;
  std::string last_error;
  bool live() const { return conn && !conn->closed(); }
};
using conn_ptr = std::shared_ptr<broker_conn>;

struct pending_msg {
  conn_ptr c;
  std::uint64_t generation = 0;
  message_id id{};
  std::uint64_t start = 0;  // output offset of its line
  std::uint64_t end = 0;    // output offset just past its line
  clock::time_point touch_at;
};

class consumer {
 public:
  explicit consumer(const tail_options& o)
      : o_(o), poll_timer_(io_), lookupd_timer_(io_), stop_timer_(io_), sync_timer_(io_) {
    channel_ = o_.channel.empty() ? ephemeral_channel_name() : o_.channel;
    if (o_.connection.tls.wanted()) tls_ = pipekit::net::tls_context::client(o_.connection.tls);  // bad files end the program here
    topic_json_ = json_string(o_.topic);
    channel_json_ = json_string(channel_);
  }

  tail_result run();

 private:
  // connections
  conn_ptr add_broker(const std::string& address, bool from_flags);
  void connect(const conn_ptr& c);
  void on_ready(const conn_ptr& c, const json& identify);
  void on_response(const conn_ptr& c, std::string_view data);
  void on_error(const conn_ptr& c, std::string_view data);
  void on_closed(const conn_ptr& c, const std::string& why);
  void schedule_reconnect(const conn_ptr& c);
  void update_rdy();
  void send_rdy(const conn_ptr& c, std::int64_t n);
  void maybe_depart(const conn_ptr& c);
  void send_cls(const conn_ptr& c);
  void close_when_sent(const conn_ptr& c);
  void log_error(const conn_ptr& c, std::string_view data);
  void summarise_errors(const conn_ptr& c);

  // lookupd
  void poll_lookupd();
  void lookupd_round_done();

  // messages and output
  void on_message(const conn_ptr& c, const message_view& m);
  void format(const conn_ptr& c, const message_view& m);
  void requeue_now(const conn_ptr& c, std::string_view id);
  void schedule_flush();
  void flush();
  void write_pipe();
  void after_write();
  void settle(std::uint64_t safe);
  void tick();
  void arm_tick();
  bool reader_gone();
  std::optional<std::uint64_t> consumed();
  void observe();
  std::size_t writable();
  bool no_more_coming() const;
  void output_closed();

  // stopping
  void stop(const char* why);
  void check_stopped();

  // archive mode
  void checkpoint();
  void arm_sync();
  template <class F>
  bool archive_step(F&& f);

  tail_options o_;
  std::string channel_;
  std::string topic_json_, channel_json_;
  net::io_context io_;
  std::shared_ptr<pipekit::net::tls_context> tls_;  // --tls: one context for every connection
  sink_kind sink_ = sink_kind::file;
  std::unique_ptr<net::posix::stream_descriptor> out_desc_;
  int saved_flags_ = -1;
  std::string buf_;      // formatted, not yet handed to the kernel
  std::string writing_;  // being written (pipe)
  std::size_t writing_pos_ = 0;
  bool write_active_ = false;
  bool flush_posted_ = false;
  std::uint64_t appended_ = 0;  // bytes formatted so far
  std::uint64_t written_ = 0;   // bytes the kernel took
  // Pipe: what the reader had consumed at the last look, and when each amount was first seen.
  std::uint64_t observed_ = 0;
  std::deque<std::pair<std::uint64_t, clock::time_point>> seen_;
  bool holding_ = false;  // the newest line waits for the pipe to empty (see writable())
  std::deque<pending_msg> pending_;
  std::map<std::string, conn_ptr> conns_;
  net::steady_timer poll_timer_;
  bool tick_armed_ = false;
  net::steady_timer lookupd_timer_;
  std::size_t lookupd_waiting_ = 0;
  bool lookupd_any_ok_ = false;
  std::set<std::string> lookupd_found_;
  net::steady_timer stop_timer_;
  bool stopping_ = false;
  bool in_stop_ = false;
  std::exception_ptr give_up_;  // a broker failed in a way retries will not cure
  std::unique_ptr<archive_writer> archive_;
  bool archive_failed_ = false;
  net::steady_timer sync_timer_;
  bool count_reached_ = false;
  tail_result r_;
};

conn_ptr consumer::add_broker(const std::string& address, bool from_flags) {
  auto c = std::make_shared<broker_conn>();
  c->address = address;
  c->from_flags = from_flags;
  c->retry_timer = std::make_unique<net::steady_timer>(io_);
  c->pause_timer = std::make_unique<net::steady_timer>(io_);
  conns_[address] = c;
  connect(c);
  return c;
}

void consumer::connect(const conn_ptr& c) {
  client_options co;
  co.address = c->address;
  co.connect_timeout = o_.connect_timeout;
  co.heartbeat_interval = o_.heartbeat_interval;
  co.msg_timeout = o_.msg_timeout;
  co.connection = o_.connection;
  co.tls = tls_;
  c->subscribed = false;
  c->cls_sent = false;
  c->healthy = false;
  c->subscribed_at = {};
  c->rdy = 0;
  ++c->generation;
  std::weak_ptr<broker_conn> w = c;
  client::handlers h;
  h.on_ready = [this, w](const json& id) {
    if (auto s = w.lock()) on_ready(s, id);
  };
  h.on_response = [this, w](std::string_view d) {
    if (auto s = w.lock()) on_response(s, d);
  };
  h.on_error = [this, w](std::string_view d) {
    if (auto s = w.lock()) on_error(s, d);
  };
  h.on_message = [this, w](const message_view& m) {
    if (auto s = w.lock()) on_message(s, m);
  };
  h.on_close = [this, w](const std::string& why) {
    if (auto s = w.lock()) on_closed(s, why);
  };
  c->conn = client::create(io_, co, std::move(h));
  c->conn->start();
}

void consumer::on_ready(const conn_ptr& c, const json& identify) {
  if (identify.contains("msg_timeout") && identify["msg_timeout"].is_number_integer()) {
    c->msg_timeout = std::chrono::milliseconds(identify["msg_timeout"].get<std::int64_t>());
  } else if (o_.msg_timeout.count() > 0) {
    c->msg_timeout = o_.msg_timeout;
  }
  if (identify.contains("max_rdy_count") && identify["max_rdy_count"].is_number_integer()) {
    c->max_rdy = std::max<std::int64_t>(1, identify["max_rdy_count"].get<std::int64_t>());
  }
  if (stopping_) return send_cls(c);
  append_command(c->conn->output(), fmt::format("SUB {} {}", o_.topic, channel_));
  c->conn->flush();
}

void consumer::on_response(const conn_ptr& c, std::string_view data) {
  if (data == "CLOSE_WAIT") return close_when_sent(c);
  if (!c->subscribed && data == "OK" && !c->cls_sent) {
    c->subscribed = true;
    c->subscribed_at = clock::now();  // the backoff resets once it proves healthy (on_closed)
    log::info("{}: subscribed to {}/{}", c->address, o_.topic, channel_);
    if (stopping_) return send_cls(c);
    update_rdy();
  }
}

// At most error_log_lines lines per broker per error_log_window; the rest are counted and
// summarised in one line (a broker flooding errors must not flood the log).
void consumer::log_error(const conn_ptr& c, std::string_view data) {
  auto now = clock::now();
  if (now - c->error_log_start >= error_log_window) {
    summarise_errors(c);
    c->error_log_start = now;
    c->error_lines = 0;
  }
  if (c->error_lines < error_log_lines) {
    ++c->error_lines;
    log::warn("{}: {}", c->address, data);
    if (c->error_lines == error_log_lines) {
      log::warn("{}: further errors within {} s are counted, not logged", c->address, error_log_window.count());
    }
    return;
  }
  ++c->errors_unlogged;
  c->last_error.assign(data.substr(0, 200));
}

void consumer::summarise_errors(const conn_ptr& c) {
  if (c->errors_unlogged == 0) return;
  log::warn("{}: {} more errors not logged (the last: {})", c->address, c->errors_unlogged, c->last_error);
  c->errors_unlogged = 0;
}

void consumer::on_error(const conn_ptr& c, std::string_view data) {
  if (!c->subscribed && data.substr(0, data.find(' ')) == "E_UNAUTHORIZED" && !give_up_) {
    // SUB not granted to this secret (nsqd closes the connection): no retry can change that.
    give_up_ = std::make_exception_ptr(fatal_error(exit_code::no_perm, fmt::format("{}: {}", c->address, data)));
    c->conn->close();
    c->conn.reset();
    c->wanted = false;
    return stop("not authorized");
  }
  log_error(c, data);
  auto now = clock::now();
  if (now - c->error_window > std::chrono::seconds(1)) {
    c->error_window = now;
    c->errors = 0;
  }
  if (++c->errors >= error_flood && !c->paused && c->subscribed) {
    // A flood of errors: stop taking messages from this broker for a while (backoff).
    c->paused = true;
    log::warn("{}: {} errors within a second; pausing for {} ms", c->address, c->errors, c->backoff.count());
    send_rdy(c, 0);
    c->pause_timer->expires_after(c->backoff);
    c->backoff = std::min(c->backoff * 2, backoff_max);
    c->pause_timer->async_wait([this, c](boost::system::error_code ec) {
      if (ec) return;
      c->paused = false;
      c->errors = 0;
      update_rdy();
    });
  }
}

void consumer::on_closed(const conn_ptr& c, const std::string& why) {
  if (c->conn && c->conn->failed_permanently() && !give_up_) {
    // A certificate that does not verify, or a refused AUTH, will not pass on the next try
    // either: hand back what is held, then end with the reason.
    int code = c->conn->permanent_failure() == client::final_failure::tls ? exit_code::unavailable : exit_code::no_perm;
    give_up_ = std::make_exception_ptr(fatal_error(code, fmt::format("{}: {}", c->address, why)));
    c->conn.reset();
    c->wanted = false;
    return stop("a broker cannot be used");
  }
  c->conn.reset();
  // The backoff resets only after a healthy connection: one that delivered a message we FINished
  // or stayed up healthy_after. A broker that accepts SUB and then breaks is retried ever slower.
  if (c->healthy || (c->subscribed && clock::now() - c->subscribed_at >= healthy_after)) c->backoff = backoff_min;
  c->subscribed = false;
  c->rdy = 0;
  c->pending = 0;  // their ids died with the connection; the broker redelivers them
  summarise_errors(c);
  if (stopping_ || c->departing) {
    if (c->departing) conns_.erase(c->address);
    check_stopped();
    return;
  }
  log::warn("{}: connection lost: {}; reconnecting in {} ms", c->address, why, c->backoff.count());
  schedule_reconnect(c);
  update_rdy();
}

void consumer::schedule_reconnect(const conn_ptr& c) {
  c->retry_timer->expires_after(c->backoff);
  c->backoff = std::min(c->backoff * 2, backoff_max);
  c->retry_timer->async_wait([this, c](boost::system::error_code ec) {
    if (ec || stopping_ || !c->wanted || c->conn) return;
    connect(c);
  });
}

void consumer::send_rdy(const conn_ptr& c, std::int64_t n) {
  if (!c->live() || !c->subscribed || c->cls_sent || c->rdy == n) return;
  c->rdy = n;
  append_command(c->conn->output(), fmt::format("RDY {}", n));
  c->conn->flush();
}

// RDY spread across the subscribed connections as go-nsq does: max_in_flight / connections, at
// least 1 each; with -n, never more than what is still wanted.
void consumer::update_rdy() {
  if (stopping_) return;
  std::size_t n = 0;
  for (auto& [a, c] : conns_) {
    if (c->subscribed && !c->departing && c->live()) ++n;
  }
  if (n == 0) return;
  std::int64_t per = std::max<std::int64_t>(1, static_cast<std::int64_t>(o_.max_in_flight / n));
  if (o_.count > 0) {
    std::int64_t left = count_reached_ ? 0 : static_cast<std::int64_t>(o_.count - r_.written);
    per = std::min(per, std::max<std::int64_t>(left, count_reached_ ? 0 : 1));
  }
  for (auto& [a, c] : conns_) {
    if (!c->subscribed || !c->live()) continue;
    std::int64_t want = (c->departing || c->paused) ? 0 : std::min(per, c->max_rdy);
    send_rdy(c, want);
  }
}

void consumer::send_cls(const conn_ptr& c) {
  if (!c->live()) return;
  if (!c->subscribed) {
    // Not subscribed yet: nothing to hand back; just close.
    c->conn->close();
    c->conn.reset();
    if (c->departing) conns_.erase(c->address);
    return;
  }
  if (c->cls_sent) return;
  c->cls_sent = true;
  append_command(c->conn->output(), "CLS");
  c->conn->flush();
}

// CLOSE_WAIT: the broker sends nothing more that needs an answer; close once the REQs of messages
// that arrived after RDY 0 are written (closing with them unsent would strand those on nsqd).
void consumer::close_when_sent(const conn_ptr& c) {
  if (!c->live()) return;
  if (c->conn->unsent_bytes() > 0) {
    c->retry_timer->expires_after(std::chrono::milliseconds(2));
    c->retry_timer->async_wait([this, c](boost::system::error_code ec) {
      if (!ec) close_when_sent(c);
    });
    return;
  }
  log::debug("{}: closed (CLOSE_WAIT)", c->address);
  c->conn->close();
  c->conn.reset();
  c->subscribed = false;
  if (c->departing) conns_.erase(c->address);
  else if (!stopping_ && c->wanted) connect(c);  // listed again by lookupd while it closed
  check_stopped();
}

void consumer::maybe_depart(const conn_ptr& c) {
  if (c->departing && c->pending == 0) send_cls(c);
}

// --- lookupd ----------------------------------------------------------------------------------

void consumer::poll_lookupd() {
  if (stopping_ || o_.lookupd_http_addresses.empty()) return;
  if (lookupd_waiting_ == 0) {
    lookupd_waiting_ = o_.lookupd_http_addresses.size();
    lookupd_any_ok_ = false;
    lookupd_found_.clear();
    for (const auto& a : o_.lookupd_http_addresses) {
      pipekit::net::http_get_options ho;
      ho.accept = "application/vnd.nsq; version=1.0";
      pipekit::net::async_http_get(
          io_, a, "/lookup?topic=" + util::url_escape(o_.topic), ho, [this, a](pipekit::net::http_get_result r) {
            const int status = r.status;
            const std::string& body = r.body;
            const std::string& error = r.error;
            if (status == 200) {
              auto j = json::parse(body, nullptr, false);
              if (j.is_object() && j.contains("data") && j["data"].is_object()) j = j["data"];  // nsqlookupd < 1.0
              if (j.is_object() && j.contains("producers") && j["producers"].is_array()) {
                lookupd_any_ok_ = true;
                for (const auto& p : j["producers"]) {
                  if (!p.is_object() || !p.contains("broadcast_address") || !p.contains("tcp_port")) continue;
                  const auto& ba = p["broadcast_address"];
                  std::string host = ba.is_string() ? ba.get<std::string>() : "";
                  if (host.find(':') != std::string::npos) host = "[" + host + "]";
                  if (!host.empty() && p["tcp_port"].is_number_integer()) {
                    lookupd_found_.insert(fmt::format("{}:{}", host, p["tcp_port"].get<int>()));
                  }
                }
              } else {
                log::warn("lookupd {}: unexpected answer to /lookup", a);
              }
            } else if (status == 404) {
              lookupd_any_ok_ = true;  // TOPIC_NOT_FOUND: no producers yet
              log::debug("lookupd {}: topic {} not found yet", a, o_.topic);
            } else if (status != 0) {
              log::warn("lookupd {}: HTTP {}", a, status);
            } else {
              log::warn("lookupd {}: {}", a, error);
            }
            if (--lookupd_waiting_ == 0) lookupd_round_done();
          });
    }
  }
  lookupd_timer_.expires_after(o_.lookupd_poll_interval);
  lookupd_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) poll_lookupd();
  });
}

void consumer::lookupd_round_done() {
  if (stopping_ || !lookupd_any_ok_) return;  // every lookupd failed: keep what we have
  for (const auto& a : lookupd_found_) {
    auto it = conns_.find(a);
    if (it == conns_.end()) {
      log::info("lookupd: new broker {}", a);
      add_broker(a, false);
    } else if (it->second->departing) {
      // Listed again before it drained: keep it.
      it->second->departing = false;
      it->second->wanted = true;
      if (!it->second->conn) connect(it->second);
    }
  }
  std::vector<conn_ptr> gone;
  for (auto& [a, c] : conns_) {
    if (!c->from_flags && !c->departing && !lookupd_found_.count(a)) gone.push_back(c);
  }
  for (auto& c : gone) {
    log::info("lookupd: broker {} no longer listed; closing it", c->address);
    c->departing = true;
    c->wanted = false;
    c->retry_timer->cancel();
    if (!c->live()) {
      conns_.erase(c->address);
      continue;
    }
    send_rdy(c, 0);
    maybe_depart(c);
  }
  update_rdy();
}

// --- messages ---------------------------------------------------------------------------------

void consumer::requeue_now(const conn_ptr& c, std::string_view id) {
  if (!c->live()) return;
  append_command(c->conn->output(), fmt::format("REQ {} 0", id));
  c->conn->flush();
  ++r_.requeued;
}

void consumer::on_message(const conn_ptr& c, const message_view& m) {
  ++r_.received;
  if (stopping_ || count_reached_ || c->departing) {
    requeue_now(c, m.id);
    return;
  }
  if (archive_ && archive_->rotation_due(buf_.size())) {
    checkpoint();  // what the old file holds is on disk and FINished before it is closed
    if (!archive_step([&] { archive_->close(); }) || stopping_) {
      requeue_now(c, m.id);
      return;
    }
  }
  std::uint64_t start = appended_;
  format(c, m);
  pending_msg p;
  p.c = c;
  p.generation = c->generation;
  std::memcpy(p.id.data(), m.id.data(), std::min(m.id.size(), p.id.size()));
  p.start = start;
  p.end = appended_;
  p.touch_at = clock::now() + c->msg_timeout / 2;
  pending_.push_back(std::move(p));
  ++c->pending;
  ++r_.written;
  if (o_.count > 0 && r_.written >= o_.count) {
    count_reached_ = true;
    for (auto& [a, cc] : conns_) send_rdy(cc, 0);
  }
  if (buf_.size() >= flush_size) flush();
  else schedule_flush();
}

void consumer::format(const conn_ptr& c, const message_view& m) {
  bool utf8 = util::valid_utf8(m.body);
  std::size_t before = buf_.size();
  if (o_.format == tail_format::body && utf8 && std::memchr(m.body.data(), '\n', m.body.size()) == nullptr) {
    buf_.append(m.body).push_back('\n');
  } else {
    buf_.append("{\"id\":").append(json_string(m.id));
    fmt::format_to(std::back_inserter(buf_), ",\"attempts\":{},\"timestamp\":{},\"topic\":", m.attempts,
                   m.timestamp_ns);
    buf_.append(topic_json_).append(",\"channel\":").append(channel_json_).append(",\"broker\":");
    buf_.append(json_string(c->address)).append(",\"body\":");
    if (o_.binary || !utf8) {
      buf_.push_back('"');
      util::append_base64(buf_, m.body);
      buf_.append("\",\"body_encoding\":\"base64\"}\n");
    } else {
      auto t = trim(m.body);
      if (!t.empty() && json::accept(t)) {
        if (t.find_first_of("\r\n") == std::string_view::npos) buf_.append(t);
        else buf_.append(json::parse(t).dump());
      } else {
        buf_.append(json_string(m.body));
      }
      buf_.append("}\n");
    }
  }
  appended_ += buf_.size() - before;
}

void consumer::schedule_flush() {
  if (flush_posted_) return;
  flush_posted_ = true;
  net::post(io_, [this] {
    flush_posted_ = false;
    if (!stopping_) flush();
  });
}

void consumer::flush() {
  if (buf_.empty()) return;
  if (sink_ == sink_kind::archive) {
    if (!archive_step([&] { archive_->write(buf_); })) return;
    buf_.clear();
    written_ = appended_;
    // FIN waits for the fsync; sync early when most of max-in-flight waits for it.
    if (count_reached_ || pending_.size() * 4 >= o_.max_in_flight * 3) checkpoint();
    return;
  }
  if (sink_ == sink_kind::pipe) {
    if (!write_active_) write_pipe();
    return;
  }
  std::size_t pos = 0;
  while (pos < buf_.size()) {
    ssize_t n = ::write(o_.output_fd, buf_.data() + pos, buf_.size() - pos);
    if (n >= 0) {
      pos += static_cast<std::size_t>(n);
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN) {
      pollfd p{o_.output_fd, POLLOUT, 0};
      ::poll(&p, 1, 100);
      continue;
    }
    if (errno == EPIPE) {
      r_.output_closed = true;
      buf_.clear();
      return stop("output closed");
    }
    throw fatal_error(exit_code::io_error, fmt::format("writing the output: {}", std::strerror(errno)));
  }
  buf_.clear();
  written_ = appended_;
  settle(written_);
}

void consumer::write_pipe() {
  if (writing_pos_ >= writing_.size()) {
    writing_.clear();
    writing_pos_ = 0;
    observe();  // a look before each write: reading what it adds proves what was read before
    if (stopping_) return;
    std::size_t n = writable();
    holding_ = n < buf_.size();
    if (n == buf_.size()) writing_.swap(buf_);
    else if (n > 0) {
      writing_.assign(buf_, 0, n);
      buf_.erase(0, n);
    }
    if (holding_) arm_tick();
  }
  if (writing_.empty()) return;
  write_active_ = true;
  out_desc_->async_write_some(net::buffer(writing_.data() + writing_pos_, writing_.size() - writing_pos_),
                              [this](boost::system::error_code ec, std::size_t n) {
                                write_active_ = false;
                                if (ec == net::error::operation_aborted) return;
                                if (ec) {
                                  if (ec == net::error::broken_pipe || ec == net::error::connection_reset) {
                                    r_.output_closed = true;
                                    return stop("output closed");
                                  }
                                  throw fatal_error(exit_code::io_error,
                                                    fmt::format("writing the output: {}", ec.message()));
                                }
                                writing_pos_ += n;
                                written_ += n;
                                after_write();
                                if (stopping_ || write_active_) return;  // tick() may have written on
                                if (writing_pos_ < writing_.size() || !buf_.empty()) write_pipe();
                              });
}

void consumer::after_write() {
  tick();
}

// Pipe mode: the bytes the reader has consumed (written minus FIONREAD's unread), if known.
std::optional<std::uint64_t> consumer::consumed() {
  int unread = 0;
  if (::ioctl(o_.output_fd, FIONREAD, &unread) != 0 || unread < 0 || static_cast<std::uint64_t>(unread) > written_) {
    return std::nullopt;
  }
  return written_ - static_cast<std::uint64_t>(unread);
}

// The pipe rule (man page, ACKNOWLEDGEMENT): a line is FINished once the reader has consumed it
// and then either consumed more bytes in a later read (a reader that comes back for more is done
// with what it read before), or is still there --reader-grace after it consumed it. A reader
// that reads a block and exits (head -1) proves nothing: its lines are requeued.
void consumer::observe() {
  auto now_consumed = consumed();
  if (!now_consumed) return;
  auto now = clock::now();
  if (*now_consumed > observed_) {
    // Bytes up to observed_ were read before the last look, these in a read since.
    std::uint64_t proven = observed_;
    observed_ = *now_consumed;
    seen_.emplace_back(observed_, now);
    settle(proven);
    if (stopping_) return;
  }
  std::uint64_t graced = 0;
  while (!seen_.empty() && now - seen_.front().second >= o_.reader_grace) {
    graced = seen_.front().first;
    seen_.pop_front();
  }
  if (graced == 0) return;
  if (reader_gone()) return output_closed();
  settle(graced);
}

// When no message can arrive before a FIN (a broker's RDY is all held, or -n reached), the
// newest line waits until the reader has consumed everything before it: reading it then proves
// the rest. Without this a reader that takes all of RDY in one read would wait --reader-grace
// for every batch. The bytes of buf_ that may be written now.
std::size_t consumer::writable() {
  if (buf_.empty() || pending_.empty() || !no_more_coming()) return buf_.size();
  std::uint64_t buf_start = appended_ - buf_.size();
  std::uint64_t newest = pending_.back().start;
  if (newest > buf_start) return static_cast<std::size_t>(newest - buf_start);
  return observed_ == written_ ? buf_.size() : 0;  // only the newest is left: once the pipe is empty
}

bool consumer::no_more_coming() const {
  if (count_reached_) return true;
  for (const auto& [a, c] : conns_) {
    if (c->live() && c->subscribed && c->rdy > 0 && static_cast<std::int64_t>(c->pending) >= c->rdy) return true;
  }
  return false;
}

void consumer::output_closed() {
  r_.output_closed = true;
  stop("output closed");
}

// FINishes every message whose line ends at or before offset safe.
void consumer::settle(std::uint64_t safe) {
  std::set<client*> touched;
  while (!pending_.empty() && pending_.front().end <= safe) {
    auto& p = pending_.front();
    if (p.generation == p.c->generation && p.c->live()) {
      append_command(p.c->conn->output(), fmt::format("FIN {}", std::string_view(p.id.data(), p.id.size())));
      touched.insert(p.c->conn.get());
      ++r_.finished;
      p.c->healthy = true;
      if (p.c->pending > 0) --p.c->pending;
      if (p.c->departing) maybe_depart(p.c);
    }
    pending_.pop_front();
  }
  for (auto* cl : touched) cl->flush();
  if (count_reached_ && pending_.empty() && buf_.empty() && !stopping_) stop("count reached");
}

bool consumer::reader_gone() {
  pollfd p{o_.output_fd, POLLOUT, 0};
  return ::poll(&p, 1, 0) == 1 && (p.revents & POLLERR) != 0;
}

// Pipe mode: FIN what the reader consumed, TOUCH what still waits in the pipe.
void consumer::tick() {
  if (stopping_) return;
  if (sink_ == sink_kind::pipe && !pending_.empty()) {
    observe();
    if (stopping_) return;
    if (reader_gone()) return output_closed();
    if (holding_ && !write_active_) write_pipe();
    if (stopping_) return;
  }
  auto now = clock::now();
  std::set<client*> touched;
  for (auto& p : pending_) {
    if (p.touch_at > now || p.generation != p.c->generation || !p.c->live()) continue;
    append_command(p.c->conn->output(), fmt::format("TOUCH {}", std::string_view(p.id.data(), p.id.size())));
    touched.insert(p.c->conn.get());
    p.touch_at = now + p.c->msg_timeout / 2;
  }
  for (auto* cl : touched) cl->flush();
  arm_tick();
}

void consumer::arm_tick() {
  if (tick_armed_ || stopping_ || pending_.empty()) return;
  tick_armed_ = true;
  poll_timer_.expires_after(holding_ ? hold_poll_period : poll_period);
  poll_timer_.async_wait([this](boost::system::error_code ec) {
    tick_armed_ = false;
    if (!ec) tick();
  });
}

// --- archive mode ---------------------------------------------------------------------------

void consumer::checkpoint() {
  flush_posted_ = false;
  bool synced = archive_step([&] {
    if (!buf_.empty()) {
      archive_->write(buf_);
      buf_.clear();
      written_ = appended_;
    }
    archive_->sync();
  });
  if (synced) settle(written_);
}

// A failed archive write or sync (disk full) ends the run with its error (74) after handing back
// everything not FINished; the torn file keeps its temporary name (archive_writer::close).
template <class F>
bool consumer::archive_step(F&& f) {
  if (archive_failed_) return false;
  try {
    f();
    return true;
  } catch (const fatal_error&) {
    archive_failed_ = true;
    if (!give_up_) give_up_ = std::current_exception();
    buf_.clear();
    stop("archive failed");
    return false;
  }
}

void consumer::arm_sync() {
  sync_timer_.expires_after(o_.sync_interval);
  sync_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec || stopping_) return;
    if (!pending_.empty() || !buf_.empty()) checkpoint();
    arm_sync();
  });
}

// --- stopping ---------------------------------------------------------------------------------

void consumer::stop(const char* why) {
  if (stopping_ || in_stop_) return;  // settle() below may ask to stop again (-n reached)
  in_stop_ = true;
  log::debug("stopping: {}", why);
  if (sink_ == sink_kind::archive) {
    if (!archive_failed_) checkpoint();  // written, fsynced, then FINished
  } else if (sink_ != sink_kind::pipe && !r_.output_closed && !buf_.empty()) {
    flush();  // a file or terminal: what was formatted is written, then FINished
  }
  if (sink_ == sink_kind::pipe && !r_.output_closed) observe();  // FIN what is proven by now
  stopping_ = true;
  if (out_desc_) {
    boost::system::error_code ignored;
    out_desc_->cancel(ignored);
  }
  buf_.clear();
  // nsqd does not take back a departing client's messages (only the timeout does): RDY 0 first,
  // so that nothing more is sent; then everything not proven processed goes back at once (and
  // what still arrives, in on_message); then CLS, and the connection closes at CLOSE_WAIT once
  // those REQs are written.
  for (auto& [a, c] : conns_) send_rdy(c, 0);
  std::set<client*> touched;
  for (auto& p : pending_) {
    if (p.generation != p.c->generation || !p.c->live()) continue;
    append_command(p.c->conn->output(), fmt::format("REQ {} 0", std::string_view(p.id.data(), p.id.size())));
    touched.insert(p.c->conn.get());
    ++r_.requeued;
    if (sink_ == sink_kind::pipe && p.end <= observed_) ++r_.duplicates;
  }
  pending_.clear();
  for (auto* cl : touched) cl->flush();
  poll_timer_.cancel();
  sync_timer_.cancel();
  lookupd_timer_.cancel();
  for (auto& [a, c] : conns_) {
    c->retry_timer->cancel();
    c->pause_timer->cancel();
    c->pending = 0;
    if (c->live()) send_cls(c);
  }
  stop_timer_.expires_after(close_deadline);
  stop_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    log::warn("brokers did not answer CLS within {} ms; closing", close_deadline.count());
    io_.stop();
  });
  check_stopped();
}

void consumer::check_stopped() {
  if (!stopping_) return;
  for (auto& [a, c] : conns_) {
    if (c->live()) return;
  }
  io_.stop();
}

tail_result consumer::run() {
  struct stat st{};
  if (::fstat(o_.output_fd, &st) != 0) {
    throw fatal_error(exit_code::io_error, fmt::format("output: {}", std::strerror(errno)));
  }
  if (!o_.output_dir.empty()) {
    sink_ = sink_kind::archive;
    archive_options ao;
    ao.dir = o_.output_dir;
    ao.filename_format = o_.filename_format;
    ao.topic = o_.topic;
    ao.rotate_size = o_.rotate_size;
    ao.rotate_interval = o_.rotate_interval;
    ao.gzip = o_.gzip;
    archive_ = std::make_unique<archive_writer>(ao);
    arm_sync();
  } else if (S_ISFIFO(st.st_mode)) sink_ = sink_kind::pipe;
  else if (::isatty(o_.output_fd)) sink_ = sink_kind::terminal;
  else sink_ = sink_kind::file;
  if (sink_ == sink_kind::pipe) {
    saved_flags_ = ::fcntl(o_.output_fd, F_GETFL);
    out_desc_ = std::make_unique<net::posix::stream_descriptor>(io_, o_.output_fd);
  }
  log::debug("topic {} channel {}; output is a {}", o_.topic, channel_,
             sink_ == sink_kind::pipe       ? "pipe"
             : sink_ == sink_kind::file     ? "file"
             : sink_ == sink_kind::terminal ? "terminal"
                                            : "directory");

  util::on_stop_signals(io_, [this](int sig) {
    if (stopping_) {
      io_.stop();
      return;
    }
    log::info("signal {}: handing back what was not consumed", sig);
    r_.interrupted = true;
    stop("signal");
  });
  for (const auto& a : o_.nsqd_tcp_addresses) {
    if (!conns_.count(a)) add_broker(a, true);
  }
  poll_lookupd();
  io_.run();

  for (auto& [a, c] : conns_) {
    if (c->conn) c->conn->close();
  }
  if (archive_) archive_->close();
  if (out_desc_) {
    out_desc_->release();
    out_desc_.reset();
    if (saved_flags_ != -1) ::fcntl(o_.output_fd, F_SETFL, saved_flags_);
  }
  if (give_up_) std::rethrow_exception(give_up_);
  return r_;
}

}  // namespace

std::string ephemeral_channel_name() {
  std::random_device rd;
  std::uniform_int_distribution<int> d(0, 999999);
  return fmt::format("tail{:06d}#ephemeral", d(rd));
}

tail_result tail(const tail_options& o) {
  constexpr auto usage = option_error::kind::usage;
  if (o.topic.empty()) throw option_error(usage, {"topic"}, "{} is required");
  if (!is_valid_topic_name(o.topic)) {
    throw option_error(usage, {"topic"}, "{} " + o.topic + ": not a valid topic name");
  }
  if (!o.channel.empty() && !is_valid_channel_name(o.channel)) {
    throw option_error(usage, {"channel"}, "{} " + o.channel + ": not a valid channel name");
  }
  if (o.nsqd_tcp_addresses.empty() && o.lookupd_http_addresses.empty()) {
    throw option_error(usage, {"nsqd_tcp_address", "lookupd_http_address"}, "give {} or {}");
  }
  if (o.max_in_flight == 0) throw option_error(usage, {"max_in_flight"}, "{} must be at least 1");
  consumer c(o);
  return c.run();
}

}  // namespace pipekit::nsq
