#include "pipekit/push/routes.hpp"

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

  // ZADD + PEXPIRE for each user given, and the node's own entries.
  std::vector<std::vector<std::string>> registration(const std::vector<std::string>& which) const {
    const auto now = std::chrono::system_clock::now();
    const std::string expiry = std::to_string(epoch_ms(now + opts.ttl));
    const std::string ttl = std::to_string(opts.ttl.count());
    std::vector<std::vector<std::string>> cmds;
    cmds.reserve(which.size() * 2 + 3);
    cmds.push_back({"SET", node_key(opts.prefix, opts.node_id), opts.node_address, "PX", ttl});
    cmds.push_back({"ZADD", nodes_key(opts.prefix), expiry, opts.node_id});
    // Entries of nodes that died long ago go from the live-node set as they are passed over.
    cmds.push_back({"ZREMRANGEBYSCORE", nodes_key(opts.prefix), "-inf", std::to_string(epoch_ms(now) - opts.ttl.count())});
    for (const auto& u : which) {
      auto key = user_nodes_key(opts.prefix, u);
      cmds.push_back({"ZADD", key, expiry, opts.node_id});
      cmds.push_back({"PEXPIRE", key, ttl});
    }
    return cmds;
  }

  void send(std::vector<std::vector<std::string>> cmds, const char* what) {
    if (!client.ready() || cmds.empty()) return;  // re-sent in full when Redis is back
    client.pipeline(std::move(cmds), [what](std::vector<redis::result> results) {
      for (const auto& r : results) {
        if (!r.ok()) return;  // the client logs the outage once
        if (r.value.is_error()) {
          log::warn("redis: {}: {}", what, r.value.str);
          return;
        }
      }
    });
  }

  void refresh_all() {
    send(registration(std::vector<std::string>(users.begin(), users.end())), "refreshing routes");
  }

  void schedule_refresh() {
    refresh_timer.expires_after(opts.ttl / 3);
    refresh_timer.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (ec || self->stopped) return;
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
  auto cmds = impl_->registration({user});
  cmds.erase(cmds.begin(), cmds.begin() + 3);  // the node's own entries are refreshed on the timer
  impl_->send(std::move(cmds), "adding a route");
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
