// nsq-broker's HTTP API: nsqd's routes and JSON shapes, on the broker's io_context.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <ctime>
#include <optional>

#include <boost/asio/ip/host_name.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/log/log.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/broker/server_internal.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit_version.hpp"

namespace pipekit::broker {

namespace {

using json = nlohmann::ordered_json;  // keys in nsqd's struct field order
using pipekit::net::http_request;
using pipekit::net::http_response;

// Every answer carries nsqd's X-NSQ-Content-Type (http_server_options::headers) but /ping's.
http_response err(int status, std::string_view code) { return pipekit::net::json_error(status, code); }
http_response ok_empty() { return {}; }
http_response ok_json(const json& j) { return pipekit::net::ordered_json_response(j); }
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

constexpr std::int64_t ns_per_ms = 1'000'000;

// Go's time.Duration.String(): "0s", "1.5ms", "2m3.000000001s", "1h0m5s".
std::string go_duration(std::int64_t ns) {
  if (ns == 0) return "0s";
  std::string sign = ns < 0 ? "-" : "";
  std::uint64_t u = ns < 0 ? 0 - static_cast<std::uint64_t>(ns) : static_cast<std::uint64_t>(ns);
  auto with_fraction = [](std::uint64_t whole, std::uint64_t frac, int digits) {
    std::string out = std::to_string(whole);
    if (frac == 0) return out;
    std::string f = fmt::format("{:0{}}", frac, digits);
    while (f.back() == '0') f.pop_back();
    return out + "." + f;
  };
  if (u < 1000) return sign + std::to_string(u) + "ns";
  if (u < 1'000'000) return sign + with_fraction(u / 1000, u % 1000, 3) + "\u00b5s";
  if (u < 1'000'000'000) return sign + with_fraction(u / 1'000'000, u % 1'000'000, 6) + "ms";
  std::uint64_t secs = u / 1'000'000'000;
  std::string out = sign;
  if (secs >= 3600) out += std::to_string(secs / 3600) + "h";
  if (secs >= 60) out += std::to_string(secs / 60 % 60) + "m";
  return out + with_fraction(secs % 60, u % 1'000'000'000, 9) + "s";
}

// Go's time.RFC3339 in local time: "2026-12-07T03:04:05Z" or "...+01:00".
std::string rfc3339(std::int64_t unix_s) {
  std::time_t t = static_cast<std::time_t>(unix_s);
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  long off = tm.tm_gmtoff;
  if (off == 0) return std::string(date) + "Z";
  char sign = off < 0 ? '-' : '+';
  off = off < 0 ? -off : off;
  return fmt::format("{}{}{:02}:{:02}", date, sign, off / 3600, off / 60 % 60);
}

// nsqd's client.Stats(topic): the publish counts of one topic only when /stats names one.
json pub_counts_json(const client_info& c, std::string_view topic) {
  json out = json::array();
  for (const auto& [name, count] : c.pub_counts)
    if (topic.empty() || name == topic) out.push_back({{"topic", name}, {"count", count}});
  return out;
}

json client_json(const client_info& c, std::string_view topic) {
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
            {"user_agent", c.user_agent}};
  if (c.authed) {  // nsqd leaves these out when empty (omitempty), as pub_counts
    j["authed"] = true;
    if (!c.auth_identity.empty()) j["auth_identity"] = c.auth_identity;
    if (!c.auth_identity_url.empty()) j["auth_identity_url"] = c.auth_identity_url;
  }
  if (json counts = pub_counts_json(c, topic); !counts.empty()) j["pub_counts"] = std::move(counts);
  j["tls"] = c.tls;
  j["tls_cipher_suite"] = c.tls_info.cipher_suite;
  j["tls_version"] = c.tls_info.version;
  j["tls_negotiated_protocol"] = c.tls_info.negotiated_protocol;
  j["tls_negotiated_protocol_is_mutual"] = c.tls_info.negotiated_protocol_is_mutual;
  return j;
}

// nsqd's ClientV2Stats.String(): one line of the text /stats.
std::string client_text(const client_info& c, std::int64_t now_s) {
  std::string port = c.remote_address.substr(c.remote_address.rfind(':') + 1);
  std::string id = fmt::format("{}:{} {}", c.hostname, port, c.user_agent);
  std::string connected = go_duration((now_s - c.connect_ts) * 1'000'000'000);
  if (!c.pub_counts.empty()) {
    std::uint64_t total = 0;
    std::string topics;
    for (const auto& [name, count] : c.pub_counts) {
      total += count;
      topics += fmt::format("{}{}={}", topics.empty() ? "" : ",", name, count);
    }
    return fmt::format("[V2 {:<21}] msgs: {:<8} topics: {} connected: {}", id, total, topics, connected);
  }
  return fmt::format("[V2 {:<21}] state: {} inflt: {:<4} rdy: {:<4} fin: {:<8} re-q: {:<8} msgs: {:<8} connected: {}",
                     id, c.state == client_state::subscribed ? 3 : c.state == client_state::init ? 1 : 4,
                     c.in_flight_count, c.ready_count, c.finish_count, c.requeue_count, c.message_count, connected);
}

// nsqd's e2e_processing_latency without --e2e-processing-latency-percentile (pipekit has none).
json latency_json() { return {{"count", 0}, {"percentiles", nullptr}}; }

// The topic, channel and clients parameters nsqd's /stats reads.
struct stats_query {
  std::string topic, channel;
  bool include_clients = true;
  bool include_mem = true;
};

// nsqd's GetStats: a topic named and absent gives no topics; a channel named leaves out the
// topics without it.
template <class Fn>
void for_each_stats_topic(server::impl& b, const stats_query& q, Fn fn) {
  for (auto& [name, t] : b.topics) {
    if (!q.topic.empty() && name != q.topic) continue;
    if (!q.channel.empty() && !t->channels.contains(q.channel)) continue;
    fn(*t);
  }
}

json channel_json(const channel& c, const stats_query& q) {
  json clients = nullptr;  // Go's nil slice without include_clients
  if (q.include_clients) {
    clients = json::array();
    for (const connection* conn : c.consumers) clients.push_back(client_json(conn->info, q.topic));
  }
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

// Producers: connections that published (nsqd lists them only with include_clients).
std::vector<const client_info*> producers(server::impl& b, const stats_query& q) {
  std::vector<const client_info*> out;
  if (!q.include_clients) return out;
  for (auto& [id, conn] : b.connections)
    if (!conn->info.pub_counts.empty()) out.push_back(&conn->info);
  std::sort(out.begin(), out.end(), [](auto* x, auto* y) { return x->id < y->id; });
  return out;
}

json memory_json() {
  return {{"heap_objects", 0},      {"heap_idle_bytes", 0},   {"heap_in_use_bytes", rss_bytes()},
          {"heap_released_bytes", 0}, {"gc_pause_usec_100", 0}, {"gc_pause_usec_99", 0},
          {"gc_pause_usec_95", 0},  {"next_gc_bytes", 0},     {"gc_total_runs", 0}};
}

json stats(server::impl& b, const stats_query& q) {
  json topics = json::array();
  for_each_stats_topic(b, q, [&](topic& t) {
    json channels = json::array();
    for (auto& [cname, c] : t.channels)
      if (q.channel.empty() || cname == q.channel) channels.push_back(channel_json(*c, q));
    topics.push_back({{"topic_name", t.name},
                      {"channels", channels},
                      {"depth", t.queue.depth()},
                      {"backend_depth", t.queue.backend_depth()},
                      {"message_count", t.message_count},
                      {"message_bytes", t.message_bytes},
                      {"paused", t.paused},
                      {"e2e_processing_latency", latency_json()},
                      {"expired_count", t.expired_count}});
  });
  if (!q.topic.empty() && !b.topics.contains(q.topic)) topics = nullptr;  // nsqd: nil
  json producer_list = nullptr;  // nsqd: nil when there is none
  for (const client_info* p : producers(b, q)) {
    if (producer_list.is_null()) producer_list = json::array();
    producer_list.push_back(client_json(*p, q.topic));
  }
  json out = {{"version", nsq_version},
              {"health", "OK"},
              {"start_time", b.start_ns / 1000000000},
              {"topics", topics}};
  if (q.include_mem) out["memory"] = memory_json();
  out["producers"] = producer_list;
  return out;
}

// pipekit's own counters after nsqd's line, each only when it is not 0 (so the text is nsqd's).
std::string extra_counts(std::initializer_list<std::pair<std::string_view, std::uint64_t>> counts) {
  std::string out;
  for (const auto& [name, value] : counts)
    if (value != 0) out += fmt::format(" {}: {}", name, value);
  return out;
}

// nsqd's printStats, line by line.
std::string stats_text(server::impl& b, const stats_query& q) {
  const std::int64_t now_ns = wall_ns();
  std::string out = fmt::format("nsqd v{} (built w/pipekit {})\nstart_time {}\nuptime {}\n\nHealth: OK\n", nsq_version,
                                PIPEKIT_VERSION, rfc3339(b.start_ns / 1000000000), go_duration(now_ns - b.start_ns));
  if (q.include_mem) {
    out += "\nMemory:\n";
    const json memory = memory_json();
    for (const auto& [key, value] : memory.items()) out += fmt::format("   {:<25}\t{}\n", key, value.dump());
  }
  std::string topics;
  for_each_stats_topic(b, q, [&](topic& t) {
    topics += fmt::format("\n{}[{:<15}] depth: {:<5} be-depth: {:<5} msgs: {:<8} e2e%: {}\n", t.paused ? "*P " : "   ",
                          t.name, t.queue.depth(), t.queue.backend_depth(), t.message_count,
                          extra_counts({{"expired", t.expired_count}}));
    for (auto& [cname, c] : t.channels) {
      if (!q.channel.empty() && cname != q.channel) continue;
      topics += fmt::format(
          "{}[{:<25}] depth: {:<5} be-depth: {:<5} inflt: {:<4} def: {:<4} re-q: {:<5} timeout: {:<5} msgs: {:<8} "
          "e2e%: {}\n",
          c->paused ? "   *P " : "      ", cname, c->queue.depth(), c->queue.backend_depth(), c->in_flight.size(),
          c->deferred.size(), c->requeue_count, c->timeout_count, c->message_count,
          extra_counts({{"expired", c->expired_count},
                        {"dropped", c->dropped_count},
                        {"disconnect-re-q", c->disconnect_requeue_count}}));
      if (!q.include_clients) continue;
      for (const connection* conn : c->consumers)
        topics += fmt::format("        {}\n", client_text(conn->info, now_ns / 1000000000));
    }
  });
  out += topics.empty() ? "\nTopics: None\n" : "\nTopics:" + topics;
  auto list = producers(b, q);
  if (list.empty()) out += "\nProducers: None\n";
  else out += "\nProducers:\n";
  for (const client_info* p : list) out += fmt::format("   {}\n", client_text(*p, now_ns / 1000000000));
  return out;
}

std::string metrics(server::impl& b) {
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
  per_channel("nsq_channel_messages_total", "counter", "Messages put into a channel (nsqd's message_count).",
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

// nsqd's boolParams: "true"/"1" and "false"/"0"; anything else (or absent) is dflt.
bool go_bool_param(const http_request& req, std::string_view name, bool dflt) {
  const std::string* v = req.param(name);
  if (!v) return dflt;
  if (*v == "true" || *v == "1") return true;
  if (*v == "false" || *v == "0") return false;
  return dflt;
}

class frontend final : public http_frontend {
 public:
  frontend(server::impl& b, const std::string& address) : b_(b), server_(b.io, http_options(b)) {
    routes();
    server_.listen(address, "http_address");
    log::info("HTTP: listening on {}", server_.local_address());
  }
  std::uint16_t port() const override { return server_.port(); }
  std::size_t connections() const override { return server_.connections(); }
  void stop() override { server_.stop(); }

 private:
  static pipekit::net::http_server_options http_options(server::impl& b) {
    pipekit::net::http_server_options o;
    o.body_limit = static_cast<std::size_t>(std::max(b.opts.max_body_size, b.opts.max_msg_size)) + 1;
    o.headers = {{"X-NSQ-Content-Type", "nsq; version=1.0"}};  // nsqd's http_api.RespondV1
    // What nsqd answers each route's body over its limit (the server's limit is the larger one).
    o.body_too_large = [](std::string_view path) {
      if (path == "/pub") return err(413, "MSG_TOO_BIG");
      if (path.starts_with("/config/")) return err(413, "INVALID_VALUE");
      return err(413, "BODY_TOO_BIG");
    };
    return o;
  }

  // nsqd's getTopicFromQuery (/pub, /mpub, /topic/create, /topic/empty): ?topic= must be a valid name.
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
    // nsqd: ?binary= is binary unless it is "false" or "0" (its deprecated values read as true).
    const std::string* binary = req.param("binary");
    if (binary && *binary != "false" && *binary != "0") {
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

  // nsqd's topic routes: /topic/create and /topic/empty check the name (INVALID_TOPIC); delete,
  // pause and unpause only look it up, so an invalid name is a topic not found.
  template <class Fn>
  void topic_route(const std::string& path, Fn fn) {
    const bool create = path == "/topic/create";
    const bool check_name = create || path == "/topic/empty";
    route("POST", path, [this, create, check_name, fn](const http_request& req) {
      std::string name;
      http_response e;
      if (check_name && !topic_param(req, name, e)) return e;
      if (!check_name) {
        const std::string* t = req.param("topic");
        if (!t) return err(400, "MISSING_ARG_TOPIC");
        name = *t;
      }
      topic* t = create ? &b_.get_topic(name) : b_.find_topic(name);
      if (!t) return err(404, "TOPIC_NOT_FOUND");
      fn(*t);
      return ok_empty();
    });
  }
  // nsqd's getExistingTopicFromQuery: both names valid (INVALID_ARG_*), the topic must exist (also
  // for /channel/create); then the channel must exist but for /channel/create.
  template <class Fn>
  void channel_route(const std::string& path, Fn fn) {
    const bool create = path == "/channel/create";
    route("POST", path, [this, create, fn](const http_request& req) {
      const std::string* tname = req.param("topic");
      if (!tname) return err(400, "MISSING_ARG_TOPIC");
      if (!is_valid_topic_name(*tname)) return err(400, "INVALID_ARG_TOPIC");
      const std::string* cname = req.param("channel");
      if (!cname) return err(400, "MISSING_ARG_CHANNEL");
      if (!is_valid_channel_name(*cname)) return err(400, "INVALID_ARG_CHANNEL");
      topic* t = b_.find_topic(*tname);
      if (!t) return err(404, "TOPIC_NOT_FOUND");
      channel* c = create ? &b_.get_channel(*t, *cname) : b_.find_channel(*tname, *cname);
      if (!c) return err(404, "CHANNEL_NOT_FOUND");
      fn(*t, *c);
      return ok_empty();
    });
  }

  // nsqd: with --tls-required=true the plain HTTP listener answers every route 403 TLS_REQUIRED
  // (nsqd adds "https_port"; there is no HTTPS listener here).
  pipekit::net::http_handler guard(pipekit::net::http_handler h) {
    if (b_.opts.tls_required == tls_required_mode::yes)
      h = [](const http_request&) { return err(403, "TLS_REQUIRED"); };
    return h;
  }
  void route(std::string method, std::string path, pipekit::net::http_handler h) {
    server_.route(std::move(method), std::move(path), guard(std::move(h)));
  }

  // GET /config/:opt: an option by nsqd's config name, as nsqd's JSON gives it (durations in ns).
  std::optional<json> config_value(std::string_view opt) const {
    const options& o = b_.opts;
    auto ns = [](std::chrono::milliseconds ms) { return ms.count() * ns_per_ms; };
    if (opt == "log_level") return json(b_.nsqd_log_level);
    if (opt == "tcp_address") return json(o.tcp_address);
    if (opt == "http_address") return json(o.http_address);
    if (opt == "broadcast_address") return json(b_.broadcast_address());
    if (opt == "nsqlookupd_tcp_addresses") return json(o.lookupd_tcp_addresses);
    if (opt == "auth_http_addresses") return json(o.auth_http_addresses);
    if (opt == "data_path") return json(o.data_path);
    if (opt == "mem_queue_size") return json(o.mem_queue_size);
    if (opt == "sync_every") return json(o.sync_every);
    if (opt == "sync_timeout") return json(ns(o.sync_timeout));
    if (opt == "msg_timeout") return json(ns(o.msg_timeout));
    if (opt == "max_msg_timeout") return json(ns(o.max_msg_timeout));
    if (opt == "max_msg_size") return json(o.max_msg_size);
    if (opt == "max_body_size") return json(o.max_body_size);
    if (opt == "max_req_timeout") return json(ns(o.max_req_timeout));
    if (opt == "max_heartbeat_interval") return json(ns(o.max_heartbeat_interval));
    if (opt == "max_rdy_count") return json(o.max_rdy_count);
    if (opt == "max_output_buffer_size") return json(o.max_output_buffer_size);
    if (opt == "max_output_buffer_timeout") return json(ns(o.max_output_buffer_timeout));
    if (opt == "min_output_buffer_timeout") return json(b_.id_limits.min_output_buffer_timeout_ms * ns_per_ms);
    if (opt == "output_buffer_timeout") return json(ns(o.output_buffer_timeout));
    if (opt == "tls_cert") return json(o.tls_cert);
    if (opt == "tls_key") return json(o.tls_key);
    if (opt == "tls_root_ca_file") return json(o.tls_root_ca_file);
    if (opt == "tls_client_auth_policy") return json(o.tls_client_auth_policy);
    if (opt == "tls_required")  // nsqd: TLSNotRequired 0, TLSRequiredExceptHTTP 1, TLSRequired 2
      return json(o.tls_required == tls_required_mode::no ? 0 : o.tls_required == tls_required_mode::tcp_https ? 1 : 2);
    if (opt == "tls_min_version")  // Go's tls.VersionTLS1x: 0x0301 + x
      return json(0x0301 + (o.tls_min_version.size() == 6 ? o.tls_min_version[5] - '0' : 2));
    if (opt == "deflate" || opt == "snappy") return json(true);
    if (opt == "max_deflate_level") return json(max_deflate_level);
    return std::nullopt;
  }

  // PUT /config/:opt: nsqd changes nsqlookupd_tcp_addresses (a JSON array) and log_level (a name).
  http_response put_config(std::string_view opt, const std::string& body) {
    if (body.empty() || static_cast<std::int64_t>(body.size()) > b_.opts.max_msg_size) return err(413, "INVALID_VALUE");
    if (opt == "nsqlookupd_tcp_addresses") {
      auto j = nlohmann::json::parse(body, nullptr, false);
      if (j.is_discarded() || !(j.is_array() || j.is_null())) return err(400, "INVALID_VALUE");
      std::vector<std::string> v;
      for (auto& e : j) {
        if (!e.is_string()) return err(400, "INVALID_VALUE");
        v.push_back(e.get<std::string>());
      }
      b_.opts.lookupd_tcp_addresses = v;
      b_.stop_lookup_peers();  // register with the new set from now on
      b_.start_lookup_peers();
    } else if (opt == "log_level") {
      // nsqd's lg.ParseLogLevel (any case; 1 debug .. 5 fatal, which pipekit logs as error).
      static constexpr std::pair<std::string_view, log::level> levels[] = {
          {"debug", log::level::debug}, {"info", log::level::info}, {"warn", log::level::warn},
          {"error", log::level::error}, {"fatal", log::level::error}};
      std::string name = body;
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
      auto it = std::find_if(std::begin(levels), std::end(levels), [&](const auto& l) { return l.first == name; });
      if (it == std::end(levels)) return err(400, "INVALID_VALUE");
      b_.nsqd_log_level = static_cast<int>(it - std::begin(levels)) + 1;
      log::set_min_level(it->second);
      log::info("HTTP: log level set to {}", name);
    } else {
      return err(400, "INVALID_OPTION");
    }
    return ok_json(*config_value(opt));
  }

  void routes() {
    // nsqd's /ping is plain text, without X-NSQ-Content-Type; HEAD is not a route (405).
    server_.route("GET", "/ping", guard([](const http_request&) {
      http_response r = ok_text("OK");
      r.without_server_headers = true;
      return r;
    }));
    route("GET", "/info", [this](const http_request&) {
      return ok_json({{"version", nsq_version},
                      {"broadcast_address", b_.broadcast_address()},
                      {"hostname", asio::ip::host_name()},
                      {"http_port", b_.http_port},
                      {"tcp_port", b_.tcp_port},
                      {"start_time", b_.start_ns / 1000000000},
                      {"max_heartbeat_interval", b_.opts.max_heartbeat_interval.count() * ns_per_ms},
                      {"max_output_buffer_size", b_.opts.max_output_buffer_size},
                      {"max_output_buffer_timeout", b_.opts.max_output_buffer_timeout.count() * ns_per_ms},
                      {"max_deflate_level", max_deflate_level},
                      {"pipekit_version", PIPEKIT_VERSION}});  // beyond nsqd: which pipekit answers
    });
    route("POST", "/pub", [this](const http_request& r) { return pub(r); });
    route("POST", "/mpub", [this](const http_request& r) { return mpub(r); });
    route("GET", "/stats", [this](const http_request& req) {
      stats_query q;
      if (const std::string* t = req.param("topic")) q.topic = *t;
      if (const std::string* c = req.param("channel")) q.channel = *c;
      q.include_clients = go_bool_param(req, "include_clients", true);
      q.include_mem = go_bool_param(req, "include_mem", true);
      const std::string* format = req.param("format");
      if (format && *format == "json") return ok_json(stats(b_, q));
      return ok_text(stats_text(b_, q));
    });
    route("GET", "/metrics", [this](const http_request&) {
      http_response r = ok_text(metrics(b_));
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      return r;
    });
    topic_route("/topic/create", [](topic&) {});
    topic_route("/topic/delete", [this](topic& t) { b_.delete_topic(t); });
    topic_route("/topic/empty", [this](topic& t) { b_.empty_topic(t); });
    topic_route("/topic/pause", [this](topic& t) { b_.pause_topic(t, true); });
    topic_route("/topic/unpause", [this](topic& t) { b_.pause_topic(t, false); });
    channel_route("/channel/create", [](topic&, channel&) {});
    channel_route("/channel/delete", [this](topic&, channel& c) { b_.delete_channel(c); });
    channel_route("/channel/empty", [this](topic&, channel& c) { b_.empty_channel(c); });
    channel_route("/channel/pause", [this](topic&, channel& c) { b_.pause_channel(c, true); });
    channel_route("/channel/unpause", [this](topic&, channel& c) { b_.pause_channel(c, false); });
    // nsqd's /config/:opt: any option to read, two to change; another name is 400 INVALID_OPTION.
    for (const char* method : {"GET", "PUT"})
      server_.route_prefix(method, "/config/", guard([this](const http_request& req) {
        std::string_view opt = std::string_view(req.path).substr(std::string_view("/config/").size());
        if (req.method == "PUT") return put_config(opt, req.body);
        std::optional<json> v = config_value(opt);
        return v ? ok_json(*v) : err(400, "INVALID_OPTION");
      }));
  }

  server::impl& b_;
  pipekit::net::http_server server_;
};

}  // namespace

std::unique_ptr<http_frontend> make_http_frontend(server::impl& b, const std::string& address) {
  return std::make_unique<frontend>(b, address);
}

}  // namespace pipekit::broker
