#include "pipekit/redis/client.hpp"

#include <algorithm>
#include <array>
#include <memory>
#include <charconv>
#include <deque>
#include <stdexcept>
#include <utility>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include "pipekit/log/log.hpp"
#include "pipekit/util/parse.hpp"

namespace pipekit::redis {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;

options parse_url(std::string_view text) {
  util::url u = util::parse_url(text);
  if (u.scheme != "redis")
    throw std::invalid_argument(fmt::format("unsupported scheme \"{}\" (redis:// only)", u.scheme));
  options o;
  o.host = u.host;
  o.port = u.port;
  o.username = u.user;
  o.password = u.password;
  std::string_view db = u.path;
  while (!db.empty() && db.front() == '/') db.remove_prefix(1);
  if (!db.empty()) {
    auto [end, ec] = std::from_chars(db.data(), db.data() + db.size(), o.db);
    if (ec != std::errc{} || end != db.data() + db.size() || o.db < 0)
      throw std::invalid_argument(fmt::format("bad database number \"{}\"", db));
  }
  return o;
}

std::string describe(const options& o) {
  std::string host = o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host;
  return fmt::format("redis://{}{}:{}/{}", o.username.empty() ? "" : o.username + "@", host, o.port, o.db);
}

namespace {

// hiredis's reader builds our reply type directly: the root is allocated, children are built in
// place in their parent's elements. createArray refuses a reply whose arrays add up to more
// elements than the bound (hiredis then reports an error instead of allocating what a hostile peer
// announced). Nothing may throw through hiredis's C frames: a failed allocation returns null, which
// hiredis reports as out of memory.
struct reader_limits {
  long long max_elements = 0;
  long long elements = 0;  // of the reply being read
};

template <class Fill>
void* create(const redisReadTask* task, Fill fill) noexcept {
  try {
    if (task->parent == nullptr) {
      auto root = std::make_unique<reply>();
      fill(*root);
      return root.release();
    }
    reply& child = static_cast<reply*>(task->parent->obj)->elements[static_cast<std::size_t>(task->idx)];
    fill(child);
    return &child;
  } catch (...) {
    return nullptr;
  }
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  return create(task, [&](reply& r) {
    r.type = task->type == REDIS_REPLY_ERROR    ? reply::kind::error
             : task->type == REDIS_REPLY_STATUS ? reply::kind::status
                                                : reply::kind::string;
    r.str.assign(str, len);
  });
}
void* create_array(const redisReadTask* task, int elements) {
  auto* limits = static_cast<reader_limits*>(task->privdata);
  if (task->parent == nullptr) limits->elements = 0;
  limits->elements += elements;
  if (elements < 0 || limits->elements > limits->max_elements) return nullptr;
  return create(task, [&](reply& r) {
    r.type = reply::kind::array;
    r.elements.resize(static_cast<std::size_t>(elements));
  });
}
void* create_integer(const redisReadTask* task, long long value) {
  return create(task, [&](reply& r) {
    r.type = reply::kind::integer;
    r.integer = value;
  });
}
void* create_nil(const redisReadTask* task) {
  return create(task, [](reply& r) { r.type = reply::kind::nil; });
}
// hiredis frees only roots (a finished reply it hands out, or an unfinished one on error).
void free_object(void* obj) { delete static_cast<reply*>(obj); }

redisReplyObjectFunctions reply_functions = {create_string, create_array, create_integer, create_nil,
                                             free_object};

// "<type><n>\r\n"
void append_header(std::string& out, char type, std::size_t n) {
  char buf[24];
  buf[0] = type;
  char* end = std::to_chars(buf + 1, buf + sizeof buf - 2, n).ptr;
  *end++ = '\r';
  *end++ = '\n';
  out.append(buf, end);
}

// One command as a RESP array of bulk strings: what redisFormatCommandArgv writes.
template <class Args>
void append_command(std::string& out, const Args& args) {
  append_header(out, '*', args.size());
  for (const auto& a : args) {
    const std::string_view s(a);
    append_header(out, '$', s.size());
    out.append(s);
    out += "\r\n";
  }
}

std::string format_command(const std::vector<std::string>& args) {
  std::string out;
  append_command(out, args);
  return out;
}

// A pipeline's results, gathered as its replies come.
struct gather {
  std::vector<result> results;
  std::size_t left = 0;
  std::function<void(std::vector<result>)> done;
};

}  // namespace

struct client::impl : std::enable_shared_from_this<impl> {
  enum class stage { idle, connecting, handshake, ready, stopped };

  struct pending {
    callback done;                  // a command's own callback, or
    std::shared_ptr<gather> batch;  // the pipeline it is part of, at `index`
    std::size_t index = 0;
    clock::time_point deadline;
  };

  static void complete(pending& p, result r) {
    if (!p.batch) return p.done(std::move(r));
    p.batch->results[p.index] = std::move(r);
    if (--p.batch->left == 0) {
      auto b = std::move(p.batch);
      b->done(std::move(b->results));
    }
  }

  net::io_context& io;
  options opts;
  state_callback on_state;
  tcp::resolver resolver;
  tcp::socket socket;
  net::steady_timer timer;        // connect deadline, then the oldest reply's deadline
  net::steady_timer retry_timer;  // reconnect backoff
  stage st = stage::idle;
  std::chrono::milliseconds backoff{0};
  std::uint64_t generation = 0;  // a failed connection's late handlers see another generation

  std::deque<pending> waiting;  // in the order the commands were written
  std::string out;              // formatted, not yet handed to a write
  std::string writing;          // handed to the write in progress
  bool write_busy = false;
  bool timer_armed = false;
  std::array<char, 16384> in{};
  std::unique_ptr<redisReader, void (*)(redisReader*)> reader{nullptr, redisReaderFree};
  reader_limits limits{};
  bool logged_down = false;

  impl(net::io_context& ctx, options o)
      : io(ctx), opts(std::move(o)), resolver(ctx), socket(ctx), timer(ctx), retry_timer(ctx) {
    limits.max_elements = opts.max_reply_elements;
  }

  void connect() {
    if (st == stage::stopped) return;
    st = stage::connecting;
    ++generation;
    reader.reset(redisReaderCreateWithFunctions(&reply_functions));
    if (!reader) throw std::bad_alloc();
    reader->privdata = &limits;
    arm_deadline(clock::now() + opts.connect_timeout);
    resolver.async_resolve(opts.host, std::to_string(opts.port),
                           [self = shared_from_this(), gen = generation](boost::system::error_code ec,
                                                                         tcp::resolver::results_type res) {
                             if (gen != self->generation) return;
                             if (ec) return self->fail("cannot resolve " + self->opts.host + ": " + ec.message());
                             net::async_connect(self->socket, res,
                                                [self, gen](boost::system::error_code ec2, const tcp::endpoint&) {
                                                  if (gen != self->generation) return;
                                                  if (ec2) return self->fail("cannot connect: " + ec2.message());
                                                  self->on_connected();
                                                });
                           });
  }

  void on_connected() {
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    st = stage::handshake;
    read();
    // AUTH and SELECT go first; the connection is ready when the last of them answers.
    std::vector<std::vector<std::string>> hello;
    if (!opts.password.empty()) {
      if (opts.username.empty()) hello.push_back({"AUTH", opts.password});
      else hello.push_back({"AUTH", opts.username, opts.password});
    }
    if (opts.db != 0) hello.push_back({"SELECT", std::to_string(opts.db)});
    hello.push_back({"PING"});
    auto left = std::make_shared<std::size_t>(hello.size());
    for (auto& cmd : hello) {
      std::string what = cmd[0];
      enqueue(format_command(cmd), [self = shared_from_this(), gen = generation, left, what](result r) {
        if (gen != self->generation || self->st != stage::handshake) return;
        if (!r.ok()) return;  // the connection failed; fail() already took care of it
        if (r.value.is_error()) {
          // Only the reason's first word: an AUTH error must not echo anything secret.
          return self->fail(fmt::format("{} refused: {}", what, r.value.str.substr(0, r.value.str.find(' '))));
        }
        if (--*left == 0) self->on_ready();
      });
    }
  }

  void on_ready() {
    st = stage::ready;
    backoff = std::chrono::milliseconds{0};
    if (logged_down) log::info("redis {}: connected again", describe(opts));
    logged_down = false;
    if (on_state) on_state(true);
  }

  // Every failure of a connection ends here: pending commands fail, the socket closes, and a
  // reconnect is scheduled with backoff.
  void fail(const std::string& why) {
    if (st == stage::stopped || st == stage::idle) return;
    const bool was_ready = st == stage::ready;
    close_socket();
    fail_waiting(st == stage::ready ? "connection lost: " + why : "unavailable: " + why);
    if (!logged_down) {
      log::warn("redis {}: {}; retrying with backoff", describe(opts), why);
      logged_down = true;
    }
    backoff = std::clamp(backoff * 2, opts.reconnect_min, opts.reconnect_max);
    st = stage::idle;
    retry_timer.expires_after(backoff);
    retry_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->st == stage::idle) self->connect();
    });
    if (was_ready && on_state) on_state(false);
  }

  void close_socket() {
    ++generation;
    boost::system::error_code ignored;
    resolver.cancel();
    socket.close(ignored);
    timer.cancel();
    timer_armed = false;
    out.clear();
    writing.clear();
    write_busy = false;
  }

  void fail_waiting(const std::string& why) {
    std::deque<pending> failed;
    failed.swap(waiting);
    for (auto& p : failed) {
      result r;
      r.error = why;
      complete(p, std::move(r));
    }
  }

  void stop() {
    if (st == stage::stopped) return;
    const bool was_ready = st == stage::ready;
    st = stage::stopped;
    close_socket();
    retry_timer.cancel();
    fail_waiting("stopped");
    if (was_ready && on_state) on_state(false);
  }

  void enqueue(const std::string& formatted, callback done) {
    out += formatted;
    waiting.push_back({std::move(done), nullptr, 0, clock::now() + opts.command_timeout});
    if (!timer_armed) arm_deadline(waiting.front().deadline);
    flush();
  }

  // Why a command cannot be sent now, or nullptr.
  const char* refuse() const {
    return st == stage::stopped ? "stopped"
           : st != stage::ready ? "unavailable"
           : waiting.size() >= opts.max_pending ? "overloaded"
                                                : nullptr;
  }

  void flush() {
    if (write_busy || out.empty()) return;
    write_busy = true;
    writing.swap(out);
    net::async_write(socket, net::buffer(writing),
                     [self = shared_from_this(), gen = generation](boost::system::error_code ec, std::size_t) {
                       if (gen != self->generation) return;
                       if (ec) return self->fail("write: " + ec.message());
                       self->write_busy = false;
                       self->writing.clear();
                       self->flush();
                     });
  }

  void read() {
    socket.async_read_some(net::buffer(in), [self = shared_from_this(), gen = generation](
                                                boost::system::error_code ec, std::size_t n) {
      if (gen != self->generation) return;
      if (ec == net::error::eof) return self->fail("closed by the server");
      if (ec) return self->fail("read: " + ec.message());
      self->on_bytes(n);
    });
  }

  void on_bytes(std::size_t n) {
    if (redisReaderFeed(reader.get(), in.data(), n) != REDIS_OK) return fail("out of memory");
    const auto gen = generation;
    for (;;) {
      void* obj = nullptr;
      if (redisReaderGetReply(reader.get(), &obj) != REDIS_OK) {
        if (limits.elements > limits.max_elements)
          return fail(fmt::format("protocol error: a reply of more than {} array elements", limits.max_elements));
        return fail(fmt::format("protocol error: {}", reader->errstr));
      }
      if (obj == nullptr) break;
      std::unique_ptr<reply> r(static_cast<reply*>(obj));
      if (waiting.empty()) return fail("protocol error: a reply nobody asked for");
      pending p = std::move(waiting.front());
      waiting.pop_front();
      result res;
      res.value = std::move(*r);
      complete(p, std::move(res));
      if (gen != generation) return;  // the callback stopped the client, or the connection failed
    }
    // What is buffered is the unfinished part of one reply: bounded.
    if (reader->len - reader->pos > opts.max_reply_size)
      return fail(fmt::format("protocol error: a reply larger than {} bytes", opts.max_reply_size));
    if (waiting.empty()) {
      timer.cancel();
      timer_armed = false;
    }
    read();
  }

  void arm_deadline(clock::time_point when) {
    timer_armed = true;
    timer.expires_at(when);
    timer.async_wait([self = shared_from_this(), gen = generation](boost::system::error_code ec) {
      if (ec || gen != self->generation) return;
      self->timer_armed = false;
      if (self->st == stage::connecting) return self->fail("connect timed out");
      if (self->waiting.empty()) return;
      if (self->waiting.front().deadline <= clock::now()) return self->fail("timed out waiting for a reply");
      self->arm_deadline(self->waiting.front().deadline);
    });
  }
};

client::client(net::io_context& io, options opts) : impl_(std::make_shared<impl>(io, std::move(opts))) {}

client::~client() {
  impl_->on_state = nullptr;  // a destructor calls nothing of its owner's: e.g. a test's state log, declared after it
  stop();
}

void client::on_state(state_callback cb) { impl_->on_state = std::move(cb); }

void client::start() {
  if (impl_->st == impl::stage::idle) impl_->connect();
}

void client::stop() { impl_->stop(); }

bool client::ready() const { return impl_->st == impl::stage::ready; }

void client::command(std::vector<std::string> args, callback done) {
  auto& d = *impl_;
  const char* why = d.refuse();
  if (why == nullptr && args.empty()) why = "empty command";
  if (why != nullptr) {
    net::post(d.io, [done = std::move(done), why]() {
      result r;
      r.error = why;
      done(std::move(r));
    });
    return;
  }
  d.enqueue(format_command(args), std::move(done));
}

void client::pipeline(std::vector<std::vector<std::string>> cmds,
                      std::function<void(std::vector<result>)> done) {
  if (cmds.empty()) {
    net::post(impl_->io, [done = std::move(done)]() { done({}); });
    return;
  }
  auto g = std::make_shared<gather>();
  g->results.resize(cmds.size());
  g->left = cmds.size();
  g->done = std::move(done);
  for (std::size_t i = 0; i < cmds.size(); ++i) {
    command(std::move(cmds[i]), [g, i](result r) {
      g->results[i] = std::move(r);
      if (--g->left == 0) g->done(std::move(g->results));
    });
  }
}

}  // namespace pipekit::redis

namespace pipekit::redis {

void commands::add(std::initializer_list<std::string_view> args) {
  append_command(resp_, args);
  ends_.push_back(resp_.size());
}

void commands::add(const std::vector<std::string>& args) {
  append_command(resp_, args);
  ends_.push_back(resp_.size());
}

// As the other pipeline(), command by command: the ones that can be sent go in one write, each of
// the others fails as command() would have failed it.
void client::pipeline(commands cmds, std::function<void(std::vector<result>)> done) {
  auto& d = *impl_;
  const std::size_t n = cmds.size();
  if (n == 0) {
    net::post(d.io, [done = std::move(done)]() { done({}); });
    return;
  }
  auto g = std::make_shared<gather>();
  g->results.resize(n);
  g->left = n;
  g->done = std::move(done);
  const char* why = d.refuse();
  std::size_t sent = 0;
  if (why == nullptr) {
    sent = std::min(n, d.opts.max_pending - d.waiting.size());
    d.out.append(cmds.resp_, 0, cmds.ends_[sent - 1]);
    const auto deadline = clock::now() + d.opts.command_timeout;
    for (std::size_t i = 0; i < sent; ++i) d.waiting.push_back({nullptr, g, i, deadline});
    if (!d.timer_armed) d.arm_deadline(d.waiting.front().deadline);
    d.flush();
    if (sent < n) why = "overloaded";
  }
  if (sent == n) return;
  net::post(d.io, [g, sent, why]() {
    for (std::size_t i = sent; i < g->results.size(); ++i) {
      impl::pending p{nullptr, g, i, {}};
      result r;
      r.error = why;
      impl::complete(p, std::move(r));
    }
  });
}

}  // namespace pipekit::redis
