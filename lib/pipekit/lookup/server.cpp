// lookupd's server: the brokers' TCP protocol (one tcp_session per connection, commands parsed by
// command_parser), the HTTP API over net::http_server, and the registry both share. Everything
// runs on one io_context thread, so nothing here locks.
#include "pipekit/lookup/server.hpp"

#include <unistd.h>

#include <array>
#include <map>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "pipekit/cli/exit_code.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/lookup/registry.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/net/tcp_listener.hpp"
#include "pipekit/nsq/names.hpp"
#include "pipekit/nsq/protocol.hpp"
#include "pipekit/util/signals.hpp"
#include "pipekit_version.hpp"

namespace pipekit::lookup {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using error_code = boost::system::error_code;
using nlohmann::json;

namespace {

std::string host_name() {
  std::array<char, 256> buf{};
  if (::gethostname(buf.data(), buf.size() - 1) != 0) return "localhost";
  return buf.data();
}

class tcp_session;
constexpr std::size_t max_cached_lookups = 10'000;

// Counters for GET /metrics.
struct metrics {
  std::uint64_t tcp_connections_total = 0;
  std::map<std::string, std::uint64_t> tcp_commands;  // by command
  std::map<std::string, std::uint64_t> tcp_errors;    // by code
  std::map<std::string, std::uint64_t> http_requests; // by path
};

}  // namespace

struct server::impl : std::enable_shared_from_this<impl> {
  impl(asio::io_context& io_, options o)
      : io(io_), opts(std::move(o)), db(opts.inactive_producer_timeout, opts.tombstone_lifetime), http(io_, http_options()) {
    hostname = host_name();
    broadcast_address = opts.broadcast_address.empty() ? hostname : opts.broadcast_address;
  }

  static net::http_server_options http_options() {
    net::http_server_options o;
    o.headers = {{"X-NSQ-Content-Type", "nsq; version=1.0"}};
    o.body_limit = 1u << 20;
    return o;
  }

  void start();
  void add_routes();
  void stop();
  std::string metrics_text() const;
  json identify_answer() const {
    return {{"tcp_port", tcp->port()},
            {"http_port", http.port()},
            {"version", PIPEKIT_VERSION},
            {"broadcast_address", broadcast_address},
            {"hostname", hostname}};
  }

  asio::io_context& io;
  options opts;
  registry db;
  net::http_server http;
  std::unique_ptr<net::tcp_listener> tcp;
  std::unordered_map<tcp_session*, std::weak_ptr<tcp_session>> sessions;
  std::string hostname;
  std::string broadcast_address;
  metrics stats;
  net::connection_refuser refused;
  struct cached_answer {
    std::uint64_t generation;
    clock::time_point valid_until;
    std::string body;
  };
  std::unordered_map<std::string, cached_answer> lookup_cache;  // /lookup bodies by topic
  bool stopped = false;
};

namespace {

const char* command_name(command_type t) {
  switch (t) {
    case command_type::identify: return "IDENTIFY";
    case command_type::register_: return "REGISTER";
    case command_type::unregister: return "UNREGISTER";
    case command_type::ping: return "PING";
  }
  return "?";
}

// One broker connection: read what is there, run every complete command, write the answers,
// read again (so a client that does not read its answers stops being read: no unbounded queue).
class tcp_session : public std::enable_shared_from_this<tcp_session> {
 public:
  tcp_session(tcp::socket socket, std::shared_ptr<server::impl> server)
      : socket_(std::move(socket)), timer_(socket_.get_executor()), server_(std::move(server)),
        parser_(server_->opts.max_body) {
    error_code ec;
    auto remote = socket_.remote_endpoint(ec);
    id_ = ec ? "unknown" : net::to_string(remote);
  }
  ~tcp_session() { server_->sessions.erase(this); }

  void start() {
    server_->sessions.emplace(this, weak_from_this());
    ++server_->stats.tcp_connections_total;
    log::debug("tcp {}: connected", id_);
    read();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    error_code ignored;
    timer_.cancel();
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
    if (peer_) {
      log::info("tcp {}: closed; {}:{} unregistered", id_, peer_->info.broadcast_address, peer_->info.tcp_port);
      server_->db.remove_peer(peer_->id);
      peer_.reset();
    } else {
      log::debug("tcp {}: closed", id_);
    }
  }

 private:
  // Closes the connection unless the pending read or write completes by deadline.
  void arm_timer(clock::time_point deadline, const char* reason) {
    timer_.expires_at(deadline);
    timer_.async_wait([self = shared_from_this(), reason](const error_code& ec) {
      if (ec || self->closed_) return;
      log::warn("tcp {}: {}; closing", self->id_, reason);
      self->close();
    });
  }

  void read() {
    // A command once begun must be whole within command_timeout, however its bytes trickle in.
    auto now = clock::now();
    if (!parser_.mid_command()) {
      command_since_.reset();
      arm_timer(now + server_->opts.inactive_producer_timeout, "silent beyond --inactive-producer-timeout");
    } else {
      if (!command_since_) command_since_ = now;
      arm_timer(*command_since_ + server_->opts.command_timeout, "a command not complete within its time limit");
    }
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const error_code& ec, std::size_t n) {
      if (self->closed_) return;
      if (ec) {
        if (ec != asio::error::eof && ec != asio::error::operation_aborted)
          log::debug("tcp {}: read: {}", self->id_, ec.message());
        return self->close();
      }
      self->parser_.append(std::string_view(self->buf_.data(), n));
      self->run_commands();
    });
  }

  void run_commands() {
    for (;;) {
      auto r = parser_.next();
      if (std::holds_alternative<std::monostate>(r)) break;
      if (auto* err = std::get_if<protocol_error>(&r)) {
        ++server_->stats.tcp_errors[err->code];
        log::warn("tcp {}: {}; closing", id_, err->wire());
        out_ += frame(err->wire());
        close_after_write_ = true;
        break;
      }
      out_ += frame(execute(std::get<command>(r)));
    }
    if (out_.empty()) return read();
    write();
  }

  std::string execute(command& c) {
    ++server_->stats.tcp_commands[command_name(c.type)];
    auto& db = server_->db;
    switch (c.type) {
      case command_type::ping:
        if (peer_) db.touch(*peer_, clock::now());
        return "OK";
      case command_type::identify: {
        peer_ = std::make_shared<peer>();
        peer_->id = id_;
        peer_->info = std::move(c.peer);
        peer_->info.remote_address = id_;
        peer_->last_update = clock::now();
        db.add_peer(peer_);
        log::info("tcp {}: IDENTIFY broadcast_address {} tcp_port {} http_port {} version {}", id_,
                  peer_->info.broadcast_address, peer_->info.tcp_port, peer_->info.http_port, peer_->info.version);
        return server_->identify_answer().dump();
      }
      case command_type::register_:
        if (db.add_producer(c.topic, c.channel, peer_))
          log::info("tcp {}: REGISTER {}{}{}", id_, c.topic, c.channel.empty() ? "" : " ", c.channel);
        return "OK";
      case command_type::unregister:
        db.remove_producer(c.topic, c.channel, peer_->id);
        log::info("tcp {}: UNREGISTER {}{}{}", id_, c.topic, c.channel.empty() ? "" : " ", c.channel);
        return "OK";
    }
    return "OK";
  }

  void write() {
    arm_timer(clock::now() + server_->opts.command_timeout, "answers not read");  // a peer that reads nothing
    writing_ = std::move(out_);
    out_.clear();
    asio::async_write(socket_, asio::buffer(writing_), [self = shared_from_this()](const error_code& ec, std::size_t) {
      if (self->closed_) return;
      if (ec) {
        log::debug("tcp {}: write: {}", self->id_, ec.message());
        return self->close();
      }
      if (self->close_after_write_) return self->close();
      self->read();
    });
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  std::shared_ptr<server::impl> server_;
  command_parser parser_;
  std::array<char, 4096> buf_{};
  std::string out_;
  std::string writing_;
  std::string id_;
  peer_ptr peer_;
  std::optional<clock::time_point> command_since_;  // the first read of the command not yet whole
  bool close_after_write_ = false;
  bool closed_ = false;
};

// nsqlookupd's PeerInfo, fields in its struct order; the topology fields only when a broker sent them.
nlohmann::ordered_json peer_json(const peer& p) {
  nlohmann::ordered_json j{{"remote_address", p.info.remote_address}, {"hostname", p.info.hostname},
                           {"broadcast_address", p.info.broadcast_address}, {"tcp_port", p.info.tcp_port},
                           {"http_port", p.info.http_port}, {"version", p.info.version}};
  if (!p.info.topology_region.empty()) j["topology_region"] = p.info.topology_region;
  if (!p.info.topology_zone.empty()) j["topology_zone"] = p.info.topology_zone;
  return j;
}

// nsq's GetTopicChannelArgs: topic then channel, each present and valid.
std::optional<net::http_response> topic_channel_args(const net::http_request& r, std::string& topic,
                                                     std::string& channel) {
  const std::string* t = r.param("topic");
  if (!t) return net::json_error(400, "MISSING_ARG_TOPIC");
  if (!nsq::is_valid_topic_name(*t)) return net::json_error(400, "INVALID_ARG_TOPIC");
  const std::string* c = r.param("channel");
  if (!c) return net::json_error(400, "MISSING_ARG_CHANNEL");
  if (!nsq::is_valid_channel_name(*c)) return net::json_error(400, "INVALID_ARG_CHANNEL");
  topic = *t;
  channel = *c;
  return std::nullopt;
}

net::http_response ok_empty() { return net::http_response{200, "", "text/plain; charset=utf-8", {}}; }

}  // namespace

void server::impl::add_routes() {
  std::weak_ptr<impl> weak = weak_from_this();
  // Every route counts its requests for /metrics; handlers see the live impl.
  auto add = [&](const char* method, const char* path, std::function<net::http_response(impl&, const net::http_request&)> h) {
    http.route(method, path, [weak, path, h = std::move(h)](const net::http_request& r) {
      auto self = weak.lock();
      if (!self) return net::json_error(503, "EXITING");
      ++self->stats.http_requests[path];
      return h(*self, r);
    });
  };
  add("GET", "/ping", [](impl&, const net::http_request&) { return net::http_response{200, "OK", "text/plain; charset=utf-8", {}}; });
  // nsqadmin reads "version" as the nsqlookupd release (semver) to pick its API; pipekit's own beside it.
  add("GET", "/info", [](impl&, const net::http_request&) {
    return net::ordered_json_response({{"version", nsq::nsq_version}, {"pipekit_version", PIPEKIT_VERSION}});
  });
  add("GET", "/topics", [](impl& s, const net::http_request&) {
    return net::json_response({{"topics", s.db.topics(clock::now())}});
  });
  add("GET", "/channels", [](impl& s, const net::http_request& r) {
    const std::string* topic = r.param("topic");
    if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
    return net::json_response({{"channels", s.db.channels(*topic, clock::now())}});
  });
  add("GET", "/lookup", [](impl& s, const net::http_request& r) {
    const std::string* topic = r.param("topic");
    if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
    auto now = clock::now();
    if (!s.db.has_topic(*topic, now)) return net::json_error(404, "TOPIC_NOT_FOUND");
    // Consumers poll /lookup; the answer is kept until the registry changes or time alters it.
    auto cached = s.lookup_cache.find(*topic);
    if (cached != s.lookup_cache.end() && cached->second.generation == s.db.generation() && now < cached->second.valid_until)
      return net::http_response{200, cached->second.body, "application/json; charset=utf-8", {}};
    auto producers = nlohmann::ordered_json::array();
    for (const auto& p : s.db.lookup(*topic, now)) producers.push_back(peer_json(*p));
    auto answer = net::ordered_json_response(
        nlohmann::ordered_json{{"channels", s.db.channels(*topic, now)}, {"producers", std::move(producers)}});
    if (s.lookup_cache.size() >= max_cached_lookups) s.lookup_cache.clear();
    s.lookup_cache[*topic] = {s.db.generation(), s.db.valid_until(*topic, now), answer.body};
    return answer;
  });
  add("GET", "/nodes", [](impl& s, const net::http_request&) {
    auto producers = nlohmann::ordered_json::array();
    for (auto& n : s.db.nodes(clock::now())) {
      auto j = peer_json(*n.peer);
      j["tombstones"] = n.tombstones;
      j["topics"] = n.topics;
      producers.push_back(std::move(j));
    }
    return net::ordered_json_response(nlohmann::ordered_json{{"producers", std::move(producers)}});
  });
  add("GET", "/debug", [](impl& s, const net::http_request&) {
    json data = json::object();
    auto steady_now = clock::now();
    auto wall_now = std::chrono::system_clock::now();
    auto to_unix_ns = [&](clock::time_point t) {
      return std::chrono::duration_cast<std::chrono::nanoseconds>((wall_now - (steady_now - t)).time_since_epoch()).count();
    };
    s.db.for_each([&](const char* category, const std::string& key, const std::string& subkey, const registration& reg) {
      for (const auto& [id, p] : reg.producers) {
        data[fmt::format("{}:{}:{}", category, key, subkey)].push_back(
            {{"id", id}, {"hostname", p.peer->info.hostname}, {"broadcast_address", p.peer->info.broadcast_address},
             {"tcp_port", p.peer->info.tcp_port}, {"http_port", p.peer->info.http_port},
             {"version", p.peer->info.version}, {"last_update", to_unix_ns(p.peer->last_update)},
             {"tombstoned", p.tombstoned}, {"tombstoned_at", p.tombstoned ? to_unix_ns(p.tombstoned_at) : 0}});
      }
    });
    return net::json_response(data);
  });
  add("POST", "/topic/create", [](impl& s, const net::http_request& r) {
    const std::string* topic = r.param("topic");
    if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
    if (!nsq::is_valid_topic_name(*topic)) return net::json_error(400, "INVALID_ARG_TOPIC");
    log::info("http: topic {} created", *topic);
    s.db.create_topic(*topic);
    return ok_empty();
  });
  add("POST", "/topic/delete", [](impl& s, const net::http_request& r) {
    const std::string* topic = r.param("topic");
    if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
    log::info("http: topic {} deleted", *topic);
    s.db.delete_topic(*topic);
    return ok_empty();
  });
  add("POST", "/channel/create", [](impl& s, const net::http_request& r) {
    std::string topic, channel;
    if (auto bad = topic_channel_args(r, topic, channel)) return *bad;
    log::info("http: channel {} of topic {} created", channel, topic);
    s.db.create_channel(topic, channel);
    return ok_empty();
  });
  add("POST", "/channel/delete", [](impl& s, const net::http_request& r) {
    std::string topic, channel;
    if (auto bad = topic_channel_args(r, topic, channel)) return *bad;
    if (!s.db.delete_channel(topic, channel)) return net::json_error(404, "CHANNEL_NOT_FOUND");
    log::info("http: channel {} of topic {} deleted", channel, topic);
    return ok_empty();
  });
  add("POST", "/topic/tombstone", [](impl& s, const net::http_request& r) {
    const std::string* topic = r.param("topic");
    if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
    const std::string* node = r.param("node");
    if (!node) return net::json_error(400, "MISSING_ARG_NODE");
    log::info("http: producer {} of topic {} tombstoned", *node, *topic);
    s.db.tombstone(*topic, *node);
    return ok_empty();
  });
  add("GET", "/metrics", [](impl& s, const net::http_request&) {
    return net::http_response{200, s.metrics_text(), "text/plain; version=0.0.4; charset=utf-8", {}};
  });
}

std::string server::impl::metrics_text() const {
  auto now = clock::now();
  std::string out;
  auto gauge = [&](const char* name, const char* help, std::size_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} gauge\n{0} {2}\n", name, help, value);
  };
  auto counters = [&](const char* name, const char* help, const char* label, const std::map<std::string, std::uint64_t>& m) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n", name, help);
    for (const auto& [k, v] : m) out += fmt::format("{}{{{}=\"{}\"}} {}\n", name, label, k, v);
  };
  std::size_t channels = 0;
  auto topics = db.topics(now);
  for (const auto& t : topics) channels += db.channels(t, now).size();
  gauge("lookupd_producers", "Identified brokers connected over TCP.", db.peer_count());
  gauge("lookupd_topics", "Topics listed by /topics.", topics.size());
  gauge("lookupd_channels", "Channels listed, all topics together.", channels);
  gauge("lookupd_tcp_connections", "Open TCP connections.", sessions.size());
  out += fmt::format("# HELP lookupd_tcp_connections_total TCP connections accepted.\n"
                     "# TYPE lookupd_tcp_connections_total counter\nlookupd_tcp_connections_total {}\n",
                     stats.tcp_connections_total);
  counters("lookupd_tcp_commands_total", "TCP commands run, by command.", "command", stats.tcp_commands);
  counters("lookupd_tcp_errors_total", "TCP protocol errors (each closed its connection), by code.", "code", stats.tcp_errors);
  counters("lookupd_http_requests_total", "HTTP requests, by route.", "path", stats.http_requests);
  return out;
}

void server::impl::start() {
  add_routes();
  std::weak_ptr<impl> weak = weak_from_this();
  if (opts.max_connections < 0) opts.max_connections = static_cast<std::int64_t>(net::default_max_connections());
  tcp = std::make_unique<net::tcp_listener>(io, opts.tcp_address, [weak](tcp::socket socket) {
    auto self = weak.lock();
    if (!self || self->stopped) return;
    if (self->opts.max_connections > 0 && self->sessions.size() >= static_cast<std::size_t>(self->opts.max_connections))
      return self->refused.refuse(std::move(socket), self->opts.max_connections);
    std::make_shared<tcp_session>(std::move(socket), self)->start();
  }, "tcp_address");
  http.listen(opts.http_address, "http_address");
}

void server::impl::stop() {
  if (stopped) return;
  stopped = true;
  if (tcp) tcp->close();
  http.stop();
  std::vector<std::shared_ptr<tcp_session>> live;
  for (auto& [ptr, weak] : sessions)
    if (auto s = weak.lock()) live.push_back(std::move(s));
  for (auto& s : live) s->close();
}

server::server(asio::io_context& io, options opts) : impl_(std::make_shared<impl>(io, std::move(opts))) {
  impl_->start();
}

server::~server() { stop(); }

std::uint16_t server::tcp_port() const { return impl_->tcp->port(); }
std::uint16_t server::http_port() const { return impl_->http.port(); }
void server::stop() { impl_->stop(); }

std::string server::tcp_address() const { return net::to_string(impl_->tcp->local_endpoint()); }
std::string server::http_address() const { return impl_->http.local_address(); }
bool server::idle() const { return impl_->sessions.empty() && impl_->http.connections() == 0; }

int run(const options& opts) {
  asio::io_context io;
  server s(io, opts);
  log::info("TCP: listening on {} (brokers register here)", s.tcp_address());
  log::info("HTTP: listening on {}", s.http_address());
  int signals = 0;
  util::on_stop_signals(io, [&](int signo) {
    if (++signals == 1) log::info("signal {}: stopping", signo);
    s.stop();
    io.stop();
  });
  io.run();
  // Let answers being written finish (bounded): closed connections' handlers run to the end.
  io.restart();
  auto deadline = clock::now() + std::chrono::seconds(2);
  while (!s.idle() && clock::now() < deadline) io.run_one_for(std::chrono::milliseconds(50));
  log::info("stopped");
  return exit_code::ok;
}

}  // namespace pipekit::lookup
