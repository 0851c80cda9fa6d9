// nsq-broker over real sockets: the broker runs in-process on port 0, clients are blocking sockets.
#include <catch2/catch.hpp>

#include <sys/socket.h>

#include <cerrno>

#include <algorithm>
#include <filesystem>
#include <random>
#include <regex>
#include <set>

#include <unistd.h>
#include <chrono>
#include <string>
#include <thread>

#include <atomic>
#include <mutex>

#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/host_name.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/broker/auth.hpp"
#include "pipekit/broker/server.hpp"
#include "pipekit/log/log.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/nsq/compress.hpp"
#include "pipekit/nsq/protocol.hpp"

namespace net = boost::asio;
using tcp = net::ip::tcp;
using namespace pipekit::nsq;
using namespace pipekit::broker;
using namespace std::chrono_literals;

namespace {

struct running_broker {
  explicit running_broker(options o = make_options()) : b(io, o) {
    thread = std::thread([this] { io.run(); });
  }
  ~running_broker() {
    net::post(io, [this] { b.stop(); });
    thread.join();
  }
  static options make_options() {
    options o;
    o.tcp_address = "127.0.0.1:0";
    o.http_address = "127.0.0.1:0";
    o.queue_scan_interval = 20ms;
    return o;
  }
  net::io_context io{1};
  server b;
  std::thread thread;
};

// A blocking client with a receive timeout.
class client {
 public:
  explicit client(std::uint16_t port, bool magic = true) : socket_(io_) {
    socket_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
    set_timeout(5000ms);
    if (magic) send(std::string(magic_v2));
  }
  void set_timeout(std::chrono::milliseconds ms) {
    timeval tv{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  // Through the negotiated compression, if any.
  void send(const std::string& bytes) {
    if (!codec_) return send_raw(bytes);
    std::string wire;
    codec_.encoder->encode(bytes, wire);
    send_raw(wire);
  }
  void send_raw(const std::string& bytes) { net::write(socket_, net::buffer(bytes)); }
  // After the IDENTIFY response: both directions compressed; what was read past it is compressed.
  void compress(stream_codec c) {
    codec_ = std::move(c);
    std::string rest;
    rest.swap(buf_);
    REQUIRE(codec_.decoder->decode(rest, buf_));
  }
  void cmd(const std::string& line) { send(line + "\n"); }
  void cmd(const std::string& line, const std::string& body) {
    std::string out;
    append_command(out, line, body);
    send(out);
  }
  // The next frame; type -1 when the connection closed, -2 on timeout.
  std::pair<int, std::string> next() {
    for (;;) {
      frame f;
      auto n = parse_frame(buf_, f);
      if (n > 0) {
        std::pair<int, std::string> r{static_cast<int>(f.type), std::string(f.data)};
        buf_.erase(0, static_cast<std::size_t>(n));
        return r;
      }
      char tmp[65536];
      // recv(2) itself: Asio's blocking read would wait past SO_RCVTIMEO.
      ssize_t got = ::recv(socket_.native_handle(), tmp, sizeof tmp, 0);
      if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return {-2, ""};
      if (got <= 0) return {-1, "closed"};
      if (!codec_) buf_.append(tmp, static_cast<std::size_t>(got));
      else if (!codec_.decoder->decode(std::string_view(tmp, static_cast<std::size_t>(got)), buf_)) return {-3, "corrupt"};
    }
  }
  // The next frame that is not a heartbeat (heartbeats are answered with NOP, as clients do).
  std::pair<int, std::string> next_data() {
    for (;;) {
      auto f = next();
      if (!(f.first == 0 && f.second == heartbeat_body)) return f;
      if (!answer_heartbeats) continue;
      boost::system::error_code ec;
      net::write(socket_, net::buffer(std::string("NOP\n")), ec);
    }
  }
  std::string response() {
    auto f = next_data();
    if (f.first != 0) return "frame " + std::to_string(f.first) + ": " + f.second;
    return f.second;
  }
  std::string error() {
    auto f = next_data();
    if (f.first != 1) return "frame " + std::to_string(f.first) + ": " + f.second;
    return f.second;
  }
  message_view msg(std::string& storage) {
    auto f = next_data();
    REQUIRE(f.first == 2);
    storage = f.second;
    message_view m;
    REQUIRE(parse_message(storage, m));
    return m;
  }
  bool closed() {
    auto f = next_data();
    return f.first == -1;
  }
  bool silent_for(std::chrono::milliseconds ms) {
    set_timeout(ms);
    auto f = next_data();
    set_timeout(5000ms);
    return f.first == -2;
  }
  void identify(const nlohmann::json& j) {
    cmd("IDENTIFY", j.dump());
  }
  void subscribe(const std::string& topic, const std::string& channel, int rdy) {
    cmd("SUB " + topic + " " + channel);
    REQUIRE(response() == "OK");
    cmd("RDY " + std::to_string(rdy));
  }
  void pub(const std::string& topic, const std::string& body) {
    cmd("PUB " + topic, body);
    REQUIRE(response() == "OK");
  }

  bool answer_heartbeats = true;

 private:
  net::io_context io_;
  tcp::socket socket_;
  std::string buf_;
  stream_codec codec_;
};

}  // namespace

TEST_CASE("nsq-broker: publish, subscribe, deliver, finish", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client consumer(port);
  consumer.identify({{"feature_negotiation", true}, {"client_id", "c1"}, {"user_agent", "test/1"}});
  auto features = nlohmann::json::parse(consumer.response());
  CHECK(features["max_rdy_count"] == 2500);
  CHECK(features["msg_timeout"] == 60000);
  CHECK(features["max_msg_timeout"] == 900000);
  CHECK(features["snappy"] == false);
  CHECK(features["deflate"] == false);
  CHECK(features["output_buffer_size"] == 16384);
  CHECK(features["output_buffer_timeout"] == 250);
  consumer.subscribe("t1", "ch", 10);

  client producer(port);
  producer.identify({{"client_id", "p"}});
  CHECK(producer.response() == "OK");
  producer.pub("t1", "hello");
  std::string mpub;
  append_mpub(mpub, "t1", std::vector<std::string>{"a", "b", "c"});
  producer.send(mpub);
  CHECK(producer.response() == "OK");

  std::string s1, s2;
  auto m = consumer.msg(s1);
  CHECK(m.body == "hello");
  CHECK(m.attempts == 1);
  CHECK(m.timestamp_ns > 0);
  consumer.cmd("FIN " + std::string(m.id));
  for (const char* want : {"a", "b", "c"}) {
    auto x = consumer.msg(s2);
    CHECK(x.body == want);
    consumer.cmd("FIN " + std::string(x.id));
  }
  consumer.cmd("NOP");
  CHECK(consumer.silent_for(200ms));
  consumer.cmd("CLS");
  CHECK(consumer.response() == "CLOSE_WAIT");
}

TEST_CASE("nsq-broker: every channel gets a copy, consumers of one channel share by RDY", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client a(port), b(port), c(port);
  a.subscribe("t", "one", 1);
  b.subscribe("t", "one", 1);
  c.subscribe("t", "two", 5);
  client p(port);
  p.pub("t", "m1");
  p.pub("t", "m2");
  std::string s;
  auto ma = a.msg(s);
  std::string body_a(ma.body);
  std::string s2;
  auto mb = b.msg(s2);
  CHECK(body_a != std::string(mb.body));
  std::string s3, s4;
  CHECK(c.msg(s3).body == "m1");
  CHECK(c.msg(s4).body == "m2");
  CHECK(a.silent_for(100ms));  // RDY 1 and one in flight
}

TEST_CASE("nsq-broker: a topic's backlog goes to its first channel; new channels get new messages", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client p(port);
  p.pub("bk", "early");
  client a(port);
  a.subscribe("bk", "first", 5);
  std::string s;
  CHECK(a.msg(s).body == "early");
}

TEST_CASE("nsq-broker: REQ, timeouts and TOUCH requeue with attempts counted", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client c(port);
  c.identify({{"msg_timeout", 1000}});
  CHECK(c.response() == "OK");
  c.subscribe("rq", "ch", 1);
  client p(port);
  p.pub("rq", "x");
  std::string s;
  auto m = c.msg(s);
  CHECK(m.attempts == 1);
  c.cmd("REQ " + std::string(m.id) + " 0");
  auto m2 = c.msg(s);
  CHECK(m2.attempts == 2);
  auto t0 = std::chrono::steady_clock::now();
  c.cmd("REQ " + std::string(m2.id) + " 300");
  auto m3 = c.msg(s);
  CHECK(m3.attempts == 3);
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  // Not FINished: back after msg_timeout (1 s), TOUCH first pushes that out.
  t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(600ms);
  c.cmd("TOUCH " + std::string(m3.id));
  auto m4 = c.msg(s);
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(m4.attempts == 4);
  CHECK(waited >= 1400ms);
  c.cmd("FIN " + std::string(m4.id));
  c.cmd("FIN " + std::string(m4.id));
  CHECK(c.error() == "E_FIN_FAILED FIN " + std::string(m4.id) + " failed ID not in flight");
  c.cmd("REQ 0000000000009999 0");
  CHECK(c.error() == "E_REQ_FAILED REQ 0000000000009999 failed ID not in flight");
  c.cmd("TOUCH 0000000000009999");
  CHECK(c.error() == "E_TOUCH_FAILED TOUCH 0000000000009999 failed ID not in flight");
  c.cmd("NOP");  // still connected: those are not fatal
  p.pub("rq", "y");
  CHECK(c.msg(s).body == "y");
}

TEST_CASE("nsq-broker: a consumer's in-flight messages go to another when it disconnects", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client p(port);
  auto a = std::make_unique<client>(port);
  a->subscribe("dc", "ch", 1);
  p.pub("dc", "z");
  std::string s;
  CHECK(a->msg(s).body == "z");
  client b(port);
  b.subscribe("dc", "ch", 1);
  a.reset();
  auto m = b.msg(s);
  CHECK(m.body == "z");
  CHECK(m.attempts == 2);
}

TEST_CASE("nsq-broker: DPUB defers delivery", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client c(port);
  c.subscribe("dp", "ch", 5);
  client p(port);
  auto t0 = std::chrono::steady_clock::now();
  p.cmd("DPUB dp 300", "later");
  CHECK(p.response() == "OK");
  p.pub("dp", "now");
  std::string s;
  CHECK(c.msg(s).body == "now");
  CHECK(c.msg(s).body == "later");
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  p.cmd("DPUB dp 3600001", "x");
  CHECK(p.error() == "E_INVALID DPUB timeout 3600001 out of range 0-3600000");
  CHECK(p.closed());
}

namespace {
nlohmann::json topic_stats(std::uint16_t hp, const std::string& topic);  // below
template <class Pred>
bool eventually(Pred pred);
}  // namespace

TEST_CASE("nsq-broker: #ephemeral channels go with their last consumer", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client p(port);
  {
    client c(port);
    c.subscribe("ep", "tmp#ephemeral", 0);
    p.pub("ep", "old");
  }
  // Gone once the broker has seen the disconnect.
  CHECK(eventually([&] {
    auto t = topic_stats(rb.b.http_port(), "ep");
    return t.contains("channels") && t["channels"].empty();
  }));
  client c2(port);
  c2.subscribe("ep", "tmp#ephemeral", 5);
  CHECK(c2.silent_for(200ms));
  p.pub("ep", "new");
  std::string s;
  CHECK(c2.msg(s).body == "new");
}

TEST_CASE("nsq-broker: fatal errors close only their connection", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client bystander(port);
  bystander.subscribe("ok", "ch", 5);

  SECTION("bad magic") {
    client c(port, false);
    c.send("  V1");
    CHECK(c.error() == "E_BAD_PROTOCOL");
    CHECK(c.closed());
  }
  SECTION("garbage") {
    client c(port);
    c.cmd("HELLO world");
    CHECK(c.error() == "E_INVALID invalid command HELLO");
    CHECK(c.closed());
  }
  SECTION("bad topic") {
    client c(port);
    c.cmd("PUB bad/topic", "x");
    CHECK(c.error() == "E_BAD_TOPIC PUB topic name \"bad/topic\" is not valid");
    CHECK(c.closed());
  }
  SECTION("bad channel") {
    client c(port);
    c.cmd("SUB t bad!");
    CHECK(c.error() == "E_BAD_CHANNEL SUB channel name \"bad!\" is not valid");
    CHECK(c.closed());
  }
  SECTION("oversized message") {
    client c(port);
    std::string hdr = "PUB t\n";
    char len[4];
    put_u32(len, 2 * 1024 * 1024);
    c.send(hdr + std::string(len, 4));
    CHECK(c.error() == "E_BAD_MESSAGE PUB message too big 2097152 > 1048576");
    CHECK(c.closed());
  }
  SECTION("oversized MPUB body") {
    client c(port);
    char len[4];
    put_u32(len, 6 * 1024 * 1024);
    c.send("MPUB t\n" + std::string(len, 4));
    CHECK(c.error() == "E_BAD_BODY MPUB body too big 6291456 > 5242880");
    CHECK(c.closed());
  }
  SECTION("bad IDENTIFY") {
    client c(port);
    c.identify({{"heartbeat_interval", 10}});
    CHECK(c.error() == "E_BAD_BODY IDENTIFY heartbeat interval (10) is invalid");
    CHECK(c.closed());
  }
  SECTION("RDY out of range, RDY before SUB") {
    client c(port);
    c.subscribe("t", "c", 1);
    c.cmd("RDY 2501");
    CHECK(c.error() == "E_INVALID RDY count 2501 out of range 0-2500");
    CHECK(c.closed());
    client d(port);
    d.cmd("RDY 1");
    CHECK(d.error() == "E_INVALID cannot RDY in current state");
    CHECK(d.closed());
  }
  SECTION("SUB with heartbeats disabled") {
    client c(port);
    c.identify({{"heartbeat_interval", -1}});
    CHECK(c.response() == "OK");
    c.cmd("SUB t c");
    CHECK(c.error() == "E_INVALID cannot SUB with heartbeats disabled");
    CHECK(c.closed());
  }
  SECTION("deflate and snappy together") {
    client c(port);
    c.identify({{"feature_negotiation", true}, {"deflate", true}, {"snappy", true}});
    CHECK(c.error() == "E_IDENTIFY_FAILED cannot enable both deflate and snappy compression");
    CHECK(c.closed());
  }
  SECTION("a corrupt snappy stream") {
    client c(port);
    c.identify({{"feature_negotiation", true}, {"snappy", true}});
    CHECK(nlohmann::json::parse(c.response())["snappy"] == true);
    c.compress(make_snappy_codec());
    CHECK(c.response() == "OK");
    c.pub("ok_snappy", "fine so far");
    // A chunk whose checksum is wrong (the stream identifier went out with the PUB).
    std::string wire;
    make_snappy_encoder()->encode("NOP\n", wire);
    wire = wire.substr(10);
    wire[4] = static_cast<char>(wire[4] ^ 0x55);
    c.send_raw(wire);
    CHECK(c.closed());
  }
  SECTION("an unknown unskippable snappy chunk") {
    client c(port);
    c.identify({{"feature_negotiation", true}, {"snappy", true}});
    CHECK(nlohmann::json::parse(c.response())["snappy"] == true);
    c.compress(make_snappy_codec());
    CHECK(c.response() == "OK");
    c.send_raw(std::string(snappy_frame::identifier_chunk) + std::string("\x02\x04\x00\x00", 4) + "abcd");
    CHECK(c.closed());
  }
  SECTION("AUTH is disabled") {
    client c(port);
    c.cmd("AUTH", "secret");
    CHECK(c.error() == "E_AUTH_DISABLED AUTH disabled");
    CHECK(c.closed());
  }
  client p(port);
  p.pub("ok", "still here");
  std::string s;
  CHECK(bystander.msg(s).body == "still here");
}

TEST_CASE("nsq-broker: heartbeats, the client timeout and a stall mid-frame", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  client bystander(port);  // default heartbeats (30 s): it need not answer during the test
  bystander.subscribe("hb", "ch", 5);

  SECTION("a heartbeat every interval; silence for two intervals closes") {
    client c(port);
    c.identify({{"heartbeat_interval", 1000}});
    CHECK(c.response() == "OK");
    auto t0 = std::chrono::steady_clock::now();
    auto f = c.next();
    CHECK(f.first == 0);
    CHECK(f.second == "_heartbeat_");
    auto dt = std::chrono::steady_clock::now() - t0;
    CHECK(dt >= 800ms);
    CHECK(dt <= 2500ms);  // generous: the machine may be loaded
    CHECK(c.closed());
    CHECK(std::chrono::steady_clock::now() - t0 <= 4000ms);
  }
  SECTION("a stall inside PUB's body gets nsqd's read error, then the close") {
    client c(port);
    c.identify({{"heartbeat_interval", 1000}});
    CHECK(c.response() == "OK");
    char len[4];
    put_u32(len, 10);
    c.answer_heartbeats = false;  // stalled: it does not even answer heartbeats
    c.send("PUB hb\n" + std::string(len, 4) + "abc");
    CHECK(c.error() == "E_BAD_MESSAGE PUB failed to read message body");
    CHECK(c.closed());
  }
  bystander.cmd("NOP");
  client p(port);
  p.pub("hb", "after");
  std::string s;
  CHECK(bystander.msg(s).body == "after");
}

namespace {

struct http_reply {
  int status = 0;
  std::string headers;  // the status line and headers, as sent
  std::string body;
};

std::string be32_count(std::uint32_t v) {
  char b[4];
  put_u32(b, v);
  return std::string(b, 4);
}

// One HTTP/1.1 request on its own connection.
http_reply http(std::uint16_t port, const std::string& method, const std::string& target, const std::string& body = "") {
  net::io_context io;
  tcp::socket s(io);
  s.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port));
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body;
  net::write(s, net::buffer(req));
  std::string resp;
  boost::system::error_code ec;
  char tmp[65536];
  for (;;) {
    std::size_t n = s.read_some(net::buffer(tmp), ec);
    if (ec) break;
    resp.append(tmp, n);
  }
  http_reply r;
  if (resp.size() > 12) r.status = std::stoi(resp.substr(9, 3));
  auto hdr_end = resp.find("\r\n\r\n");
  if (hdr_end != std::string::npos) {
    r.headers = resp.substr(0, hdr_end + 2);
    r.body = resp.substr(hdr_end + 4);
  }
  return r;
}

}  // namespace

namespace {

nlohmann::json topic_stats(std::uint16_t hp, const std::string& topic) {
  auto j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=" + topic).body);
  return j["topics"].empty() ? nlohmann::json::object() : j["topics"][0];
}
nlohmann::json channel_stats(std::uint16_t hp, const std::string& topic, const std::string& channel) {
  auto t = topic_stats(hp, topic);
  if (t.contains("channels"))
    for (auto& c : t["channels"])
      if (c["channel_name"] == channel) return c;
  return nlohmann::json::object();
}
// Polls pred until it holds or 10 s pass.
template <class Pred>
bool eventually(Pred pred) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return pred();
}
// Until messages answered OK at t0 are older than ttl (the condition is the clock itself).
void age_past(std::chrono::steady_clock::time_point t0, std::chrono::milliseconds ttl) {
  while (std::chrono::steady_clock::now() < t0 + ttl + 50ms) std::this_thread::sleep_for(10ms);
}
std::vector<std::string> numbered(const std::string& prefix, int n) {
  std::vector<std::string> v;
  for (int i = 0; i < n; ++i) v.push_back(prefix + std::to_string(i));
  return v;
}
void mpub(client& p, const std::string& topic, const std::vector<std::string>& bodies) {
  std::string out;
  append_mpub(out, topic, bodies);
  p.send(out);
  REQUIRE(p.response() == "OK");
}
// Receives n messages, FINishing each; their bodies in order of arrival.
std::vector<std::string> take(client& c, int n) {
  std::vector<std::string> got;
  std::string s;
  for (int i = 0; i < n; ++i) {
    auto f = c.next_data();
    if (f.first != 2) break;
    message_view m;
    REQUIRE(parse_message(f.second, m));
    got.emplace_back(m.body);
    c.cmd("FIN " + std::string(m.id));
  }
  return got;
}
std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("nsq-broker-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace

TEST_CASE("nsq-broker --msg-ttl: expired messages are dropped unsent, counted, per topic", "[nsq]") {
  auto o = running_broker::make_options();
  o.msg_ttl = 200ms;
  add_topic_msg_ttl(o, "forever=0");
  add_topic_msg_ttl(o, "long=1h");
  CHECK_THROWS_AS(add_topic_msg_ttl(o, "bad name=1s"), std::invalid_argument);
  CHECK_THROWS_AS(add_topic_msg_ttl(o, "x=1parsec"), std::invalid_argument);
  CHECK_THROWS_AS(add_topic_msg_ttl(o, "nothing"), std::invalid_argument);
  running_broker rb(o);
  auto hp = rb.b.http_port();
  client p(rb.b.tcp_port());
  // "ttl" has a channel (messages wait in it); "early" has none yet (they wait in the topic).
  // nsqd makes a channel only in a topic that exists.
  for (const char* t : {"ttl", "forever", "long"}) {
    CHECK(http(hp, "POST", std::string("/topic/create?topic=") + t).status == 200);
    CHECK(http(hp, "POST", std::string("/channel/create?topic=") + t + "&channel=c").status == 200);
  }
  mpub(p, "ttl", numbered("old", 3));
  mpub(p, "early", numbered("old", 4));
  mpub(p, "forever", numbered("old", 2));
  mpub(p, "long", numbered("old", 2));
  p.cmd("DPUB ttl 400", "deferred-past-its-ttl");
  REQUIRE(p.response() == "OK");
  age_past(std::chrono::steady_clock::now(), 200ms);  // stamped before the OK

  client c(rb.b.tcp_port());
  c.subscribe("ttl", "c", 10);
  p.pub("ttl", "fresh");
  CHECK(take(c, 1) == std::vector<std::string>{"fresh"});
  CHECK(eventually([&] { return channel_stats(hp, "ttl", "c")["expired_count"] == 4; }));  // with the DPUB
  CHECK(c.silent_for(100ms));
  auto ch = channel_stats(hp, "ttl", "c");
  CHECK(ch["message_count"] == 5);  // put into the channel, expired or not (nsqd's count)
  CHECK(ch["depth"] == 0);
  CHECK(ch["deferred_count"] == 0);
  CHECK(ch["dropped_count"] == 0);

  // A message REQ'd after its TTL is not delivered again.
  p.pub("ttl", "req-me");
  auto t1 = std::chrono::steady_clock::now();
  std::string s;
  auto m = c.msg(s);
  CHECK(m.body == "req-me");
  age_past(t1, 200ms);
  c.cmd("REQ " + std::string(m.id) + " 0");
  CHECK(eventually([&] { return channel_stats(hp, "ttl", "c")["expired_count"] == 5; }));
  CHECK(c.silent_for(100ms));

  // Held by the topic (no channel yet): expired when pumped, counted by the topic.
  client e(rb.b.tcp_port());
  e.subscribe("early", "c", 10);
  CHECK(e.silent_for(100ms));
  auto ts = topic_stats(hp, "early");
  CHECK(ts["expired_count"] == 4);
  CHECK(ts["depth"] == 0);
  CHECK(ts["channels"][0]["expired_count"] == 0);

  // --topic-msg-ttl overrides --msg-ttl, 0 meaning never.
  for (const char* t : {"forever", "long"}) {
    client k(rb.b.tcp_port());
    k.subscribe(t, "c", 10);
    CHECK(take(k, 2) == numbered("old", 2));
    CHECK(channel_stats(hp, t, "c")["expired_count"] == 0);
  }

  auto text = http(hp, "GET", "/stats?topic=ttl").body;
  CHECK(text.find("msgs: 6        e2e%:  expired: 5\n") != std::string::npos);  // nsqd's line, then pipekit's counts
  auto metrics = http(hp, "GET", "/metrics").body;
  CHECK(metrics.find("# TYPE nsq_channel_expired_total counter\n") != std::string::npos);
  CHECK(metrics.find("nsq_channel_expired_total{topic=\"ttl\",channel=\"c\"} 5\n") != std::string::npos);
  CHECK(metrics.find("nsq_topic_expired_total{topic=\"early\"} 4\n") != std::string::npos);
  CHECK(metrics.find("nsq_channel_dropped_total{topic=\"ttl\",channel=\"c\"} 0\n") != std::string::npos);
}

TEST_CASE("nsq-broker --msg-ttl --durable: expired messages read from disk are done with", "[nsq]") {
  auto dir = fresh_dir("ttl");
  auto o = running_broker::make_options();
  o.data_path = dir.string();
  o.durable = true;
  o.mem_queue_size = 2;
  o.msg_ttl = 200ms;
  {
    running_broker rb(o);
    auto hp = rb.b.http_port();
    CHECK(http(hp, "POST", "/topic/create?topic=dt").status == 200);
    CHECK(http(hp, "POST", "/channel/create?topic=dt&channel=c").status == 200);
    client p(rb.b.tcp_port());
    mpub(p, "dt", numbered("old", 5));
    age_past(std::chrono::steady_clock::now(), 200ms);
    mpub(p, "dt", numbered("new", 3));
    client c(rb.b.tcp_port());
    c.subscribe("dt", "c", 10);
    CHECK(take(c, 3) == numbered("new", 3));
    CHECK(eventually([&] { return channel_stats(hp, "dt", "c")["expired_count"] == 5; }));
    CHECK(c.silent_for(100ms));
    p.pub("dt", "marker");  // its sync commits the channel past everything before it
    CHECK(take(c, 1) == std::vector<std::string>{"marker"});
    CHECK(eventually([&] { return channel_stats(hp, "dt", "c")["in_flight_count"] == 0; }));  // FIN read
  }
  o.msg_ttl = 0ms;  // without the TTL, nothing expired (or finished) comes back
  {
    running_broker rb(o);
    CHECK(channel_stats(rb.b.http_port(), "dt", "c")["depth"] == 0);
    client c(rb.b.tcp_port());
    c.subscribe("dt", "c", 10);
    CHECK(c.silent_for(200ms));
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("nsq-broker: a fresh #ephemeral channel gets a topic's whole backlog (--ephemeral-overflow hold)", "[nsq]") {
  const bool on_disk = GENERATE(false, true);
  INFO("--data-path: " << on_disk);
  auto dir = fresh_dir("hold");
  auto o = running_broker::make_options();
  o.mem_queue_size = 10;
  if (on_disk) o.data_path = dir.string();
  auto rbp = std::make_unique<running_broker>(o);
  auto& rb = *rbp;
  auto hp = rb.b.http_port();
  client p(rb.b.tcp_port());
  auto bodies = numbered("m", 30);
  mpub(p, "eh", bodies);
  client c(rb.b.tcp_port());
  c.subscribe("eh", "tail#ephemeral", 0);
  // The channel holds what it may; the topic keeps the rest (on disk with --data-path).
  auto ts = topic_stats(hp, "eh");
  CHECK(ts["depth"] == 20);
  CHECK(ts["backend_depth"] == 20);
  CHECK(ts["channels"][0]["depth"] == 10);
  // Published while the channel is full: behind the backlog, in order.
  auto more = numbered("n", 5);
  mpub(p, "eh", more);
  CHECK(topic_stats(hp, "eh")["depth"] == 25);
  bodies.insert(bodies.end(), more.begin(), more.end());
  c.cmd("RDY 3");
  std::vector<std::string> got;
  // One REQ on the way: it goes back into the channel even when that is full.
  {
    std::string s;
    auto m = c.msg(s);
    CHECK(m.body == "m0");
    c.cmd("REQ " + std::string(m.id) + " 0");
  }
  got = take(c, 35);
  REQUIRE(got.size() == 35);
  auto req = std::find(got.begin(), got.end(), "m0");
  REQUIRE(req != got.end());
  got.erase(req);
  bodies.erase(bodies.begin());
  CHECK(got == bodies);
  CHECK(c.silent_for(100ms));
  auto ch = channel_stats(hp, "eh", "tail#ephemeral");
  CHECK(ch["dropped_count"] == 0);
  CHECK(ch["message_count"] == 35);  // put into the channel (the REQ is no new message), as nsqd
  CHECK(topic_stats(hp, "eh")["depth"] == 0);
  rbp.reset();
  std::filesystem::remove_all(dir);
}

TEST_CASE("nsq-broker: a full #ephemeral channel holds up its topic's other channels, until it goes", "[nsq]") {
  auto o = running_broker::make_options();
  o.mem_queue_size = 5;
  running_broker rb(o);
  auto hp = rb.b.http_port();
  client keep(rb.b.tcp_port());
  keep.subscribe("hu", "keep", 100);
  auto slow = std::make_unique<client>(rb.b.tcp_port());
  slow->subscribe("hu", "slow#ephemeral", 0);
  client p(rb.b.tcp_port());
  mpub(p, "hu", numbered("m", 12));
  CHECK(take(keep, 5) == numbered("m", 5));
  CHECK(keep.silent_for(100ms));
  CHECK(topic_stats(hp, "hu")["depth"] == 7);
  slow.reset();  // the ephemeral channel goes with its consumer; the topic moves on
  auto all = numbered("m", 12);
  CHECK(take(keep, 7) == std::vector<std::string>(all.begin() + 5, all.end()));
  CHECK(eventually([&] { return topic_stats(hp, "hu")["channels"].size() == 1; }));
}

TEST_CASE("nsq-broker: the last consumer of an #ephemeral channel of an #ephemeral topic takes both along", "[nsq]") {
  // remove_consumer -> delete_channel -> delete_topic, each deleting what it was handed while a
  // client's in-flight messages go back first; under ASan (-DPIPEKIT_SANITIZE=ON) a name or a
  // reference used after its owner is gone fails here.
  running_broker rb;
  auto hp = rb.b.http_port();
  client p(rb.b.tcp_port());
  auto topics = [&] { return nlohmann::json::parse(http(hp, "GET", "/stats?format=json").body)["topics"]; };
  for (int round = 0; round < 3; ++round) {
    auto c = std::make_unique<client>(rb.b.tcp_port());
    c->subscribe("gone#ephemeral", "tail#ephemeral", 10);
    mpub(p, "gone#ephemeral", numbered("m", 5));
    std::string s;
    for (const auto& body : numbered("m", 5)) CHECK(c->msg(s).body == body);  // in flight as it leaves
    c.reset();
    CHECK(eventually([&] { return topics().empty(); }));
  }
  // A topic deleted over HTTP closes the consumers of each of its channels.
  client a(rb.b.tcp_port()), b(rb.b.tcp_port());
  a.subscribe("kept", "one", 10);
  b.subscribe("kept", "two#ephemeral", 10);
  p.pub("kept", "x");
  std::string s;
  CHECK(a.msg(s).body == "x");  // in flight in each channel as the topic goes
  CHECK(b.msg(s).body == "x");
  CHECK(http(hp, "POST", "/topic/delete?topic=kept").status == 200);
  CHECK(a.closed());
  CHECK(b.closed());
  CHECK(topics().empty());
  p.pub("kept", "again");  // the broker goes on: the topic comes back empty of channels
  CHECK(topic_stats(hp, "kept")["depth"] == 1);
}

TEST_CASE("nsq-broker --ephemeral-overflow drop: a full #ephemeral channel drops, counted", "[nsq]") {
  auto o = running_broker::make_options();
  o.mem_queue_size = 10;
  o.ephemeral_overflow_policy = ephemeral_overflow::drop;
  running_broker rb(o);
  auto hp = rb.b.http_port();
  client p(rb.b.tcp_port());
  mpub(p, "ed", numbered("m", 30));
  client c(rb.b.tcp_port());
  c.subscribe("ed", "tail#ephemeral", 0);
  auto ts = topic_stats(hp, "ed");
  CHECK(ts["depth"] == 0);
  CHECK(ts["channels"][0]["depth"] == 10);
  CHECK(ts["channels"][0]["dropped_count"] == 20);
  c.cmd("RDY 50");
  CHECK(take(c, 10) == numbered("m", 10));
  CHECK(c.silent_for(100ms));
  auto text = http(hp, "GET", "/stats?topic=ed").body;
  CHECK(text.find("e2e%:  dropped: 20\n") != std::string::npos);
  auto metrics = http(hp, "GET", "/metrics").body;
  CHECK(metrics.find("# TYPE nsq_channel_dropped_total counter\n") != std::string::npos);
  CHECK(metrics.find("nsq_channel_dropped_total{topic=\"ed\",channel=\"tail#ephemeral\"} 20\n") != std::string::npos);
  // Non-ephemeral channels are never dropped from.
  client k(rb.b.tcp_port());
  k.subscribe("ed", "keep", 0);
  mpub(p, "ed", numbered("x", 15));
  auto ch = channel_stats(hp, "ed", "keep");
  CHECK(ch["depth"] == 15);
  CHECK(ch["dropped_count"] == 0);
}

TEST_CASE("nsq-broker HTTP: ping, info, pub, mpub and their errors", "[nsq]") {
  auto o = running_broker::make_options();
  o.max_msg_size = 100;
  running_broker rb(o);
  auto hp = rb.b.http_port();
  REQUIRE(hp != 0);
  CHECK(http(hp, "GET", "/ping").body == "OK");
  auto info = nlohmann::json::parse(http(hp, "GET", "/info").body);
  CHECK(info["tcp_port"] == rb.b.tcp_port());
  CHECK(info["http_port"] == hp);
  CHECK(info["broadcast_address"] == "127.0.0.1");
  CHECK(info["version"] == "1.3.0");

  client c(rb.b.tcp_port());
  c.subscribe("h", "ch", 10);
  auto r = http(hp, "POST", "/pub?topic=h", "one");
  CHECK(r.status == 200);
  CHECK(r.body == "OK");
  CHECK(http(hp, "POST", "/mpub?topic=h", "two\nthree\n\nfour\n").body == "OK");
  std::string bin;
  char len[4];
  put_u32(len, 2);
  bin.append(len, 4);
  for (std::string m : {"five", "six"}) {
    put_u32(len, static_cast<std::uint32_t>(m.size()));
    bin.append(len, 4).append(m);
  }
  CHECK(http(hp, "POST", "/mpub?topic=h&binary=true", bin).body == "OK");
  std::string s;
  for (const char* want : {"one", "two", "three", "four", "five", "six"}) {
    auto m = c.msg(s);
    CHECK(m.body == want);
    c.cmd("FIN " + std::string(m.id));
  }
  auto t0 = std::chrono::steady_clock::now();
  CHECK(http(hp, "POST", "/pub?topic=h&defer=300", "later").status == 200);
  CHECK(c.msg(s).body == "later");
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);

  auto err = [&](const std::string& method, const std::string& target, const std::string& body, int status,
                 const std::string& code) {
    auto e = http(hp, method, target, body);
    CHECK(e.status == status);
    CHECK(e.body == "{\"message\":\"" + code + "\"}");
  };
  err("POST", "/pub", "x", 400, "MISSING_ARG_TOPIC");
  err("POST", "/pub?topic=a/b", "x", 400, "INVALID_TOPIC");
  err("POST", "/pub?topic=h", "", 400, "MSG_EMPTY");
  err("POST", "/pub?topic=h", std::string(101, 'x'), 413, "MSG_TOO_BIG");
  err("POST", "/pub?topic=h&defer=x", "x", 400, "INVALID_DEFER");
  err("POST", "/mpub?topic=h", std::string(101, 'x') + "\n", 413, "MSG_TOO_BIG");
  err("POST", "/mpub?topic=h&binary=true", "\0\0", 413, "BAD_BODY");
  err("GET", "/nope", "", 404, "NOT_FOUND");
  err("POST", "/topic/delete?topic=nope", "", 404, "TOPIC_NOT_FOUND");
  err("POST", "/channel/delete?topic=h&channel=nope", "", 404, "CHANNEL_NOT_FOUND");
  err("POST", "/channel/create?topic=h", "", 400, "MISSING_ARG_CHANNEL");
}

TEST_CASE("nsq-broker HTTP: stats, pause, empty, delete, metrics", "[nsq]") {
  running_broker rb;
  auto hp = rb.b.http_port();
  client c(rb.b.tcp_port());
  c.identify({{"client_id", "consumer-1"}});
  CHECK(c.response() == "OK");
  c.subscribe("st", "live", 10);
  CHECK(http(hp, "POST", "/channel/create?topic=st&channel=idle").status == 200);  // st: made by the SUB
  CHECK(http(hp, "POST", "/topic/create?topic=other").status == 200);
  CHECK(http(hp, "POST", "/pub?topic=st", "m1").status == 200);
  std::string s;
  auto m = c.msg(s);  // in flight on "live"

  auto j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=st").body);
  REQUIRE(j["topics"].size() == 1);
  auto& t = j["topics"][0];
  CHECK(t["topic_name"] == "st");
  CHECK(t["message_count"] == 1);
  REQUIRE(t["channels"].size() == 2);
  auto& idle = t["channels"][0];
  auto& live = t["channels"][1];
  CHECK(idle["channel_name"] == "idle");
  CHECK(idle["depth"] == 1);
  CHECK(live["in_flight_count"] == 1);
  CHECK(live["client_count"] == 1);
  CHECK(live["clients"][0]["client_id"] == "consumer-1");
  CHECK(live["clients"][0]["ready_count"] == 10);
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=st&channel=live&include_clients=false").body);
  CHECK(j["topics"][0]["channels"].size() == 1);
  CHECK(j["topics"][0]["channels"][0]["clients"].empty());
  CHECK(http(hp, "GET", "/stats").body.find("[st ") != std::string::npos);

  // Pause a channel: nothing is delivered until unpause.
  c.cmd("FIN " + std::string(m.id));
  CHECK(http(hp, "POST", "/channel/pause?topic=st&channel=live").status == 200);
  CHECK(http(hp, "POST", "/pub?topic=st", "m2").status == 200);
  CHECK(c.silent_for(200ms));
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=st&channel=live").body);
  CHECK(j["topics"][0]["channels"][0]["paused"] == true);
  CHECK(http(hp, "POST", "/channel/unpause?topic=st&channel=live").status == 200);
  m = c.msg(s);
  CHECK(m.body == "m2");
  c.cmd("FIN " + std::string(m.id));

  // Pause the topic: messages wait in the topic.
  CHECK(http(hp, "POST", "/topic/pause?topic=st").status == 200);
  CHECK(http(hp, "POST", "/pub?topic=st", "m3").status == 200);
  CHECK(c.silent_for(200ms));
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=st").body);
  CHECK(j["topics"][0]["depth"] == 1);
  CHECK(http(hp, "POST", "/topic/unpause?topic=st").status == 200);
  CHECK(c.msg(s).body == "m3");

  // Empty and delete.
  CHECK(http(hp, "POST", "/channel/empty?topic=st&channel=idle").status == 200);
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=st&channel=idle").body);
  CHECK(j["topics"][0]["channels"][0]["depth"] == 0);
  CHECK(http(hp, "POST", "/channel/delete?topic=st&channel=idle").status == 200);
  CHECK(http(hp, "POST", "/topic/delete?topic=other").status == 200);
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json").body);
  CHECK(j["topics"].size() == 1);
  CHECK(j["topics"][0]["channels"].size() == 1);

  auto metrics = http(hp, "GET", "/metrics").body;
  CHECK(metrics.find("nsq_topic_messages_total{topic=\"st\"} 3") != std::string::npos);
  CHECK(metrics.find("nsq_channel_clients{topic=\"st\",channel=\"live\"} 1") != std::string::npos);

  // Deleting a channel disconnects its consumers.
  CHECK(http(hp, "POST", "/channel/delete?topic=st&channel=live").status == 200);
  CHECK(c.closed());
}

TEST_CASE("nsq-broker HTTP answers as nsqd 1.3.0: errors, ?binary=, /config, headers", "[nsq]") {
  auto o = running_broker::make_options();
  o.max_msg_size = 100;
  o.max_body_size = 1000;
  running_broker rb(o);
  auto hp = rb.b.http_port();
  auto err = [&](const std::string& method, const std::string& target, const std::string& body, int status,
                 const std::string& code) {
    auto e = http(hp, method, target, body);
    CHECK(e.status == status);
    CHECK(e.body == "{\"message\":\"" + code + "\"}");
    CHECK(e.headers.find("X-NSQ-Content-Type: nsq; version=1.0\r\n") != std::string::npos);
  };
  // nsqd makes no topic for /channel/create.
  err("POST", "/channel/create?topic=nothere&channel=c", "", 404, "TOPIC_NOT_FOUND");
  CHECK(http(hp, "GET", "/stats?format=json").body.find("nothere") == std::string::npos);
  CHECK(http(hp, "POST", "/topic/create?topic=here").status == 200);
  CHECK(http(hp, "POST", "/channel/create?topic=here&channel=c").status == 200);
  err("POST", "/channel/create?topic=a/b&channel=c", "", 400, "INVALID_ARG_TOPIC");
  err("POST", "/channel/pause?topic=here&channel=c/d", "", 400, "INVALID_ARG_CHANNEL");
  err("POST", "/channel/delete?topic=a/b&channel=c", "", 400, "INVALID_ARG_TOPIC");
  err("POST", "/channel/empty?topic=here", "", 400, "MISSING_ARG_CHANNEL");
  // delete, pause and unpause only look the name up: an invalid one is a topic not found.
  err("POST", "/topic/pause?topic=a/b", "", 404, "TOPIC_NOT_FOUND");
  err("POST", "/topic/unpause?topic=a/b", "", 404, "TOPIC_NOT_FOUND");
  err("POST", "/topic/delete?topic=a/b", "", 404, "TOPIC_NOT_FOUND");
  err("POST", "/topic/empty?topic=a/b", "", 400, "INVALID_TOPIC");
  err("POST", "/topic/create?topic=a/b", "", 400, "INVALID_TOPIC");
  err("POST", "/topic/pause", "", 400, "MISSING_ARG_TOPIC");
  // Bodies over the limits, within and past the server's own limit.
  err("POST", "/mpub?topic=here", std::string(1001, 'x'), 413, "BODY_TOO_BIG");
  err("POST", "/mpub?topic=here", std::string(5000, 'x'), 413, "BODY_TOO_BIG");
  err("POST", "/pub?topic=here", std::string(5000, 'x'), 413, "MSG_TOO_BIG");
  err("GET", "/nope", "", 404, "NOT_FOUND");

  // ?binary= is binary unless it is false or 0 (nsqd reads its deprecated values as true).
  client c(rb.b.tcp_port());
  c.subscribe("here", "c", 10);
  std::string bin = be32_count(2);
  for (std::string m : {"five", "six"}) bin += be32_count(static_cast<std::uint32_t>(m.size())) + m;
  std::string s;
  for (const char* value : {"yes", "", "1", "true"}) {
    INFO("binary=" << value);
    auto r = http(hp, "POST", std::string("/mpub?topic=here&binary=") + value, bin);
    CHECK(r.status == 200);
    CHECK(r.headers.find("X-NSQ-Content-Type: nsq; version=1.0\r\n") != std::string::npos);
    for (const char* want : {"five", "six"}) {
      auto m = c.msg(s);
      CHECK(m.body == want);
      c.cmd("FIN " + std::string(m.id));
    }
  }
  for (const char* value : {"false", "0"}) {
    CHECK(http(hp, "POST", std::string("/mpub?topic=here&binary=") + value, "a\nb").status == 200);
    CHECK(take(c, 2) == std::vector<std::string>{"a", "b"});
  }

  // /config/:opt: every option to read (nsqd's JSON: durations in ns), log_level and the lookupd
  // addresses to change; another name is 400 INVALID_OPTION.
  const auto before = pipekit::log::min_level();
  CHECK(http(hp, "GET", "/config/log_level").body == std::to_string(static_cast<int>(before) + 1));
  auto put = http(hp, "PUT", "/config/log_level", "warn");
  CHECK(put.status == 200);
  CHECK(put.body == "3");
  CHECK(http(hp, "GET", "/config/log_level").body == "3");
  CHECK(pipekit::log::min_level() == pipekit::log::level::warn);
  CHECK(http(hp, "PUT", "/config/log_level", "DEBUG").body == "1");
  CHECK(pipekit::log::min_level() == pipekit::log::level::debug);
  err("PUT", "/config/log_level", "loud", 400, "INVALID_VALUE");
  err("PUT", "/config/log_level", "", 413, "INVALID_VALUE");
  pipekit::log::set_min_level(before);
  err("GET", "/config/no_such_option", "", 400, "INVALID_OPTION");
  err("PUT", "/config/no_such_option", "1", 400, "INVALID_OPTION");
  err("PUT", "/config/mem_queue_size", "5", 400, "INVALID_OPTION");
  CHECK(http(hp, "GET", "/config/max_req_timeout").body == "3600000000000");
  CHECK(http(hp, "GET", "/config/max_msg_size").body == "100");
  CHECK(http(hp, "GET", "/config/nsqlookupd_tcp_addresses").body == "[]");
  CHECK(http(hp, "PUT", "/config/nsqlookupd_tcp_addresses", "[]").body == "[]");

  // /ping: plain text without X-NSQ-Content-Type, GET only (nsqd routes no HEAD).
  auto ping = http(hp, "GET", "/ping");
  CHECK(ping.body == "OK");
  CHECK(ping.headers.find("X-NSQ-Content-Type") == std::string::npos);
  CHECK(http(hp, "HEAD", "/ping").status == 405);
  // 200s of V1 routes carry it.
  CHECK(http(hp, "POST", "/pub?topic=here", "x").headers.find("X-NSQ-Content-Type: nsq; version=1.0\r\n") !=
        std::string::npos);
  CHECK(http(hp, "GET", "/stats").headers.find("X-NSQ-Content-Type: nsq; version=1.0\r\n") != std::string::npos);
}

TEST_CASE("nsq-broker /stats and /info as nsqd 1.3.0: message counts, keys, the text layout", "[nsq]") {
  running_broker rb;
  auto hp = rb.b.http_port();
  auto port = rb.b.tcp_port();
  client p(port);
  p.identify({{"hostname", "prod-host"}, {"user_agent", "test/1"}});
  REQUIRE(p.response() == "OK");
  CHECK(http(hp, "POST", "/topic/create?topic=cnt").status == 200);
  CHECK(http(hp, "POST", "/channel/create?topic=cnt&channel=idle").status == 200);
  mpub(p, "cnt", numbered("m", 300));
  // A channel's message_count is what its topic put into it (it counted deliveries: 0 here).
  CHECK(channel_stats(hp, "cnt", "idle")["message_count"] == 300);

  // Deliveries and requeues add nothing to it; the client's message_count counts deliveries.
  client c(port);
  c.identify({{"hostname", "cons-host"}, {"user_agent", "test/2"}});
  REQUIRE(c.response() == "OK");
  c.subscribe("cnt", "live", 1);
  p.pub("cnt", "one");
  std::string s1, s2;
  auto m = c.msg(s1);
  c.cmd("REQ " + std::string(m.id) + " 0");
  auto again = c.msg(s2);
  CHECK(again.attempts == 2);
  c.cmd("FIN " + std::string(again.id));
  CHECK(eventually([&] { return channel_stats(hp, "cnt", "live")["clients"][0]["finish_count"] == 1; }));
  auto live = channel_stats(hp, "cnt", "live");
  CHECK(live["message_count"] == 1);
  CHECK(live["requeue_count"] == 1);
  CHECK(live["clients"][0]["message_count"] == 2);
  CHECK_FALSE(live["clients"][0].contains("pub_counts"));  // omitempty, as nsqd
  CHECK(channel_stats(hp, "cnt", "idle")["message_count"] == 301);
  CHECK(topic_stats(hp, "cnt")["message_count"] == 301);
  CHECK(live["e2e_processing_latency"] == nlohmann::json::parse(R"({"count":0,"percentiles":null})"));

  auto j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json").body);
  REQUIRE(j["producers"].size() == 1);
  CHECK(j["producers"][0]["hostname"] == "prod-host");
  CHECK(j["producers"][0]["pub_counts"] == nlohmann::json::parse(R"([{"topic":"cnt","count":301}])"));
  CHECK(j["memory"].contains("heap_in_use_bytes"));
  // Go's nil slices: no such topic, no clients asked for.
  CHECK(nlohmann::json::parse(http(hp, "GET", "/stats?format=json&topic=none").body)["topics"].is_null());
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&include_clients=false&include_mem=0").body);
  CHECK(j["producers"].is_null());
  CHECK(j["topics"][0]["channels"][0]["clients"].is_null());
  CHECK_FALSE(j.contains("memory"));
  // include_clients=yes is not false (nsqd reads only true/1 and false/0).
  j = nlohmann::json::parse(http(hp, "GET", "/stats?format=json&include_clients=yes").body);
  CHECK(j["producers"].size() == 1);

  // /info: nsqd's keys, durations in ns, the real hostname beside the broadcast address.
  auto info = nlohmann::json::parse(http(hp, "GET", "/info").body);
  CHECK(info["version"] == "1.3.0");
  CHECK(info["hostname"] == net::ip::host_name());
  CHECK(info["broadcast_address"] == "127.0.0.1");
  CHECK(info["max_heartbeat_interval"] == 60000000000LL);
  CHECK(info["max_output_buffer_size"] == 65536);
  CHECK(info["max_output_buffer_timeout"] == 30000000000LL);
  CHECK(info["max_deflate_level"] == 6);
  CHECK(info["pipekit_version"].is_string());

  // The text format, line by line as nsqd's printStats.
  CHECK(http(hp, "POST", "/topic/pause?topic=cnt").status == 200);
  CHECK(http(hp, "POST", "/channel/pause?topic=cnt&channel=idle").status == 200);
  auto text = http(hp, "GET", "/stats").body;
  INFO(text);
  CHECK(text.starts_with("nsqd v1.3.0 (built w/pipekit "));
  CHECK(std::regex_search(text, std::regex("\nstart_time \\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(Z|[+-]\\d\\d:\\d\\d)\n"
                                           "uptime [0-9hm.]+(ns|\xc2\xb5s|ms|s)\n\nHealth: OK\n\nMemory:\n")));
  CHECK(text.find("\nMemory:\n   heap_objects             \t0\n") != std::string::npos);
  CHECK(text.find("\nTopics:\n*P [cnt            ] depth: 0     be-depth: 0     msgs: 301      e2e%: \n") !=
        std::string::npos);
  CHECK(text.find("\n   *P [idle                     ] depth: 301   be-depth: 0     inflt: 0    def: 0    re-q: 0 "
                  "    timeout: 0     msgs: 301      e2e%: \n") != std::string::npos);
  CHECK(text.find("\n      [live                     ] depth: 0     be-depth: 0     inflt: 0    def: 0    re-q: 1 ")
        != std::string::npos);
  CHECK(std::regex_search(text, std::regex("\n        \\[V2 cons-host:\\d+ test/2 *\\] state: 3 inflt: 0    rdy: 1    "
                                           "fin: 1        re-q: 1        msgs: 2        connected: \\d+s\n")));
  CHECK(std::regex_search(text, std::regex("\nProducers:\n   \\[V2 prod-host:\\d+ test/1 *\\] msgs: 301      "
                                           "topics: cnt=301 connected: \\d+s\n$")));
  text = http(hp, "GET", "/stats?topic=none&include_mem=false&include_clients=false").body;
  CHECK(text.find("Memory:") == std::string::npos);
  CHECK(text.ends_with("\nHealth: OK\n\nTopics: None\n\nProducers: None\n"));
}

TEST_CASE("nsq-broker TCP answers as nsqd 1.3.0: REQ clamped, numbers read whole, IDENTIFY", "[nsq]") {
  auto o = running_broker::make_options();
  o.max_req_timeout = 300ms;
  running_broker rb(o);
  auto port = rb.b.tcp_port();
  client c(port);
  c.subscribe("rq", "ch", 1);
  client p(port);
  p.pub("rq", "x");
  std::string s1, s2, s3;
  auto m = c.msg(s1);
  // Above --max-req-timeout: nsqd 1.3 clamps to it and carries on (it was a fatal E_INVALID).
  auto t0 = std::chrono::steady_clock::now();
  c.cmd("REQ " + std::string(m.id) + " 99999");
  auto m2 = c.msg(s2);
  CHECK(m2.attempts == 2);
  CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
  c.cmd("REQ " + std::string(m2.id) + " 100000000000000000000000");  // past int64: clamped too
  auto m3 = c.msg(s3);
  CHECK(m3.attempts == 3);
  c.cmd("FIN " + std::string(m3.id));
  c.cmd("NOP");
  CHECK(c.silent_for(100ms));  // still open

  client d(port);
  d.cmd("DPUB rq 10000000000000000000", "now?");  // read as negative, it was delivered at once
  CHECK(d.error() == "E_INVALID DPUB timeout 10000000000000000000 out of range 0-300");
  CHECK(d.closed());
  client r(port);
  r.subscribe("rq", "ch2", 1);
  r.cmd("RDY 18446744073709551617");
  CHECK(r.error() == "E_INVALID RDY count 18446744073709551617 out of range 0-2500");
  CHECK(r.closed());
  CHECK(c.silent_for(100ms));

  // IDENTIFY: deflate_level is 6 also with deflate off; -1 output buffering leaves no timeout.
  client f(port);
  f.identify({{"feature_negotiation", true}, {"output_buffer_size", -1}});
  auto features = nlohmann::json::parse(f.response());
  CHECK(features["deflate"] == false);
  CHECK(features["deflate_level"] == 6);
  CHECK(features["output_buffer_size"] == 1);
  CHECK(features["output_buffer_timeout"] == 0);
}

namespace {

// A stand-in lookupd: accepts connections, answers every command with a framed "OK" (IDENTIFY with a
// JSON object), and records the command lines it saw.
class fake_lookupd {
 public:
  fake_lookupd() : acceptor_(io_, tcp::endpoint(net::ip::make_address("127.0.0.1"), 0)) {}
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Accepts one connection and reads until `until` has been seen (or the timeout); returns the lines.
  std::vector<std::string> session(const std::string& until, bool close_after = false) {
    tcp::socket s(io_);
    acceptor_.accept(s);
    timeval tv{5, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string buf;
    std::vector<std::string> lines;
    auto answer = [&](const std::string& data) {
      char len[4];
      put_u32(len, static_cast<std::uint32_t>(data.size()));
      net::write(s, net::buffer(std::string(len, 4) + data));
    };
    bool magic = false;
    for (;;) {
      char tmp[4096];
      ssize_t got = ::recv(s.native_handle(), tmp, sizeof tmp, 0);
      if (got <= 0) break;
      buf.append(tmp, static_cast<std::size_t>(got));
      if (!magic && buf.size() >= 4) {
        lines.push_back(buf.substr(0, 4));
        buf.erase(0, 4);
        magic = true;
      }
      bool done = false;
      for (;;) {
        auto nl = buf.find('\n');
        if (nl == std::string::npos) break;
        std::string line = buf.substr(0, nl);
        if (line == "IDENTIFY") {
          if (buf.size() < nl + 5) break;
          std::uint32_t n = get_u32(buf.data() + nl + 1);
          if (buf.size() < nl + 5 + n) break;
          lines.push_back("IDENTIFY " + buf.substr(nl + 5, n));
          buf.erase(0, nl + 5 + n);
          answer(R"({"tcp_port":4160})");
        } else {
          lines.push_back(line);
          buf.erase(0, nl + 1);
          answer("OK");
        }
        if (lines.back() == until) done = true;
      }
      if (done) break;
    }
    if (close_after) s.close();
    else kept_.push_back(std::move(s));
    return lines;
  }

 private:
  net::io_context io_;
  tcp::acceptor acceptor_;
  std::vector<tcp::socket> kept_;
};

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

}  // namespace

TEST_CASE("nsq-broker registers with lookupd and re-registers after a reconnect", "[nsq]") {
  fake_lookupd lookupd;
  auto o = running_broker::make_options();
  o.lookupd_tcp_addresses = {"127.0.0.1:" + std::to_string(lookupd.port())};
  running_broker rb(o);
  client c(rb.b.tcp_port());
  c.subscribe("lt", "lc", 1);
  auto first = lookupd.session("REGISTER lt lc", true);
  REQUIRE(first.size() >= 3);
  CHECK(first[0] == "  V1");
  REQUIRE(first[1].rfind("IDENTIFY ", 0) == 0);
  auto id = nlohmann::json::parse(first[1].substr(9));
  CHECK(id["tcp_port"] == rb.b.tcp_port());
  CHECK(id["http_port"] == rb.b.http_port());
  CHECK(id["broadcast_address"] == "127.0.0.1");
  CHECK(has(first, "REGISTER lt"));
  // The connection dropped: the broker comes back (after its backoff) and registers everything again.
  auto t0 = std::chrono::steady_clock::now();
  auto second = lookupd.session("REGISTER lt lc");
  CHECK(std::chrono::steady_clock::now() - t0 < 4s);
  CHECK(has(second, "REGISTER lt"));
  CHECK(has(second, "REGISTER lt lc"));
  // Changes are sent as they happen.
  c.cmd("CLS");
  CHECK(c.response() == "CLOSE_WAIT");
  CHECK(http(rb.b.http_port(), "POST", "/channel/delete?topic=lt&channel=lc").status == 200);
}

TEST_CASE("nsq-broker --data-path: overflow goes to disk and a clean restart loses nothing", "[nsq]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("nsq-broker-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  auto o = running_broker::make_options();
  o.data_path = dir.string();
  o.mem_queue_size = 2;
  std::set<std::string> delivered;
  {
    running_broker rb(o);
    client p(rb.b.tcp_port());
    std::string mpub;
    std::vector<std::string> bodies;
    for (int i = 0; i < 10; ++i) bodies.push_back("d" + std::to_string(i));
    client c(rb.b.tcp_port());
    c.subscribe("dq", "keep", 0);
    CHECK(http(rb.b.http_port(), "POST", "/topic/create?topic=dq").status == 200);
    CHECK(http(rb.b.http_port(), "POST", "/channel/create?topic=dq&channel=paused").status == 200);
    CHECK(http(rb.b.http_port(), "POST", "/channel/pause?topic=dq&channel=paused").status == 200);
    append_mpub(mpub, "dq", bodies);
    p.send(mpub);
    REQUIRE(p.response() == "OK");
    auto j = nlohmann::json::parse(http(rb.b.http_port(), "GET", "/stats?format=json&topic=dq").body);
    CHECK(j["topics"][0]["channels"][0]["depth"] == 10);
    CHECK(j["topics"][0]["channels"][0]["backend_depth"] == 8);
    c.cmd("RDY 3");
    std::string s[3];
    message_view m[3];
    for (int i = 0; i < 3; ++i) m[i] = c.msg(s[i]);
    c.cmd("RDY 0");
    for (int i = 0; i < 2; ++i) {
      delivered.insert(std::string(m[i].body));
      c.cmd("FIN " + std::string(m[i].id));
    }
    c.cmd("NOP");
    CHECK(c.silent_for(100ms));
  }  // stopped with one message in flight
  running_broker rb(o);
  auto j = nlohmann::json::parse(http(rb.b.http_port(), "GET", "/stats?format=json&topic=dq").body);
  REQUIRE(j["topics"].size() == 1);
  REQUIRE(j["topics"][0]["channels"].size() == 2);
  CHECK(j["topics"][0]["channels"][0]["depth"] == 8);
  CHECK(j["topics"][0]["channels"][1]["depth"] == 10);
  CHECK(j["topics"][0]["channels"][1]["paused"] == true);
  client c(rb.b.tcp_port());
  c.subscribe("dq", "keep", 10);
  std::string s;
  for (int i = 0; i < 8; ++i) {
    auto m = c.msg(s);
    CHECK(delivered.insert(std::string(m.body)).second);
    c.cmd("FIN " + std::string(m.id));
  }
  CHECK(delivered.size() == 10);
  CHECK(c.silent_for(100ms));
  fs::remove_all(dir);
}

TEST_CASE("nsq-broker: snappy and deflate compress both directions after IDENTIFY", "[nsq]") {
  running_broker rb;
  auto port = rb.b.tcp_port();
  const bool snappy = GENERATE(true, false);
  INFO((snappy ? "snappy" : "deflate"));
  auto negotiate = [&](client& c, const std::string& id) {
    nlohmann::json ask = {{"feature_negotiation", true}, {"client_id", id}};
    ask[snappy ? "snappy" : "deflate"] = true;
    c.identify(ask);
    auto features = nlohmann::json::parse(c.response());
    CHECK(features["snappy"] == snappy);
    CHECK(features["deflate"] == !snappy);
    c.compress(snappy ? make_snappy_codec() : make_deflate_codec(6));
    CHECK(c.response() == "OK");  // the first compressed frame
  };
  client consumer(port);
  negotiate(consumer, "consumer");
  consumer.subscribe("zt", "ch", 100);
  client producer(port);
  negotiate(producer, "producer");
  // Bodies across snappy's 64 KiB chunks, random and compressible, PUB and MPUB.
  std::vector<std::string> bodies;
  std::mt19937 rng(5);
  for (std::size_t n : {std::size_t{1}, std::size_t{1000}, std::size_t{65536}, std::size_t{70000}, std::size_t{300000}}) {
    std::string r(n, '\0');
    for (auto& ch : r) ch = static_cast<char>(rng());
    bodies.push_back(r);
    bodies.push_back(std::string(n, 'a'));
  }
  for (const auto& b : bodies) producer.pub("zt", b);
  std::string mpub;
  append_mpub(mpub, "zt", std::vector<std::string>{"m1", "m2", std::string(100000, 'm')});
  producer.send(mpub);
  CHECK(producer.response() == "OK");
  bodies.insert(bodies.end(), {"m1", "m2", std::string(100000, 'm')});
  for (const auto& want : bodies) {
    std::string storage;
    auto m = consumer.msg(storage);
    REQUIRE(m.body.size() == want.size());
    REQUIRE(m.body == want);
    consumer.cmd("FIN " + std::string(m.id));
  }
  consumer.cmd("NOP");
  CHECK(consumer.silent_for(200ms));
  // /stats says which compression each client uses, as nsqd's does.
  auto j = nlohmann::json::parse(http(rb.b.http_port(), "GET", "/stats?format=json&topic=zt").body);
  auto& cl = j["topics"][0]["channels"][0]["clients"][0];
  CHECK(cl["client_id"] == "consumer");
  CHECK(cl["snappy"] == snappy);
  CHECK(cl["deflate"] == !snappy);
  consumer.cmd("CLS");
  CHECK(consumer.response() == "CLOSE_WAIT");
}

// --- AUTH ------------------------------------------------------------------------------------

TEST_CASE("nsq auth: answers parsed and checked, permissions matched as nsqd does", "[nsq]") {
  auth_state a;
  std::string err;
  REQUIRE(parse_auth_answer(R"({"ttl":60,"identity":"alice","identity_url":"https://id/alice","authorizations":[
      {"topic":"^orders","channels":[".*"],"permissions":["publish","subscribe"]},
      {"topic":"audit","channels":["^archive$"],"permissions":["subscribe"]}]})",
                            a, err));
  CHECK(a.ttl_s == 60);
  CHECK(a.identity == "alice");
  CHECK(a.identity_url == "https://id/alice");
  CHECK(a.allows("orders", ""));          // publish: the channel pattern must match ""
  CHECK(a.allows("orders.eu", "any"));    // unanchored at the end
  CHECK_FALSE(a.allows("old-orders", ""));
  CHECK_FALSE(a.allows("audit", ""));     // subscribe only
  CHECK(a.allows("the-audit-log", "archive"));  // unanchored pattern matches inside
  CHECK_FALSE(a.allows("audit", "archive2"));

  REQUIRE(parse_auth_answer(R"({"status_code":200,"status_txt":"OK","data":{"ttl":5,"authorizations":[]}})", a, err));
  CHECK(a.ttl_s == 5);
  CHECK(a.grants.empty());
  CHECK_FALSE(parse_auth_answer(R"({"ttl":0,"authorizations":[]})", a, err));
  CHECK(err == "invalid TTL 0 (must be >0)");
  CHECK_FALSE(parse_auth_answer(R"({"ttl":1,"authorizations":[{"topic":".*","channels":[],"permissions":["admin"]}]})", a, err));
  CHECK(err == "unknown permission admin");
  CHECK_FALSE(parse_auth_answer(R"({"ttl":1,"authorizations":[{"topic":"(","channels":[],"permissions":[]}]})", a, err));
  CHECK_THAT(err, Catch::StartsWith("unable to compile pattern \"(\""));
  CHECK_FALSE(parse_auth_answer("<html>", a, err));
  // Go's regexp syntax (RE2), as nsqd compiles it: flags and \A \z work; backreferences and
  // lookaround do not compile in Go, so an answer with them is refused as nsqd refuses it.
  REQUIRE(parse_auth_answer(R"({"ttl":1,"authorizations":[
      {"topic":"(?i)\\Aorders\\z","channels":["^$","^[[:alpha:]]+$"],"permissions":["publish","subscribe"]}]})",
                            a, err));
  CHECK(a.allows("ORDERS", ""));
  CHECK_FALSE(a.allows("orders2", ""));
  CHECK(a.allows("Orders", "archive"));
  CHECK_FALSE(a.allows("orders", "archive2"));
  CHECK_FALSE(parse_auth_answer(R"({"ttl":1,"authorizations":[{"topic":"(a)\\1","channels":[],"permissions":[]}]})", a, err));
  CHECK_THAT(err, Catch::StartsWith("unable to compile pattern \"(a)\\1\""));
  CHECK_FALSE(parse_auth_answer(R"j({"ttl":1,"authorizations":[{"topic":".*","channels":["(?=x)"],"permissions":[]}]})j", a, err));

  auto r = make_auth_request("127.0.0.1:4181", "10.0.0.1", false, "", "s3cret+&=");
  CHECK(r.address == "127.0.0.1:4181");
  CHECK(r.target == "/auth?common_name=&remote_ip=10.0.0.1&secret=s3cret%2B%26%3D&tls=false");
  r = make_auth_request("http://auth.local:80/v1/check?x=1", "::1", true, "cn one", "s");
  CHECK(r.address == "auth.local:80");
  CHECK(r.target == "/v1/check?x=1&common_name=cn%20one&remote_ip=%3A%3A1&secret=s&tls=true");
}

namespace {

// A stand-in for an nsq auth server (nsq's auth HTTP protocol; no implementation of it is in
// Debian or npm), built on pipekit's own HTTP server: secrets map to canned answers.
struct auth_server {
  net::io_context io;
  pipekit::net::http_server server{io};
  std::thread thread;
  std::atomic<int> requests{0};
  std::mutex mu;
  std::string last_remote_ip, last_tls;
  auth_server() {
    server.route("GET", "/auth", [this](const pipekit::net::http_request& r) {
      ++requests;
      {
        std::lock_guard g(mu);
        last_remote_ip = r.param("remote_ip") ? *r.param("remote_ip") : "?";
        last_tls = r.param("tls") ? *r.param("tls") : "?";
      }
      const std::string secret = r.param("secret") ? *r.param("secret") : "";
      const nlohmann::json orders = {{"topic", "^orders$"}, {"channels", {".*"}}, {"permissions", {"publish", "subscribe"}}};
      if (secret == "alice")
        return pipekit::net::json_response({{"ttl", 3600}, {"identity", "alice"}, {"identity_url", "https://id/alice"},
                                            {"authorizations", {orders}}});
      if (secret == "short") return pipekit::net::json_response({{"ttl", 1}, {"identity", "short"}, {"authorizations", {orders}}});
      if (secret == "redos")  // a pattern that takes a backtracking engine 2^n steps on a near miss
        return pipekit::net::json_response(
            {{"ttl", 60},
             {"authorizations", {{{"topic", "^([a-z0-9]+[-_.]?)+$"}, {"channels", {".*"}}, {"permissions", {"publish"}}}}}});
      if (secret == "nobody") return pipekit::net::json_response({{"ttl", 60}, {"identity", "nobody"}, {"authorizations", nlohmann::json::array()}});
      return pipekit::net::json_error(403, "FORBIDDEN");
    });
    server.listen("127.0.0.1:0");
    thread = std::thread([this] { io.run(); });
  }
  ~auth_server() {
    net::post(io, [this] { server.stop(); });
    thread.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server.port()); }
};

std::uint16_t closed_port() {
  net::io_context io;
  tcp::acceptor a(io, {net::ip::make_address("127.0.0.1"), 0});
  return a.local_endpoint().port();
}

}  // namespace

TEST_CASE("nsq-broker AUTH against an auth server (--auth-http-address)", "[nsq]") {
  auth_server as;
  auto o = running_broker::make_options();
  // The first is down: the broker tries the next (from a random start, so both orders happen).
  o.auth_http_addresses = {"127.0.0.1:" + std::to_string(closed_port()), "http://" + as.address() + "/auth"};
  running_broker rb(o);
  const auto port = rb.b.tcp_port();

  SECTION("IDENTIFY says auth_required; PUB and SUB before AUTH: E_AUTH_FIRST") {
    client c(port);
    c.identify({{"feature_negotiation", true}});
    CHECK(nlohmann::json::parse(c.response())["auth_required"] == true);
    c.cmd("PUB orders", "x");
    CHECK(c.error() == "E_AUTH_FIRST AUTH required before PUB");
    CHECK(c.closed());
    client d(port);
    d.cmd("SUB orders ch");
    CHECK(d.error() == "E_AUTH_FIRST AUTH required before SUB");
  }
  SECTION("a good secret: identity answered, allowed topics work, others E_UNAUTHORIZED") {
    client c(port);
    // AUTH and the PUB after it in one write: the PUB waits for the auth server's answer.
    std::string out;
    append_command(out, "AUTH", "alice");
    append_command(out, "PUB orders", "first");
    c.send(out);
    auto j = nlohmann::json::parse(c.response());
    CHECK(j == nlohmann::json{{"identity", "alice"}, {"identity_url", "https://id/alice"}, {"permission_count", 1}});
    CHECK(c.response() == "OK");
    {
      std::lock_guard g(as.mu);
      CHECK(as.last_remote_ip == "127.0.0.1");
      CHECK(as.last_tls == "false");
    }
    c.cmd("AUTH", "alice");
    CHECK(c.error() == "E_INVALID AUTH already set");
    client s(port);
    s.cmd("AUTH", "alice");
    s.response();
    s.subscribe("orders", "ch", 5);
    std::string buf;
    CHECK(s.msg(buf).body == "first");
    auto stats = nlohmann::json::parse(http(rb.b.http_port(), "GET", "/stats?format=json&topic=orders").body);
    auto cl = stats["topics"][0]["channels"][0]["clients"][0];
    CHECK(cl["authed"] == true);
    CHECK(cl["auth_identity"] == "alice");
    CHECK(cl["auth_identity_url"] == "https://id/alice");
    client u(port);
    u.cmd("AUTH", "alice");
    u.response();
    u.cmd("PUB payments", "x");
    CHECK(u.error() == R"(E_UNAUTHORIZED AUTH failed for PUB on "payments" "")");
    CHECK(u.closed());
  }
  SECTION("a refused secret: E_AUTH_FAILED, saying no more; no authorizations: E_UNAUTHORIZED") {
    client c(port);
    c.cmd("AUTH", "mallory");
    CHECK(c.error() == "E_AUTH_FAILED AUTH failed");
    CHECK(c.closed());
    client d(port);
    d.cmd("AUTH", "nobody");
    CHECK(d.error() == "E_UNAUTHORIZED AUTH no authorizations found");
  }
  SECTION("patterns match in linear time: a near miss on a 30-character topic is answered at once") {
    // std::regex took 7.8 s for 29 characters and twice that per character more (backtracking), and
    // held the whole broker meanwhile.
    client c(port);
    c.cmd("AUTH", "redos");
    c.response();
    c.pub("orders-eu.v2_x", "allowed");
    const auto start = std::chrono::steady_clock::now();
    c.cmd("PUB " + std::string(29, 'a') + "A", "x");
    CHECK(c.error() == R"(E_UNAUTHORIZED AUTH failed for PUB on "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaA" "")");
    CHECK(std::chrono::steady_clock::now() - start < 2s);
  }
  SECTION("an expired authorization is fetched again before the next PUB") {
    client c(port);
    c.cmd("AUTH", "short");
    c.response();
    const int before = as.requests.load();
    c.pub("orders", "one");
    CHECK(as.requests.load() == before);  // still valid: no request
    std::this_thread::sleep_for(1100ms);  // the answer's ttl is 1 s: let it expire
    c.pub("orders", "two");
    CHECK(as.requests.load() == before + 1);
  }
  client p(port);  // the broker is still up after every failure
  p.cmd("AUTH", "alice");
  CHECK(nlohmann::json::parse(p.response())["identity"] == "alice");
}

TEST_CASE("nsq-broker AUTH: every auth server down -> E_AUTH_FAILED; without one, AUTH is disabled", "[nsq]") {
  auto o = running_broker::make_options();
  o.auth_http_addresses = {"127.0.0.1:" + std::to_string(closed_port())};
  {
    running_broker rb(o);
    client c(rb.b.tcp_port());
    c.cmd("AUTH", "alice");
    CHECK(c.error() == "E_AUTH_FAILED AUTH failed");
  }
  running_broker plain;
  client c(plain.b.tcp_port());
  c.identify({{"feature_negotiation", true}});
  CHECK(nlohmann::json::parse(c.response())["auth_required"] == false);
  c.cmd("AUTH", "alice");
  CHECK(c.error() == "E_AUTH_DISABLED AUTH disabled");
}
