#include "pipekit/push/routes.hpp"

#include <cstdint>
#include <memory>
#include <unordered_set>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <fmt/format.h>

#include "pipekit/log/log.hpp"

namespace pipekit::push {

namespace net = boost::asio;

void append_user_nodes_key(std::string& out, std::string_view prefix, std::string_view user) {
  out.append(prefix).append("user:{").append(user).append("}:nodes");
}
std::string user_nodes_key(std::string_view prefix, std::string_view user) {
  std::string key;
  append_user_nodes_key(key, prefix, user);
  return key;
}
std::string node_key(std::string_view prefix, std::string_view node_id) {
  return fmt::format("{}node:{}", prefix, node_id);
}
std::string nodes_key(std::string_view prefix) { return fmt::format("{}nodes", prefix); }

namespace {
long long epoch_ms(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}
}  // namespace

struct routes::impl : std::enable_shared_from_this<impl> {
  routes_options opts;
  redis::client client;
  net::steady_timer refresh_timer;
  std::unordered_set<std::string> users;
  bool stopped = false;

  impl(net::io_context& io, routes_options o)
      : opts(std::move(o)), client(io, opts.redis), refresh_timer(io) {}

  // ZADD + PEXPIRE for each user given, after the node's own entries if with_node.
  std::vector<std::vector<std::string>> registration(const std::vector<std::string>& which, bool with_node) const {
    const auto now = std::chrono::system_clock::now();
    const std::string expiry = std::to_string(epoch_ms(now + opts.ttl));
    const std::string ttl = std::to_string(opts.ttl.count());
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(which.size() * 2 + 3);
    if (with_node) {
      cmds.push_back({"SET", node_key(opts.prefix, opts.node_id), opts.node_address, "PX", ttl});
      cmds.push_back({"ZADD", nodes_key(opts.prefix), expiry, opts.node_id});
      // Entries of nodes that died long ago go from the live-node set as they are passed over.
      cmds.push_back({"ZREMRANGEBYSCORE", nodes_key(opts.prefix), "-inf", std::to_string(epoch_ms(now) - opts.ttl.count())});
    }
    for (const auto& u : which) {
      auto key = user_nodes_key(opts.prefix, u);
      cmds.push_back({"ZADD", key, expiry, opts.node_id});
      cmds.push_back({"PEXPIRE", key, ttl});
    }
    return cmds;
  }

  // Whether Redis took every command (an error answer is logged; an outage the client logs once).
  static bool all_ok(const std::vector<redis::result>& results, const char* what) {
    for (const auto& r : results) {
      if (!r.ok()) return false;
      if (r.value.is_error()) {
        log::warn("redis: {}: {}", what, r.value.str);
        return false;
      }
    }
    return true;
  }

  void send(std::vector<std::vector<std::string>> cmds, const char* what) {
    if (!client.ready() || cmds.empty()) return;  // re-sent in full when Redis is back
    client.pipeline(std::move(cmds), [what](std::vector<redis::result> results) { all_ok(results, what); });
  }

  // A refresh goes in slices of refresh_slice users, each sent when Redis has answered the one
  // before: one pipeline for every user (100k commands with 50k users) would hold this node's loop
  // while it is built and Redis while it runs, and push-route's look-ups wait behind it (a 20-60
  // ms stall every --route-ttl/3 with 5k users a node). A user who left meanwhile is skipped, so no
  // slice revives a route removed after the round began. Redis back: a new round replaces the one
  // whose connection was lost; the timer starts one only when the last has finished.
  static constexpr std::size_t refresh_slice = 256;
  std::uint64_t refresh_round = 0;  // the latest round begun
  bool refreshing = false;          // and it has slices left to send

  void refresh_all() {
    refreshing = true;
    refresh_slice_of(++refresh_round, std::make_shared<std::vector<std::string>>(users.begin(), users.end()), true);
  }

  void refresh_slice_of(std::uint64_t round, std::shared_ptr<std::vector<std::string>> todo, bool with_node) {
    if (round != refresh_round) return;  // replaced
    std::vector<std::string> slice;
    while (!todo->empty() && slice.size() < refresh_slice) {
      if (users.contains(todo->back())) slice.push_back(std::move(todo->back()));
      todo->pop_back();
    }
    if (stopped || !client.ready() || (slice.empty() && !with_node)) {
      refreshing = false;
      return;
    }
    client.pipeline(registration(slice, with_node),
                    [weak = weak_from_this(), round, todo = std::move(todo)](std::vector<redis::result> results) mutable {
                      auto self = weak.lock();  // the client holds this callback: no cycle through it
                      if (!self) return;
                      if (all_ok(results, "refreshing routes")) return self->refresh_slice_of(round, std::move(todo), false);
                      if (round == self->refresh_round) self->refreshing = false;
                    });
  }

  void schedule_refresh() {
    refresh_timer.expires_after(opts.ttl / 3);
    refresh_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      if (self->refreshing)
        log::warn("redis: the routes' last refresh is still running after --route-ttl/3; Redis is slow");
      else
        self->refresh_all();
      self->schedule_refresh();
    });
  }
};

routes::routes(net::io_context& io, routes_options opts) : impl_(std::make_shared<impl>(io, std::move(opts))) {}

routes::~routes() {
  impl_->stopped = true;
  impl_->refresh_timer.cancel();
  impl_->client.stop();
}

void routes::start() {
  std::weak_ptr<impl> weak = impl_;
  impl_->client.on_state([weak](bool up) {
    auto self = weak.lock();
    if (!self || self->stopped) return;
    if (up) {
      log::info("redis {}: registering node {} and {} users", redis::describe(self->opts.redis), self->opts.node_id,
                self->users.size());
      self->refresh_all();
    } else {
      log::warn("redis {}: lost; routes are refreshed when it is back", redis::describe(self->opts.redis));
    }
  });
  impl_->client.start();
  impl_->schedule_refresh();
}

void routes::add_user(const std::string& user) {
  if (!impl_->users.insert(user).second) return;
  // The node's own entries are refreshed on the timer.
  impl_->send(impl_->registration({user}, false), "adding a route");
}

void routes::remove_user(const std::string& user) {
  if (impl_->users.erase(user) == 0) return;
  impl_->send({{"ZREM", user_nodes_key(impl_->opts.prefix, user), impl_->opts.node_id}}, "removing a route");
}

void routes::withdraw(std::function<void()> done) {
  auto& d = *impl_;
  d.stopped = true;
  d.refresh_timer.cancel();
  std::vector<std::vector<std::string>> cmds;
  cmds.push_back({"DEL", node_key(d.opts.prefix, d.opts.node_id)});
  cmds.push_back({"ZREM", nodes_key(d.opts.prefix), d.opts.node_id});
  for (const auto& u : d.users) cmds.push_back({"ZREM", user_nodes_key(d.opts.prefix, u), d.opts.node_id});
  d.users.clear();
  if (!d.client.ready()) {
    d.client.stop();
    return done();
  }
  d.client.pipeline(std::move(cmds), [self = impl_, done = std::move(done)](std::vector<redis::result> rs) {
    if (!rs.empty() && !rs.front().ok()) log::warn("redis: routes not withdrawn: {}", rs.front().error);
    self->client.stop();
    done();
  });
}

bool routes::ready() const { return impl_->client.ready(); }
redis::client& routes::redis() { return impl_->client; }

std::size_t routes::users() const { return impl_->users.size(); }

}  // namespace pipekit::push
