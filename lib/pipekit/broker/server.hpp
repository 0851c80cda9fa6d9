#pragma once
// nsq-broker as a library: an nsqd-compatible broker (TCP protocol V2 and nsqd's HTTP API) that
// tests start in-process on port 0 and cmd/nsq-broker wires to flags.
//
//   boost::asio::io_context io{1};
//   broker::options o;  o.tcp_address = "127.0.0.1:0";  o.http_address = "127.0.0.1:0";
//   broker::server b(io, o);  std::thread t([&] { io.run(); });
//   ...  boost::asio::post(io, [&] { b.stop(); });  t.join();
//
// The daemon shape of docs/architecture.md. One io_context on one thread serves every connection:
// no locks on the message path.
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace pipekit::broker {

// nsqd's --tls-required: false; tcp-https (TLS for TCP clients, plain HTTP still served); true
// (TCP clients must upgrade before any command but IDENTIFY; plain HTTP answers 403 TLS_REQUIRED).
enum class tls_required_mode { no, tcp_https, yes };
// nsqd's spellings: "tcp-https", or a Go boolean (true, false, 1, 0, t, f; any case).
bool parse_tls_required(std::string_view text, tls_required_mode& out);
// What an #ephemeral channel does with a message from its topic once it holds --mem-queue-size
// queued messages (nsqd drops it for that channel, silently).
enum class ephemeral_overflow {
  hold,  // the topic stops pumping and keeps its messages until the channel drains
  drop,  // the message is dropped for that channel only, counted (dropped_count) and logged
};

// Member initialisers are nsqd's defaults (nsqd/options.go), durations in milliseconds.
struct options {
  std::string tcp_address = "127.0.0.1:4150";
  std::string http_address = "127.0.0.1:4151";  // empty: no HTTP listener
  std::string broadcast_address;                // empty: the TCP listen address's IP (127.0.0.1 for any)
  std::vector<std::string> lookupd_tcp_addresses;
  // AUTH (nsqd's --auth-http-address): auth servers, "host:port" or "http://host:port/path"; empty:
  // AUTH disabled. Each is asked in turn (from a random one) until one answers.
  std::vector<std::string> auth_http_addresses;
  std::string data_path;  // where the disk queues and metadata live (empty: memory only)
  // OK to PUB/MPUB/DPUB (and 200 to HTTP /pub, /mpub) only once the message is fsynced; requires
  // data_path. Every message of a non-ephemeral topic goes through its disk queue.
  bool durable = false;

  // TLS for TCP clients (nsqd's --tls-* flags): with a certificate and key, IDENTIFY offers tls_v1.
  std::string tls_cert;
  std::string tls_key;
  std::string tls_root_ca_file;        // CAs for client certificates
  std::string tls_client_auth_policy;  // "", "require", "require-verify" (either makes TLS required)
  tls_required_mode tls_required = tls_required_mode::no;
  std::string tls_min_version = "tls1.2";  // nsqd's default is tls1.0; pipekit's is the secure one

  std::int64_t mem_queue_size = 10000;
  std::int64_t max_msg_size = 1024 * 1024;
  std::int64_t max_body_size = 5 * 1024 * 1024;
  std::int64_t max_rdy_count = 2500;
  std::int64_t max_output_buffer_size = 64 * 1024;
  std::int64_t output_buffer_size = 16 * 1024;
  std::int64_t sync_every = 2500;
  // TCP clients served at once (beyond nsqd, which has no limit); one more gets an error frame
  // (E_TOO_MANY_CONNECTIONS) and is closed. -1: from the file descriptor limit
  // (net::default_max_connections); 0: no limit.
  std::int64_t max_connections = -1;

  std::chrono::milliseconds msg_timeout{60000};
  std::chrono::milliseconds max_msg_timeout{15 * 60 * 1000};
  std::chrono::milliseconds max_req_timeout{60 * 60 * 1000};
  std::chrono::milliseconds max_heartbeat_interval{60000};
  std::chrono::milliseconds client_timeout{60000};  // heartbeats every half of it until IDENTIFY says otherwise
  std::chrono::milliseconds output_buffer_timeout{250};
  std::chrono::milliseconds max_output_buffer_timeout{30000};
  std::chrono::milliseconds queue_scan_interval{100};
  std::chrono::milliseconds sync_timeout{2000};

  // Beyond nsqd: a message older than its topic's TTL (age from its publish timestamp) is dropped
  // instead of delivered, and counted (expired_count). 0: never expires.
  std::chrono::milliseconds msg_ttl{0};
  std::map<std::string, std::chrono::milliseconds, std::less<>> topic_msg_ttl;  // overrides msg_ttl
  ephemeral_overflow ephemeral_overflow_policy = ephemeral_overflow::hold;

  // The TTL of a topic's messages: its --topic-msg-ttl, else --msg-ttl (0: never).
  std::chrono::milliseconds msg_ttl_for(std::string_view topic) const {
    auto it = topic_msg_ttl.find(topic);
    return it == topic_msg_ttl.end() ? msg_ttl : it->second;
  }
};

// "TOPIC=DURATION" (--topic-msg-ttl) into options.topic_msg_ttl. Throws std::invalid_argument
// naming what is wrong (no '=', a bad topic name, a bad duration).
void add_topic_msg_ttl(options& opts, std::string_view spec);

class server {
 public:
  // Loads the TLS certificate and key (when given), binds the listeners, reads --data-path's
  // metadata, registers with lookupd; everything then runs on io's thread (run io on one thread).
  // Throws pipekit::fatal_error (exit_code::usage for a listen address that cannot be read,
  // exit_code::config for a bad TLS setting, exit_code::no_input for a TLS file that cannot be read,
  // exit_code::unavailable when it cannot listen).
  server(boost::asio::io_context& io, options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  std::uint16_t tcp_port() const;
  std::uint16_t http_port() const;  // 0 when there is no HTTP listener

  // Stops accepting; consumers hand back what they had in flight, the queues are persisted
  // (--data-path), each client gets what is buffered for it and is closed (1 s at most). Then io
  // runs out of work. Idempotent. REQUIRES: called on io's thread.
  void stop();
  // No connection left: stop() has run to its end.
  bool idle() const;

  struct impl;

 private:
  std::unique_ptr<impl> impl_;
};

// The daemon: binds, serves until SIGINT or SIGTERM, stops, returns 0.
int run(const options& opts);

}  // namespace pipekit::broker
