// nsq-broker's HTTP API: nsqd's routes and JSON shapes, on the broker's io_context.
#include <cstdio>
#include <ctime>

#include <nlohmann/json.hpp>

#include "pipekit/log/log.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/nsq/broker_internal.hpp"
#include "pipekit/nsq/names.hpp"

namespace pipekit::nsq {

namespace {

using json = nlohmann::json;
using pipekit::net::http_request;
using pipekit::net::http_response;
using pipekit::net::json_error;

constexpr std::string_view nsqd_version = "1.3.0";

http_response ok_empty() {
  http_response r;
  r.headers.emplace_back("X-NSQ-Content-Type", "nsq; version=1.0");
  return r;
}
http_response err(int status, std::string_view code) {
  auto r = json_error(status, code);
  r.headers.emplace_back("X-NSQ-Content-Type", "nsq; version=1.0");
  return r;
}
http_response ok_json(const json& j) {
  auto r = pipekit::net::json_response(j);
  r.headers.emplace_back("X-NSQ-Content-Type", "nsq; version=1.0");
  return r;
}
http_response ok_text(std::string body) {
  http_response r;
  r.body = std::move(body);
  return r;
}

std::int64_t rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  long pages = 0, resident = 0;
  int n = std::fscanf(f, "%ld %ld", &pages, &resident);
  std::fclose(f);
  return n == 2 ? resident * 4096 : 0;
}

json client_json(const client_info& c) {
  json j = {{"client_id", c.client_id},
          {"hostname", c.hostname},
          {"version", "V2"},
          {"remote_address", c.remote_address},
          {"state", c.state == client_state::init ? 1 : c.state == client_state::subscribed ? 3 : 4},
          {"ready_count", c.ready_count},
          {"in_flight_count", c.in_flight_count},
          {"message_count", c.message_count},
          {"finish_count", c.finish_count},
          {"requeue_count", c.requeue_count},
          {"connect_ts", c.connect_ts},
          {"sample_rate", c.sample_rate},
          {"deflate", c.deflate},
          {"snappy", c.snappy},
          {"user_agent", c.user_agent},
          {"tls", c.tls},
          {"tls_cipher_suite", c.tls_info.cipher_suite},
          {"tls_version", c.tls_info.version},
          {"tls_negotiated_protocol", c.tls_info.negotiated_protocol},
          {"tls_negotiated_protocol_is_mutual", c.tls_info.negotiated_protocol_is_mutual},
          {"pub_counts", json::array()}};
  if (c.authed) {  // nsqd leaves these out when empty
    j["authed"] = true;
    if (!c.auth_identity.empty()) j["auth_identity"] = c.auth_identity;
    if (!c.auth_identity_url.empty()) j["auth_identity_url"] = c.auth_identity_url;
  }
  return j;
}

json latency_json() { return {{"count", 0}, {"percentiles", nullptr}, {"topic", ""}, {"channel", ""}, {"host", ""}}; }

json channel_json(const channel& c, bool include_clients) {
  json clients = json::array();
  if (include_clients)
    for (const connection* conn : c.consumers) clients.push_back(client_json(conn->info));
  return {{"channel_name", c.name},
          {"depth", c.queue.depth()},
          {"backend_depth", c.queue.backend_depth()},
          {"in_flight_count", static_cast<std::int64_t>(c.in_flight.size())},
          {"deferred_count", static_cast<std::int64_t>(c.deferred.size())},
          {"message_count", c.message_count},
          {"requeue_count", c.requeue_count},
          {"timeout_count", c.timeout_count},
          {"client_count", static_cast<std::int64_t>(c.consumers.size())},
          {"clients", clients},
          {"paused", c.paused},
          {"e2e_processing_latency", latency_json()},
          // Beyond nsqd: dropped unsent by --msg-ttl; dropped by a full #ephemeral channel; taken
          // back from a client that disconnected with messages in flight.
          {"expired_count", c.expired_count},
          {"dropped_count", c.dropped_count},
          {"disconnect_requeue_count", c.disconnect_requeue_count}};
}

// The topic, channel and clients parameters nsqd's /stats reads.
struct stats_query {
  std::string topic, channel;
  bool include_clients = true;
  bool include_mem = true;
};

json stats(broker::impl& b, const stats_query& q) {
  json topics = json::array();
  for (auto& [name, t] : b.topics) {
    if (!q.topic.empty() && name != q.topic) continue;
    json channels = json::array();
    for (auto& [cname, c] : t->channels) {
      if (!q.channel.empty() && cname != q.channel) continue;
      channels.push_back(channel_json(*c, q.include_clients));
    }
    topics.push_back({{"topic_name", name},
                      {"channels", channels},
                      {"depth", t->queue.depth()},
                      {"backend_depth", t->queue.backend_depth()},
                      {"message_count", t->message_count},
                      {"message_bytes", t->message_bytes},
                      {"paused", t->paused},
                      {"e2e_processing_latency", latency_json()},
                      {"expired_count", t->expired_count}});
  }
  json producers = json::array();
  if (q.include_clients)
    for (auto& [id, conn] : b.connections)
      if (conn->info.pub_counts > 0) producers.push_back(client_json(conn->info));
  json out = {{"version", nsqd_version},
              {"health", "OK"},
              {"start_time", b.start_ns / 1000000000},
              {"topics", topics},
              {"producers", producers}};
  if (q.include_mem) {
    out["memory"] = {{"heap_objects", 0},        {"heap_idle_bytes", 0},  {"heap_in_use_bytes", rss_bytes()},
                     {"heap_released_bytes", 0}, {"gc_pause_usec_100", 0}, {"gc_pause_usec_99", 0},
                     {"gc_pause_usec_95", 0},    {"next_gc_bytes", 0},     {"gc_total_runs", 0}};
  }
  return out;
}

std::string stats_text_of(broker::impl& b, const stats_query& q) {
  std::string out = fmt::format("nsqd v{} (pipekit nsq-broker)\nstart_time {}\nuptime {}s\n\nHealth: OK\n\n",
                                nsqd_version, b.start_ns / 1000000000, (wall_ns() - b.start_ns) / 1000000000);
  if (b.topics.empty()) out += "\nTopics: None\n";
  else out += "\nTopics:";
  for (auto& [name, t] : b.topics) {
    if (!q.topic.empty() && name != q.topic) continue;
    out += fmt::format("\n   [{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} expired: {:<5} e2e%: \n", name,
                       t->queue.depth(), t->queue.backend_depth(), t->message_count, t->expired_count);
    for (auto& [cname, c] : t->channels) {
      if (!q.channel.empty() && cname != q.channel) continue;
      out += fmt::format(
          "      [{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} "
          "expired: {:<5} dropped: {:<5} disconnect-re-q: {:<5} e2e%: \n",
          cname, c->queue.depth(), c->queue.backend_depth(), c->in_flight.size(), c->deferred.size(), c->requeue_count,
          c->timeout_count, c->message_count, c->expired_count, c->dropped_count, c->disconnect_requeue_count);
      if (!q.include_clients) continue;
      for (const connection* conn : c->consumers) {
        const auto& i = conn->info;
        out += fmt::format(
            "        [V2 {:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: {}s\n",
            i.client_id, i.state == client_state::subscribed ? 3 : 4, i.in_flight_count, i.ready_count,
            i.finish_count, i.requeue_count, i.message_count, wall_ns() / 1000000000 - i.connect_ts);
      }
    }
  }
  return out;
}

std::string metrics(broker::impl& b) {
  std::string out;
  out += "# HELP nsq_topic_depth Messages queued in a topic (memory and overflow).\n# TYPE nsq_topic_depth gauge\n";
  for (auto& [n, t] : b.topics) out += fmt::format("nsq_topic_depth{{topic=\"{}\"}} {}\n", n, t->queue.depth());
  out += "# HELP nsq_topic_messages_total Messages published to a topic.\n# TYPE nsq_topic_messages_total counter\n";
  for (auto& [n, t] : b.topics) out += fmt::format("nsq_topic_messages_total{{topic=\"{}\"}} {}\n", n, t->message_count);
  out += "# HELP nsq_topic_expired_total Messages older than the TTL (--msg-ttl), dropped before reaching a channel.\n"
         "# TYPE nsq_topic_expired_total counter\n";
  for (auto& [n, t] : b.topics) out += fmt::format("nsq_topic_expired_total{{topic=\"{}\"}} {}\n", n, t->expired_count);
  auto per_channel = [&](const char* metric, const char* type, const char* help, auto value) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", metric, help, metric, type);
    for (auto& [n, t] : b.topics)
      for (auto& [cn, c] : t->channels)
        out += fmt::format("{}{{topic=\"{}\",channel=\"{}\"}} {}\n", metric, n, cn, value(*c));
  };
  per_channel("nsq_channel_depth", "gauge", "Messages queued in a channel.",
              [](const channel& c) { return c.queue.depth(); });
  per_channel("nsq_channel_in_flight", "gauge", "Messages sent and not yet finished.",
              [](const channel& c) { return static_cast<std::int64_t>(c.in_flight.size()); });
  per_channel("nsq_channel_deferred", "gauge", "Deferred messages.",
              [](const channel& c) { return static_cast<std::int64_t>(c.deferred.size()); });
  per_channel("nsq_channel_messages_total", "counter", "Messages delivered.",
              [](const channel& c) { return c.message_count; });
  per_channel("nsq_channel_requeued_total", "counter", "Messages requeued.",
              [](const channel& c) { return c.requeue_count; });
  per_channel("nsq_channel_timed_out_total", "counter", "Messages that timed out in flight.",
              [](const channel& c) { return c.timeout_count; });
  per_channel("nsq_channel_disconnect_requeue_total", "counter",
              "In-flight messages taken back from a client that disconnected (nsqd leaves them to the timeout).",
              [](const channel& c) { return c.disconnect_requeue_count; });
  per_channel("nsq_channel_expired_total", "counter", "Messages older than the TTL (--msg-ttl), dropped unsent.",
              [](const channel& c) { return c.expired_count; });
  per_channel("nsq_channel_dropped_total", "counter",
              "Messages dropped because the #ephemeral channel was full (--ephemeral-overflow drop).",
              [](const channel& c) { return c.dropped_count; });
  per_channel("nsq_channel_clients", "gauge", "Consumers of a channel.",
              [](const channel& c) { return static_cast<std::int64_t>(c.consumers.size()); });
  out += fmt::format("# HELP nsq_clients Open TCP connections.\n# TYPE nsq_clients gauge\nnsq_clients {}\n",
                     b.connections.size());
  out += fmt::format("# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\n"
                     "process_resident_memory_bytes {}\n",
                     rss_bytes());
  return out;
}

bool param_true(const http_request& req, std::string_view name, bool dflt) {
  const std::string* v = req.param(name);
  if (!v) return dflt;
  return *v == "true" || *v == "1";
}

class frontend final : public http_frontend {
 public:
  frontend(broker::impl& b, const std::string& address) : b_(b), server_(b.io, options(b)) {
    routes();
    server_.listen(address, "--http-address");
    log::info("HTTP: listening on {}", server_.local_address());
  }
  std::uint16_t port() const override { return server_.port(); }
  void stop() override { server_.stop(); }

 private:
  static pipekit::net::http_server_options options(broker::impl& b) {
    pipekit::net::http_server_options o;
    o.body_limit = static_cast<std::size_t>(std::max(b.opts.max_body_size, b.opts.max_msg_size)) + 1;
    return o;
  }

  // ?topic= must name a valid topic; returns nullptr-equivalent via the error response.
  bool topic_param(const http_request& req, std::string& name, http_response& error) {
    const std::string* t = req.param("topic");
    if (!t) {
      error = err(400, "MISSING_ARG_TOPIC");
      return false;
    }
    if (!is_valid_topic_name(*t)) {
      error = err(400, "INVALID_TOPIC");
      return false;
    }
    name = *t;
    return true;
  }
  bool channel_param(const http_request& req, std::string& name, http_response& error) {
    const std::string* c = req.param("channel");
    if (!c) {
      error = err(400, "MISSING_ARG_CHANNEL");
      return false;
    }
    if (!is_valid_channel_name(*c)) {
      error = err(400, "INVALID_CHANNEL");
      return false;
    }
    name = *c;
    return true;
  }

  http_response pub(const http_request& req) {
    if (static_cast<std::int64_t>(req.body.size()) > b_.opts.max_msg_size) return err(413, "MSG_TOO_BIG");
    if (req.body.empty()) return err(400, "MSG_EMPTY");
    std::string name;
    http_response e;
    if (!topic_param(req, name, e)) return e;
    std::int64_t defer_ms = 0;
    if (const std::string* d = req.param("defer")) {
      char* end = nullptr;
      long long v = std::strtoll(d->c_str(), &end, 10);
      if (d->empty() || *end != '\0') return err(400, "INVALID_DEFER");
      if (v < 0 || v > b_.opts.max_req_timeout.count()) return err(400, "INVALID_DEFER");
      defer_ms = v;
    }
    topic& t = b_.get_topic(name);
    bool ok = b_.put(t, b_.new_message(body_ref::copy_of(req.body), defer_ms));
    if (!b_.flush_dirty() || !ok) return err(503, "EXITING");  // nsqd's answer when a put fails
    b_.pump(t);
    // --durable: the 200 waits for an fsync (synchronous here: no group commit over HTTP).
    if (b_.opts.durable && !t.ephemeral && (!t.queue.backend().on_disk() || !b_.sync_disk()))
      return err(503, "EXITING");
    return ok_text("OK");
  }

  http_response mpub(const http_request& req) {
    if (static_cast<std::int64_t>(req.body.size()) > b_.opts.max_body_size) return err(413, "BODY_TOO_BIG");
    std::string name;
    http_response e;
    if (!topic_param(req, name, e)) return e;
    body_ref block = body_ref::copy_of(req.body);
    std::vector<std::string_view> bodies;
    std::string_view all = block.view();
    if (param_true(req, "binary", false)) {
      std::string framed;  // the codec validates [count][size][body]... as it does MPUB's body
      char len[4];
      put_u32(len, static_cast<std::uint32_t>(all.size()));
      framed.append("MPUB t\n").append(len, 4).append(all);
      parse_limits limits = b_.limits;
      limits.valid_topic = [](std::string_view) noexcept { return true; };
      parse_result r = parse_command(framed, limits, parse_context{});
      if (r.status != parse_status::ok) {
        std::string code = r.err.code.empty() ? "BAD_BODY" : r.err.code.substr(2);
        return err(413, code);
      }
      for_each_mpub_message(all, [&](std::string_view m) { bodies.push_back(m); });
    } else {
      std::size_t start = 0;
      while (start <= all.size()) {
        std::size_t nl = all.find('\n', start);
        std::string_view line = all.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        if (!line.empty()) {
          if (static_cast<std::int64_t>(line.size()) > b_.opts.max_msg_size) return err(413, "MSG_TOO_BIG");
          bodies.push_back(line);
        }
        if (nl == std::string_view::npos) break;
        start = nl + 1;
      }
    }
    topic& t = b_.get_topic(name);
    bool ok = true;
    for (std::string_view m : bodies)
      if (ok) ok = b_.put(t, b_.new_message(block.slice(m), 0));
    if (!b_.flush_dirty() || !ok) return err(503, "EXITING");
    b_.pump(t);
    // --durable: the 200 waits for an fsync (synchronous here: no group commit over HTTP).
    if (b_.opts.durable && !t.ephemeral && (!t.queue.backend().on_disk() || !b_.sync_disk()))
      return err(503, "EXITING");
    return ok_text("OK");
  }

  template <class Fn>
  void topic_route(const std::string& path, bool must_exist, Fn fn) {
    route("POST", path, [this, must_exist, fn](const http_request& req) {
      std::string name;
      http_response e;
      if (!topic_param(req, name, e)) return e;
      topic* t = must_exist ? b_.find_topic(name) : &b_.get_topic(name);
      if (!t) return err(404, "TOPIC_NOT_FOUND");
      fn(*t);
      return ok_empty();
    });
  }
  template <class Fn>
  void channel_route(const std::string& path, bool must_exist, Fn fn) {
    route("POST", path, [this, must_exist, fn](const http_request& req) {
      std::string tname, cname;
      http_response e;
      if (!topic_param(req, tname, e)) return e;
      if (!channel_param(req, cname, e)) return e;
      if (must_exist) {
        topic* t = b_.find_topic(tname);
        if (!t) return err(404, "TOPIC_NOT_FOUND");
        channel* c = b_.find_channel(tname, cname);
        if (!c) return err(404, "CHANNEL_NOT_FOUND");
        fn(*t, c);
      } else {
        topic& t = b_.get_topic(tname);
        fn(t, &b_.get_channel(t, cname));
      }
      return ok_empty();
    });
  }

  // nsqd: with --tls-required=true the plain HTTP listener answers every route 403 TLS_REQUIRED
  // (nsqd adds "https_port"; there is no HTTPS listener here).
  void route(std::string method, std::string path, pipekit::net::http_handler h) {
    if (b_.opts.tls_required == tls_required_mode::yes)
      h = [](const http_request&) { return pipekit::net::json_error(403, "TLS_REQUIRED"); };
    server_.route(std::move(method), std::move(path), std::move(h));
  }

  void routes() {
    auto ping = [](const http_request&) { return ok_text("OK"); };
    route("GET", "/ping", ping);
    route("HEAD", "/ping", ping);
    route("GET", "/info", [this](const http_request&) {
      return ok_json({{"version", nsqd_version},
                      {"broadcast_address", b_.broadcast_address()},
                      {"hostname", b_.broadcast_address()},
                      {"http_port", b_.http_port},
                      {"tcp_port", b_.tcp_port},
                      {"start_time", b_.start_ns / 1000000000}});
    });
    route("POST", "/pub", [this](const http_request& r) { return pub(r); });
    route("POST", "/mpub", [this](const http_request& r) { return mpub(r); });
    route("GET", "/stats", [this](const http_request& req) {
      stats_query q;
      if (const std::string* t = req.param("topic")) q.topic = *t;
      if (const std::string* c = req.param("channel")) q.channel = *c;
      q.include_clients = param_true(req, "include_clients", true);
      q.include_mem = param_true(req, "include_mem", true);
      const std::string* format = req.param("format");
      if (format && *format == "json") return ok_json(stats(b_, q));
      return ok_text(stats_text_of(b_, q));
    });
    route("GET", "/metrics", [this](const http_request&) {
      http_response r = ok_text(metrics(b_));
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    });
    topic_route("/topic/create", false, [](topic&) {});
    topic_route("/topic/delete", true, [this](topic& t) { b_.delete_topic(t.name); });
    topic_route("/topic/empty", true, [this](topic& t) { b_.empty_topic(t); });
    topic_route("/topic/pause", true, [this](topic& t) { b_.pause_topic(t, true); });
    topic_route("/topic/unpause", true, [this](topic& t) { b_.pause_topic(t, false); });
    channel_route("/channel/create", false, [](topic&, channel*) {});
    channel_route("/channel/delete", true, [this](topic& t, channel* c) { b_.delete_channel(t, c->name); });
    channel_route("/channel/empty", true, [this](topic&, channel* c) { b_.empty_channel(*c); });
    channel_route("/channel/pause", true, [this](topic&, channel* c) { b_.pause_channel(*c, true); });
    channel_route("/channel/unpause", true, [this](topic&, channel* c) { b_.pause_channel(*c, false); });
    route("GET", "/config/nsqlookupd_tcp_addresses",
                  [this](const http_request&) { return ok_json(b_.opts.lookupd_tcp_addresses); });
    route("PUT", "/config/nsqlookupd_tcp_addresses", [this](const http_request& req) {
      auto j = json::parse(req.body, nullptr, false);
      if (j.is_discarded() || !j.is_array()) return err(400, "INVALID_VALUE");
      std::vector<std::string> v;
      for (auto& e : j) {
        if (!e.is_string()) return err(400, "INVALID_VALUE");
        v.push_back(e.get<std::string>());
      }
      b_.opts.lookupd_tcp_addresses = v;
      b_.stop_lookup_peers();  // register with the new set from now on
      b_.start_lookup_peers();
      return ok_json(v);
    });
  }

  broker::impl& b_;
  pipekit::net::http_server server_;
};

}  // namespace

std::unique_ptr<http_frontend> make_http_frontend(broker::impl& b, const std::string& address) {
  return std::make_unique<frontend>(b, address);
}

}  // namespace pipekit::nsq
