// push-route: push messages in, forwarded to the ws-push nodes that hold their users, and what
// could not be delivered out as records with a reason. See router.hpp and man/push-route.1.scd.
//
// Threading: one reader thread turns input into batches of lines (blocking while max_pending
// messages are unfinished: back-pressure on the input, not a growing queue); everything else
// (Redis look-ups, requests to the nodes, the records written) runs on one io_context thread.
// The reader is woken through an eventfd to stop and is always joined.
#include "pipekit/push/router.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <utility>

#include <sys/eventfd.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/io/line_reader.hpp"
#include "pipekit/io/line_writer.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_connection.hpp"
#include "pipekit/push/message_reader.hpp"
#include "pipekit/push/node_answer.hpp"
#include "pipekit/push/routes.hpp"
#include "pipekit/util/signals.hpp"

namespace pipekit::push {
namespace {

namespace asio = boost::asio;
using json = nlohmann::ordered_json;
using sys_clock = std::chrono::system_clock;

constexpr std::size_t max_line = 16u << 20;
constexpr std::size_t max_read_batch = 1000;
constexpr auto node_address_ttl = std::chrono::seconds(1);

struct input_line {
  std::uint64_t number = 0;
  std::string text;
  bool too_long = false;
};

struct input_batch {
  std::string source;
  std::vector<input_line> lines;
};

// One message on its way: what it was, who it is for, and what each node said.
struct message {
  std::string source;
  std::uint64_t line = 0;
  json original;      // the input line as JSON, or
  std::string text;   // the line, when it was read without a tree (read as one for a record)
  json id;        // null: none
  bool broadcast = false;
  std::vector<std::string> users;
  // Per user (most messages have one):
  boost::container::small_vector<bool, 1> delivered;          // some node had a connection of theirs
  boost::container::small_vector<std::string, 1> failure;     // why a node that held them failed, if one did
  boost::container::small_vector<std::string, 1> history_id;  // the stream id it was stored under ("": not stored)
  std::string data_text;                 // data as JSON text (what the nodes and the history get)
  std::string id_text;                   // id as JSON text ("": none)
  std::string broadcast_failure;         // broadcast: why some node did not take it
  bool no_nodes = false;                 // broadcast: there was no live node
  std::string failure_text;
  std::size_t connections = 0;
  int outstanding = 0;  // requests to nodes not answered yet
};
using message_ptr = std::shared_ptr<message>;

using user_indexes = boost::container::small_vector<std::size_t, 2>;

// What one node is sent for one message: the users of it that this node holds.
struct node_item {
  message_ptr msg;
  user_indexes user_index;  // into msg->users
  std::string line;                     // the push message for the node
};

// A batch's look-ups: the users, sorted and distinct, and the reply to each one's ZRANGEBYSCORE.
struct looked_up {
  std::vector<std::string> users;
  std::vector<redis::result> replies;

  // REQUIRES: user is one of users.
  const redis::result& reply(const std::string& user) const {
    return replies[static_cast<std::size_t>(std::lower_bound(users.begin(), users.end(), user) - users.begin())];
  }
};

struct node_sender {
  std::string id;
  std::string address;
  std::deque<node_item> queue;
  std::vector<std::unique_ptr<net::http_connection>> connections;
};

struct counters {
  std::uint64_t read = 0, delivered = 0, undelivered = 0, invalid = 0, requests = 0, request_failures = 0;
  std::map<std::string, std::uint64_t> by_reason;
};

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Compact JSON text, invalid UTF-8 replaced (as every line sent to a node).
std::string json_text(const json& v) { return v.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string user_text(const json& u) {
  if (u.is_string()) return u.get<std::string>();
  if (u.is_number_integer() || u.is_number_unsigned()) return u.dump();
  return {};
}

class router {
 public:
  router(asio::io_context& io, const router_options& o)
      : io_(io), opts_(o), redis_(io, o.redis), out_(o.undelivered == "-" ? std::make_unique<io::line_writer>(STDOUT_FILENO)
                                                                          : std::make_unique<io::line_writer>(o.undelivered)) {
    out_->batch_until_flush();
    if (!o.delivered.empty()) {
      delivered_out_ = std::make_unique<io::line_writer>(o.delivered);
      delivered_out_->batch_until_flush();
    }
    auto pointer = [](const char* flag, const std::string& p, std::optional<json::json_pointer>& out) {
      if (p.empty()) return;
      try {
        out = json::json_pointer(p);
      } catch (const json::exception&) {
        fatal(exit_code::usage, "{} {}: not a JSON Pointer (RFC 6901), e.g. /args/to", flag, p);
      }
    };
    pointer("--user-pointer", o.user_pointer, user_ptr_);
    pointer("--data-pointer", o.data_pointer, data_ptr_);
    pointer("--id-pointer", o.id_pointer, id_ptr_);
    redis_.on_state([this](bool up) {
      if (up) {
        log::info("redis {}: connected", redis::describe(opts_.redis));
        auto held = std::move(held_);
        held_.clear();
        for (auto& b : held) lookup(std::move(b.lines));
      } else {
        log::warn("redis {}: connection lost; messages are reported undelivered (redis_unavailable) until it is back",
                  redis::describe(opts_.redis));
      }
    });
    redis_.start();
  }

  // Ending is not an outage: nothing is logged for the connection closed with the router.
  ~router() { redis_.on_state(nullptr); }
  router(const router&) = delete;
  router& operator=(const router&) = delete;

  // A batch of input lines, on the io thread.
  void take(input_batch b) {
    std::vector<message_ptr> msgs;
    for (auto& l : b.lines) {
      ++stats_.read;
      if (auto m = parse(b.source, l)) msgs.push_back(std::move(m));
    }
    flush_soon();
    if (msgs.empty()) return;
    if (!redis_.ready()) return hold(std::move(msgs));
    lookup(std::move(msgs));
  }

  std::size_t pending() const { return pending_.load(); }
  std::atomic<std::size_t>& pending_counter() { return pending_; }
  // Called on the io thread each time messages are finished (the reader may go on).
  void on_release(std::function<void()> f) { on_release_ = std::move(f); }

  // Everything not finished is reported with `reason` (a second signal, or the io thread ending).
  void abandon(const std::string& reason, const std::string& text) {
    for (auto& h : held_) {
      if (h.timer) h.timer->cancel();
      for (auto& m : h.lines) fail_all(m, reason, text);
    }
    held_.clear();
    for (auto& [id, n] : nodes_) {
      for (auto& item : n.queue) abandon_item(item, reason, text);
      n.queue.clear();
      for (auto& c : n.connections) c->close();
    }
    redis_.stop();
    flush();
  }

  void flush() {
    flush_posted_ = false;
    dirty_ = false;
    if (!out_->flush()) output_failed_ = true;
    if (delivered_out_ && !delivered_out_->flush()) output_failed_ = true;
  }

  void print_stats() const {
    std::string reasons;
    for (const auto& [r, n] : stats_.by_reason) reasons += fmt::format(" {}={}", r, n);
    log::info("stats: read={} delivered={} undelivered={}{} invalid={} node_requests={} node_request_failures={}",
              stats_.read, stats_.delivered, stats_.undelivered, reasons, stats_.invalid, stats_.requests,
              stats_.request_failures);
  }
  bool output_failed() const { return output_failed_; }
  bool had_invalid() const { return stats_.invalid > 0; }

 private:
  struct held_batch {
    std::vector<message_ptr> lines;
    std::shared_ptr<asio::steady_timer> timer;
  };

  // The line as a message, or a record saying why it is not one (nullptr).
  message_ptr parse(const std::string& source, input_line& l) {
    auto m = std::make_shared<message>();
    m->source = source;
    m->line = l.number;
    if (l.too_long) {
      reject(*m, "too_long", fmt::format("a line over {} bytes", max_line), json(nullptr));
      return nullptr;
    }
    // The plain shape without pointers (what nearly every line is): read without a tree.
    if (!user_ptr_ && !id_ptr_) {
      if (auto p = read_plain_message(l.text)) {
        m->text = std::move(l.text);
        m->broadcast = p->broadcast;
        m->users = std::move(p->users);
        m->data_text = std::move(p->data);
        if (!p->id.empty() && p->id != "null") {  // "id":null is no id, as read as a tree below
          m->id = json::parse(p->id);  // written by nlohmann from a valid value: read back the same
          m->id_text = std::move(p->id);
        }
        if (!m->broadcast) normalise_users(*m);
        m->delivered.assign(m->users.size(), false);
        m->failure.assign(m->users.size(), std::string());
        m->history_id.assign(m->users.size(), std::string());
        return m;
      }
    }
    m->original = json::parse(l.text, nullptr, false);
    if (m->original.is_discarded()) {
      reject(*m, "invalid_json", "not a JSON value", json(l.text));
      return nullptr;
    }
    if (nesting_depth(l.text) > max_depth) {  // the record has the text: the value would not dump
      reject(*m, "invalid_message", fmt::format("JSON nested deeper than {} levels", max_depth), json(l.text));
      return nullptr;
    }
    const json& v = m->original;
    const json* data = nullptr;  // within m->original
    if (!v.is_object()) {
      reject(*m, "invalid_message", "not a JSON object", v);
      return nullptr;
    }
    if (user_ptr_) try {
      if (!v.contains(*user_ptr_)) {
        reject(*m, "invalid_message", fmt::format("no user at {}", opts_.user_pointer), v);
        return nullptr;
      }
      const json& u = v.at(*user_ptr_);
      if (u.is_array()) {
        for (const auto& e : u) m->users.push_back(user_text(e));
      } else {
        m->users.push_back(user_text(u));
      }
      if (data_ptr_) {
        if (!v.contains(*data_ptr_)) {
          reject(*m, "invalid_message", fmt::format("no data at {}", opts_.data_pointer), v);
          return nullptr;
        }
        data = &v.at(*data_ptr_);
      } else {
        data = &v;
      }
    } catch (const json::exception&) {
      reject(*m, "invalid_message", fmt::format("no user at {}", opts_.user_pointer), v);
      return nullptr;
    } else {
      if (!v.contains("data")) {
        reject(*m, "invalid_message", R"(want an object with "data" and one of "user", "users", "broadcast")", v);
        return nullptr;
      }
      data = &v["data"];
      if (auto b = v.find("broadcast"); b != v.end() && !b->is_boolean()) {
        reject(*m, "invalid_message", R"("broadcast" must be true or false)", v);
        return nullptr;
      }
      m->broadcast = v.value("broadcast", false);
      const int kinds = int(v.contains("user")) + int(v.contains("users")) + int(m->broadcast);
      if (kinds != 1 || (v.contains("users") && !v["users"].is_array())) {
        reject(*m, "invalid_message", R"(want exactly one of "user", "users" (an array), "broadcast":true)", v);
        return nullptr;
      }
      if (v.contains("user")) m->users.push_back(user_text(v["user"]));
      if (v.contains("users"))
        for (const auto& u : v["users"]) m->users.push_back(user_text(u));
    }
    if (id_ptr_) {
      try {
        if (v.contains(*id_ptr_)) m->id = v.at(*id_ptr_);
      } catch (const json::exception&) {
      }
    } else if (v.contains("id")) {
      m->id = v["id"];
    }
    if (!m->broadcast) {
      if (m->users.empty() || std::any_of(m->users.begin(), m->users.end(), [](const auto& u) { return u.empty(); })) {
        reject(*m, "invalid_message", "a user must be a non-empty string or an integer", v);
        return nullptr;
      }
      normalise_users(*m);
    }
    m->delivered.assign(m->users.size(), false);
    m->failure.assign(m->users.size(), std::string());
    m->history_id.assign(m->users.size(), std::string());
    m->data_text = json_text(*data);
    if (!m->id.is_null()) m->id_text = json_text(m->id);
    return m;
  }

  // --user-case, then sorted without duplicates.
  void normalise_users(message& m) const {
    if (opts_.user_lower)
      for (auto& u : m.users) u = lower(std::move(u));
    std::sort(m.users.begin(), m.users.end());
    m.users.erase(std::unique(m.users.begin(), m.users.end()), m.users.end());
  }

  void reject(const message& m, const char* reason, std::string text, const json& original) {
    ++stats_.invalid;
    ++stats_.by_reason[reason];
    log::warn("{}:{}: {}", m.source, m.line, text);
    json r = {{"reason", reason}, {"error", std::move(text)}, {"source", m.source}, {"line", m.line}};
    r["message"] = original;
    write(*out_, r);
    release(1);
  }

  // Redis away: the batch waits for it up to the connect timeout, then is reported.
  void hold(std::vector<message_ptr> msgs) {
    held_batch h{std::move(msgs), std::make_shared<asio::steady_timer>(io_, opts_.redis.connect_timeout)};
    auto timer = h.timer;
    held_.push_back(std::move(h));
    timer->async_wait([this, timer](boost::system::error_code ec) {
      if (ec) return;
      auto it = std::find_if(held_.begin(), held_.end(), [&](const held_batch& b) { return b.timer == timer; });
      if (it == held_.end()) return;
      auto lines = std::move(it->lines);
      held_.erase(it);
      for (auto& m : lines) fail_all(m, "redis_unavailable", "Redis is unreachable");
      flush_soon();
    });
  }

  // Each user's live nodes, in one pipelined round trip for the batch.
  void lookup(std::vector<message_ptr> msgs) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(sys_clock::now().time_since_epoch()).count();
    const std::string min = std::to_string(now_ms);
    std::vector<std::string> users;
    bool broadcast = false;
    for (const auto& m : msgs) {
      broadcast = broadcast || m->broadcast;
      users.insert(users.end(), m->users.begin(), m->users.end());
    }
    std::sort(users.begin(), users.end());
    users.erase(std::unique(users.begin(), users.end()), users.end());
    redis::commands cmds;
    std::string key;
    for (const auto& u : users) {
      key.clear();
      append_user_nodes_key(key, opts_.prefix, u);
      cmds.add({"ZRANGEBYSCORE", key, min, "+inf"});
    }
    if (broadcast) cmds.add({"ZRANGEBYSCORE", nodes_key(opts_.prefix), min, "+inf"});
    // History: each message appended to each of its users' streams, in the same round trip.
    const std::size_t history_at = cmds.size();
    if (opts_.history.size > 0) {
      for (const auto& m : msgs) {
        if (m->broadcast) continue;
        for (const auto& u : m->users) append_history_commands(cmds, opts_.prefix, u, opts_.history, m->data_text, m->id_text);
      }
    }
    // Batches are routed in the order they were read, whatever order their node addresses come in.
    auto turn = std::make_shared<std::function<void()>>();
    in_order_.push_back(turn);
    redis_.pipeline(std::move(cmds), [this, msgs = std::move(msgs), users = std::move(users), broadcast,
                                      history_at, turn](std::vector<redis::result> rs) mutable {
      if (opts_.history.size > 0) {
        std::size_t k = history_at;
        for (const auto& m : msgs) {
          if (m->broadcast) continue;
          for (std::size_t i = 0; i < m->users.size(); ++i, k += 2) {
            const auto& r = rs[k];
            if (r.ok() && r.value.type == redis::reply::kind::string) m->history_id[i] = r.value.str;
            else if (r.ok()) log::warn("history of user {}: {}", m->users[i], r.value.str);
          }
        }
      }
      // Each user's reply stays where it is (routes->replies[i] for routes->users[i]): route()
      // finds it by the user's place in the sorted list.
      auto routes = std::make_shared<looked_up>();
      routes->users = std::move(users);
      std::vector<std::string> live_nodes;
      std::vector<std::string> node_ids;
      auto add_node = [&](const std::string& id) {
        // Few nodes: kept distinct here; many: resolve_nodes sorts them out.
        if (node_ids.size() >= 16 || std::find(node_ids.begin(), node_ids.end(), id) == node_ids.end()) node_ids.push_back(id);
      };
      for (std::size_t i = 0; i < routes->users.size(); ++i) {
        const auto& r = rs[i];
        if (r.ok() && !r.value.is_error())
          for (const auto& e : r.value.elements) add_node(e.str);
      }
      std::string broadcast_error;
      if (broadcast) {
        const auto& r = rs[routes->users.size()];
        if (!r.ok()) broadcast_error = r.error;
        else if (r.value.is_error()) broadcast_error = "Redis: " + r.value.str;
        else
          for (const auto& e : r.value.elements) live_nodes.push_back(e.str);
      }
      for (const auto& n : live_nodes) add_node(n);
      rs.resize(routes->users.size());
      routes->replies = std::move(rs);
      resolve_nodes(std::move(node_ids), [this, turn, msgs = std::move(msgs), routes, live_nodes = std::move(live_nodes),
                                          broadcast_error](std::string resolve_error) mutable {
        *turn = [this, msgs = std::move(msgs), routes, live_nodes = std::move(live_nodes), broadcast_error, resolve_error] {
          for (const auto& m : msgs) route(m, *routes, live_nodes, broadcast_error, resolve_error);
        };
        while (!in_order_.empty() && *in_order_.front()) {
          auto next = std::move(in_order_.front());
          in_order_.pop_front();
          (*next)();
        }
        flush_soon();
      });
    });
  }

  // Node ids -> push addresses, from a short-lived cache or one pipelined GET per unknown node.
  void resolve_nodes(std::vector<std::string> ids, std::function<void(std::string)> done) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::string> missing;
    for (const auto& id : ids) {
      auto it = addresses_.find(id);
      if (it == addresses_.end() || now - it->second.second > node_address_ttl) missing.push_back(id);
    }
    if (missing.empty()) return done({});
    redis::commands cmds;
    for (const auto& id : missing) cmds.add({"GET", node_key(opts_.prefix, id)});
    redis_.pipeline(std::move(cmds), [this, missing, done = std::move(done)](std::vector<redis::result> rs) {
      const auto fetched = std::chrono::steady_clock::now();
      std::string error;
      for (std::size_t i = 0; i < missing.size(); ++i) {
        if (!rs[i].ok()) {
          error = rs[i].error;
          continue;
        }
        // nil: the node's registration expired; it is not a live node any more.
        std::string address = rs[i].value.type == redis::reply::kind::string ? rs[i].value.str : std::string();
        addresses_[missing[i]] = {std::move(address), fetched};
      }
      done(error);
    });
  }

  const std::string& address_of(const std::string& node) const {
    static const std::string none;
    auto it = addresses_.find(node);
    return it == addresses_.end() ? none : it->second.first;
  }

  void route(const message_ptr& m, const looked_up& routes, const std::vector<std::string>& live_nodes,
             const std::string& broadcast_error, const std::string& resolve_error) {
    // The lines for the nodes are put together from the data's and the id's JSON text, dumped
    // once per message.
    const std::string id_part = m->id_text.empty() ? std::string() : ",\"id\":" + m->id_text;
    if (m->broadcast) {
      if (!broadcast_error.empty()) return fail_all(m, "redis_unavailable", broadcast_error);
      const std::string text = "{\"broadcast\":true,\"data\":" + m->data_text + id_part + "}";
      for (const auto& node : live_nodes) {
        const auto& address = address_of(node);
        if (address.empty()) continue;
        enqueue(node, address, node_item{m, {}, text});
      }
      if (m->outstanding == 0) {
        if (resolve_error.empty()) {
          m->no_nodes = true;
        } else {
          m->broadcast_failure = "redis_unavailable";
          m->failure_text = resolve_error;
        }
        return finish(m);
      }
      return;
    }
    // Users grouped by node, in the order of the node ids: one line per node with the users it holds.
    boost::container::small_vector<std::pair<std::string, user_indexes>, 2> by_node;
    for (std::size_t i = 0; i < m->users.size(); ++i) {
      const auto& r = routes.reply(m->users[i]);
      if (!r.ok() || r.value.is_error()) {
        m->failure[i] = "redis_unavailable";
        m->failure_text = r.ok() ? "Redis: " + r.value.str : r.error;
        continue;
      }
      for (const auto& e : r.value.elements) {  // none: offline, no live route
        const std::string& node = e.str;
        if (address_of(node).empty()) {
          if (!resolve_error.empty()) {
            m->failure[i] = "redis_unavailable";
            m->failure_text = resolve_error;
          }
          continue;
        }
        auto at = std::lower_bound(by_node.begin(), by_node.end(), node, [](const auto& a, const std::string& b) { return a.first < b; });
        if (at == by_node.end() || at->first != node) at = by_node.insert(at, {node, {}});
        at->second.push_back(i);
      }
    }
    for (auto& [node, idx] : by_node) {
      if (opts_.history.size > 0) {
        // Stored messages have one stream id per user: one line per user, stamped so the node
        // does not store it again.
        for (auto i : idx) {
          if (m->history_id[i].empty()) continue;
          std::string line = "{\"user\":";
          append_json_string(line, m->users[i]);
          line += ",\"data\":";
          line += m->data_text;
          line += ",\"id\":";
          append_json_string(line, m->history_id[i]);
          line += ",\"stored\":true";
          if (!m->id_text.empty()) line.append(",\"ref\":").append(m->id_text);
          line += '}';
          enqueue(node, address_of(node), node_item{m, {i}, std::move(line)});
        }
        idx.erase(std::remove_if(idx.begin(), idx.end(), [&](std::size_t i) { return !m->history_id[i].empty(); }), idx.end());
        if (idx.empty()) continue;
      }
      std::string line;
      line.reserve(24 + 16 * idx.size() + m->data_text.size() + id_part.size());
      line += "{\"users\":[";
      for (auto i : idx) {
        if (line.back() != '[') line += ',';
        append_json_string(line, m->users[i]);
      }
      line += "],\"data\":";
      line += m->data_text;
      line += id_part;
      line += '}';
      enqueue(node, address_of(node), node_item{m, std::move(idx), std::move(line)});
    }
    if (m->outstanding == 0) finish(m);
  }

  void enqueue(const std::string& node, const std::string& address, node_item item) {
    auto& n = nodes_[node];
    if (n.address != address) {
      // A new node, or one that came back at another address: its old connections are useless.
      n.id = node;
      n.address = address;
      n.connections.clear();
    }
    ++item.msg->outstanding;
    n.queue.push_back(std::move(item));
    pump(n);
  }

  // Starts requests to the node while it has work and a free connection.
  void pump(node_sender& n) {
    while (!n.queue.empty()) {
      net::http_connection* free = nullptr;
      for (auto& c : n.connections)
        if (!c->busy()) free = c.get();
      if (!free && n.connections.size() < opts_.concurrency) {
        net::http_connection_options o;
        o.timeout = opts_.timeout;
        if (!opts_.push_token.empty()) o.authorization = "Bearer " + opts_.push_token;
        n.connections.push_back(std::make_unique<net::http_connection>(io_, n.address, o));
        free = n.connections.back().get();
      }
      if (!free) return;
      auto items = std::make_shared<std::vector<node_item>>();
      std::string body;
      while (!n.queue.empty() && items->size() < opts_.batch_max) {
        body += n.queue.front().line;
        body += '\n';
        items->push_back(std::move(n.queue.front()));
        n.queue.pop_front();
      }
      ++stats_.requests;
      free->post("/push", std::move(body), "application/x-ndjson",
                 [this, node = n.id, address = n.address, items](net::http_result r) {
                   answered(node, address, *items, r);
                   if (auto it = nodes_.find(node); it != nodes_.end()) pump(it->second);
                   flush_soon();
                 });
    }
  }

  void answered(const std::string& node, const std::string& address, std::vector<node_item>& items,
                const net::http_result& r) {
    std::string failure;
    std::string reason = "node_unreachable";
    if (r.status == 0) {
      failure = fmt::format("node {} ({}): {}", node, address, r.error);
    } else if (r.status != 200) {
      reason = "node_error";
      failure = fmt::format("node {} ({}): HTTP {}", node, address, r.status);
    }
    std::vector<std::string_view> answers;  // lines of r.body
    if (failure.empty()) {
      answers.reserve(items.size());
      std::string_view rest = r.body;
      while (!rest.empty()) {
        auto nl = rest.find('\n');
        auto line = rest.substr(0, nl);
        rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
        if (line.empty()) continue;
        answers.push_back(line);
      }
      if (answers.size() != items.size()) {
        reason = "node_error";
        failure = fmt::format("node {} ({}): {} answers to {} messages", node, address, answers.size(), items.size());
      }
    }
    if (!failure.empty()) {
      ++stats_.request_failures;
      log::warn("{}: {} messages not delivered there", failure, items.size());
    }
    for (std::size_t k = 0; k < items.size(); ++k) {
      auto& item = items[k];
      auto& m = *item.msg;
      // Most answers say the message reached every user it was for: read without a parse.
      if (failure.empty()) {
        if (auto n = delivered_to_all(answers[k])) {
          m.connections += *n;
          for (auto i : item.user_index) m.delivered[i] = true;
          if (--m.outstanding == 0) finish(item.msg);
          continue;
        }
      }
      json answer;
      if (failure.empty()) answer = json::parse(answers[k], nullptr, false);
      const json* a = failure.empty() ? &answer : nullptr;
      // Members read type-checked (value() throws on a wrong type): an answer written by
      // another hand costs its message a record at most, never the whole run.
      if (a && (!a->is_object() || a->contains("error"))) {
        const auto why = a->find("message");  // end() on a non-object too
        const std::string text =
            !a->is_object() ? "bad answer"
            : why != a->end() && why->is_string() ? fmt::format("node {}: {}", node, why->get_ref<const std::string&>())
                                                  : fmt::format("node {}: refused", node);
        record_failure(m, item, "node_error", text);
      } else if (a) {
        if (auto d = a->find("delivered"); d != a->end() && d->is_number_unsigned()) m.connections += d->get<std::size_t>();
        std::vector<std::string> offline;
        if (a->contains("offline") && (*a)["offline"].is_array())
          for (const auto& u : (*a)["offline"]) offline.push_back(user_text(u));
        for (auto i : item.user_index)
          if (std::find(offline.begin(), offline.end(), m.users[i]) == offline.end()) m.delivered[i] = true;
      } else {
        record_failure(m, item, reason, failure);
      }
      if (--m.outstanding == 0) finish(item.msg);
    }
  }

  void record_failure(message& m, const node_item& item, const std::string& reason, const std::string& text) {
    m.failure_text = text;
    if (m.broadcast) {
      if (m.broadcast_failure.empty()) m.broadcast_failure = reason;
      return;
    }
    for (auto i : item.user_index)
      if (m.failure[i].empty()) m.failure[i] = reason;
  }

  void abandon_item(node_item& item, const std::string& reason, const std::string& text) {
    record_failure(*item.msg, item, reason, text);
    if (--item.msg->outstanding == 0) finish(item.msg);
  }

  void fail_all(const message_ptr& m, const std::string& reason, const std::string& text) {
    m->failure_text = text;
    if (m->broadcast) m->broadcast_failure = reason;
    for (auto& f : m->failure) f = reason;
    if (m->outstanding == 0) finish(m);
  }

  // Every node has answered (or there was none to ask): the message's records.
  void finish(const message_ptr& mp) {
    auto& m = *mp;
    std::map<std::string, std::vector<std::string>> undelivered;  // reason -> users
    if (m.broadcast) {
      if (!m.broadcast_failure.empty()) undelivered[m.broadcast_failure];
      else if (m.no_nodes) undelivered["offline"];
    } else {
      for (std::size_t i = 0; i < m.users.size(); ++i) {
        if (m.delivered[i]) continue;
        undelivered[m.failure[i].empty() ? "offline" : m.failure[i]].push_back(m.users[i]);
      }
    }
    if (undelivered.empty()) {
      ++stats_.delivered;
      if (delivered_out_) {
        json r = {{"source", m.source}, {"line", m.line}};
        if (!m.id.is_null()) r["id"] = m.id;
        if (m.broadcast) r["broadcast"] = true;
        else r["users"] = m.users;
        r["connections"] = m.connections;
        write(*delivered_out_, r);
      }
    } else {
      ++stats_.undelivered;
    }
    for (auto& [reason, users] : undelivered) {
      ++stats_.by_reason[reason];
      json r = {{"reason", reason}};
      std::string text = reason == "offline" ? (m.broadcast ? "no live push node" : "no live connection") : m.failure_text;
      r["error"] = text;
      r["source"] = m.source;
      r["line"] = m.line;
      if (!m.id.is_null()) r["id"] = m.id;
      if (m.broadcast) r["broadcast"] = true;
      else r["users"] = users;
      // Stored in the users' history: a client that logs in with "since" still gets it.
      json stored = json::object();
      for (const auto& u : users) {
        auto at = std::find(m.users.begin(), m.users.end(), u) - m.users.begin();
        if (!m.history_id[static_cast<std::size_t>(at)].empty()) stored[u] = m.history_id[static_cast<std::size_t>(at)];
      }
      if (!stored.empty()) r["history"] = std::move(stored);
      r["message"] = m.text.empty() ? m.original : json::parse(m.text, nullptr, false);
      write(*out_, r);
    }
    release(1);
  }

  void write(io::line_writer& w, const json& r) {
    if (!w.write_line(r.dump(-1, ' ', false, json::error_handler_t::replace))) output_failed_ = true;
    dirty_ = true;
  }

  void flush_soon() {
    if (!dirty_ || flush_posted_) return;
    flush_posted_ = true;
    asio::post(io_, [this] { flush(); });
  }

  void release(std::size_t n) {
    pending_.fetch_sub(n);
    if (on_release_) on_release_();
  }

  asio::io_context& io_;
  const router_options& opts_;
  redis::client redis_;
  std::unique_ptr<io::line_writer> out_;
  std::unique_ptr<io::line_writer> delivered_out_;
  std::optional<json::json_pointer> user_ptr_, data_ptr_, id_ptr_;
  std::vector<held_batch> held_;
  std::deque<std::shared_ptr<std::function<void()>>> in_order_;  // looked-up batches waiting for their turn to route
  std::unordered_map<std::string, std::pair<std::string, std::chrono::steady_clock::time_point>> addresses_;
  std::map<std::string, node_sender> nodes_;
  std::atomic<std::size_t> pending_{0};
  std::function<void()> on_release_;
  counters stats_;
  bool dirty_ = false;
  bool flush_posted_ = false;
  bool output_failed_ = false;
};

// Reads the inputs in order, in batches, never more than max_pending messages ahead of the router.
class reader {
 public:
  reader(asio::io_context& io, router& r, const router_options& o, std::function<void()> on_end)
      : io_(io), router_(r), opts_(o), on_end_(std::move(on_end)) {
    wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (wake_ < 0) fatal(exit_code::software, "eventfd: {}", std::strerror(errno));
    // The inputs are opened here, so a missing file is exit 66 before anything is read.
    for (const auto& path : o.inputs) inputs_.push_back(std::make_unique<io::line_reader>(path, max_line));
    thread_ = std::thread([this] { loop(); });
  }
  ~reader() {
    stop();
    if (thread_.joinable()) thread_.join();
    ::close(wake_);
  }
  void stop() {
    stopping_ = true;
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_, &one, sizeof one);
    space_.notify_all();
  }
  // Called by the router's thread when messages finished: the reader goes on once there is room
  // for a batch (woken only then, and only when it waits).
  void notify() {
    if (!waiting_.load() || router_.pending() > resume_at()) return;
    std::lock_guard lock(mutex_);  // the reader is either waiting or has not checked yet
    space_.notify_all();
  }
  int status() const { return status_; }

 private:
  void loop() {
    try {
      for (auto& in : inputs_) {
        in->stop_on(wake_);
        input_batch batch{in->source(), {}};
        in->on_refill([&] { send(batch); });
        while (auto l = in->next()) {
          if (!wait_for_space(batch)) break;
          router_.pending_counter().fetch_add(1);
          batch.lines.push_back({l->number, l->too_long ? std::string() : std::string(l->text), l->too_long});
          if (batch.lines.size() >= max_read_batch) send(batch);
        }
        send(batch);
        if (in->stopped() || stopping_) {
          log::info("{}: stopped reading after line {}", in->source(), in->line_number());
          break;
        }
      }
    } catch (const fatal_error& e) {
      log::error("{}", e.what());
      status_ = e.code();
    }
    asio::post(io_, on_end_);
  }

  // Blocks while the router has max_pending messages unfinished, after handing it the lines
  // read so far (they are what it must finish first). False: stopping.
  // Once full, reading resumes when there is room for a batch again (not for each message
  // finished: a line at a time would make batches of one line, each its own Redis round trip).
  bool wait_for_space(input_batch& batch) {
    if (router_.pending() < opts_.max_pending) return !stopping_;
    send(batch);
    std::unique_lock lock(mutex_);
    waiting_ = true;
    while (!stopping_ && router_.pending() > resume_at()) space_.wait_for(lock, std::chrono::milliseconds(100));
    waiting_ = false;
    return !stopping_;
  }

  // Fewer pending than max_pending by a read batch (or by half of it, when that is smaller).
  std::size_t resume_at() const {
    return opts_.max_pending - std::max<std::size_t>(1, std::min(opts_.max_pending / 2, max_read_batch));
  }

  void send(input_batch& batch) {
    if (batch.lines.empty()) return;
    asio::post(io_, [this, b = input_batch{batch.source, std::move(batch.lines)}]() mutable { router_.take(std::move(b)); });
    batch.lines.clear();
  }

  asio::io_context& io_;
  router& router_;
  const router_options& opts_;
  std::function<void()> on_end_;
  std::vector<std::unique_ptr<io::line_reader>> inputs_;
  int wake_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> waiting_{false};  // the reader waits for room (set and cleared under mutex_)
  std::mutex mutex_;
  std::condition_variable space_;
  std::thread thread_;
  std::atomic<int> status_{exit_code::ok};
};

}  // namespace

int run_router(const router_options& opts) {
  asio::io_context io;
  router r(io, opts);
  bool input_done = false;
  bool stopping = false;
  std::unique_ptr<reader> in;
  auto maybe_end = [&] {
    if (input_done && r.pending() == 0) io.stop();
  };
  bool output_lost = false;
  r.on_release([&] {
    if (in) in->notify();
    if (r.output_failed() && !output_lost && in) {
      // Nobody reads the records any more: reading on would lose messages without a report.
      output_lost = true;
      log::error("{}: cannot write records (closed?): no more input is read", opts.undelivered == "-" ? "stdout" : opts.undelivered);
      in->stop();
    }
    maybe_end();
  });
  in = std::make_unique<reader>(io, r, opts, [&] {
    input_done = true;
    maybe_end();
  });
  util::on_stop_signals(io, [&](int signo) {
    if (!stopping) {
      stopping = true;
      log::info("signal {}: no more input; finishing the {} messages in flight", signo, r.pending());
      in->stop();
      return;
    }
    log::warn("signal {} again: reporting the {} unfinished messages as undelivered", signo, r.pending());
    in->stop();
    r.abandon("interrupted", "push-route was stopped before this message was delivered");
  });
  asio::signal_set usr1(io, SIGUSR1);
  std::function<void()> on_usr1 = [&] {
    usr1.async_wait([&](boost::system::error_code ec, int) {
      if (ec) return;
      r.print_stats();
      on_usr1();
    });
  };
  on_usr1();
  io.run();
  r.flush();
  const int input_status = in->status();
  in.reset();  // joins the reader
  if (opts.stats) r.print_stats();
  if (r.output_failed()) {
    log::error("{}: writing undelivered records failed", opts.undelivered == "-" ? "stdout" : opts.undelivered);
    return exit_code::io_error;
  }
  if (input_status != exit_code::ok) return input_status;
  return r.had_invalid() ? exit_code::data_error : exit_code::ok;
}

}  // namespace pipekit::push
