// lookupd's TCP command parser (every command, every error with nsqlookupd's text), its registry
// (listing, tombstones, inactive producers, disconnects), and the server in-process on port 0.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/lookup/protocol.hpp"
#include "pipekit/lookup/registry.hpp"
#include "pipekit/lookup/server.hpp"

using namespace pipekit::lookup;
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

const std::string identify_body =
    R"({"broadcast_address":"host1","tcp_port":4150,"http_port":4151,"version":"1.3.0","hostname":"h1"})";

std::string size_prefix(std::size_t n) {
  std::string s(4, '\0');
  s[0] = static_cast<char>((n >> 24) & 0xff);
  s[1] = static_cast<char>((n >> 16) & 0xff);
  s[2] = static_cast<char>((n >> 8) & 0xff);
  s[3] = static_cast<char>(n & 0xff);
  return s;
}
std::string identify(const std::string& body = identify_body) { return "IDENTIFY\n" + size_prefix(body.size()) + body; }

// Everything the parser makes of input: "ping", "identify:host1", "register:t/c", "error:E_... text".
std::vector<std::string> parse_all(const std::string& input, std::size_t chunk = 0) {
  command_parser p;
  std::vector<std::string> out;
  if (chunk == 0) chunk = input.size() + 1;
  for (std::size_t pos = 0; pos < input.size(); pos += chunk) {
    p.append(std::string_view(input).substr(pos, chunk));
    for (;;) {
      auto r = p.next();
      if (std::holds_alternative<std::monostate>(r)) break;
      if (auto* e = std::get_if<protocol_error>(&r)) {
        out.push_back("error:" + e->wire());
        return out;
      }
      auto& c = std::get<command>(r);
      switch (c.type) {
        case command_type::ping: out.push_back("ping"); break;
        case command_type::identify: out.push_back("identify:" + c.peer.broadcast_address); break;
        case command_type::register_: out.push_back("register:" + c.topic + "/" + c.channel); break;
        case command_type::unregister: out.push_back("unregister:" + c.topic + "/" + c.channel); break;
      }
    }
  }
  return out;
}

using strings = std::vector<std::string>;

}  // namespace

TEST_CASE("lookupd protocol: every command, whole or byte by byte", "[lookup]") {
  std::string session = std::string(magic_v1) + "PING\n" + identify() +
                        "REGISTER events\nREGISTER events push\nPING\nUNREGISTER events push\nUNREGISTER events\n";
  strings want{"ping", "identify:host1", "register:events/", "register:events/push", "ping",
               "unregister:events/push", "unregister:events/"};
  CHECK(parse_all(session) == want);
  CHECK(parse_all(session, 1) == want);
  CHECK(parse_all(session, 7) == want);
  // Go's TrimSpace and Split: surrounding blanks go, a double space is an empty channel.
  CHECK(parse_all("  V1" + identify() + "  REGISTER t  c\r\nREGISTER t#ephemeral c#ephemeral\n") ==
        strings{"identify:host1", "register:t/", "register:t#ephemeral/c#ephemeral"});
}

TEST_CASE("lookupd protocol: errors carry nsqlookupd's codes and texts and end the parse", "[lookup]") {
  const std::string v1(magic_v1);
  CHECK(parse_all("GET / HTTP/1.1\r\n") == strings{"error:E_BAD_PROTOCOL"});
  CHECK(parse_all(v1 + "FOO bar\n") == strings{"error:E_INVALID invalid command FOO"});
  CHECK(parse_all(v1 + "\n") == strings{"error:E_INVALID invalid command "});
  CHECK(parse_all(v1 + "REGISTER t\n") == strings{"error:E_INVALID client must IDENTIFY"});
  CHECK(parse_all(v1 + "UNREGISTER t\n") == strings{"error:E_INVALID client must IDENTIFY"});
  CHECK(parse_all(v1 + identify() + identify()) == strings{"identify:host1", "error:E_INVALID cannot IDENTIFY again"});
  CHECK(parse_all(v1 + identify() + "REGISTER\n") ==
        strings{"identify:host1", "error:E_INVALID REGISTER insufficient number of params"});
  CHECK(parse_all(v1 + identify() + "UNREGISTER\n") ==
        strings{"identify:host1", "error:E_INVALID UNREGISTER insufficient number of params"});
  CHECK(parse_all(v1 + identify() + "REGISTER a*b\n") ==
        strings{"identify:host1", "error:E_BAD_TOPIC REGISTER topic name 'a*b' is not valid"});
  CHECK(parse_all(v1 + identify() + "UNREGISTER " + std::string(65, 't') + "\n") ==
        strings{"identify:host1", "error:E_BAD_TOPIC UNREGISTER topic name '" + std::string(65, 't') + "' is not valid"});
  CHECK(parse_all(v1 + identify() + "REGISTER t c/d\n") ==
        strings{"identify:host1", "error:E_BAD_CHANNEL REGISTER channel name 'c/d' is not valid"});
  CHECK(parse_all(v1 + identify("not json")) == strings{"error:E_BAD_BODY IDENTIFY failed to decode JSON body"});
  CHECK(parse_all(v1 + identify("[1,2]")) == strings{"error:E_BAD_BODY IDENTIFY failed to decode JSON body"});
  CHECK(parse_all(v1 + identify(R"({"broadcast_address":"h","tcp_port":"4150","http_port":1,"version":"v"})")) ==
        strings{"error:E_BAD_BODY IDENTIFY failed to decode JSON body"});
  CHECK(parse_all(v1 + identify(R"({"broadcast_address":"h","tcp_port":4150,"version":"v"})")) ==
        strings{"error:E_BAD_BODY IDENTIFY missing fields"});
  CHECK(parse_all(v1 + identify("null")) == strings{"error:E_BAD_BODY IDENTIFY missing fields"});
  CHECK(parse_all(v1 + "IDENTIFY\n\xff\xff\xff\xff") == strings{"error:E_BAD_BODY IDENTIFY invalid body size -1"});
  CHECK(parse_all(v1 + "IDENTIFY\n" + size_prefix(1u << 20)) ==
        strings{"error:E_BAD_BODY IDENTIFY invalid body size 1048576"});
  CHECK(parse_all(v1 + std::string(2000, 'x')) == strings{"error:E_INVALID command line too long"});
  // Keys match case-insensitively and unknown keys are ignored, as Go's encoding/json does.
  CHECK(parse_all(v1 + identify(R"({"Broadcast_Address":"H","TCP_PORT":1,"http_port":2,"version":"v","x":[]})")) ==
        strings{"identify:H"});
}

TEST_CASE("lookupd protocol: mid_command tells a stall from an idle connection", "[lookup]") {
  command_parser p;
  CHECK_FALSE(p.mid_command());
  p.append("  V");
  CHECK(std::holds_alternative<std::monostate>(p.next()));
  CHECK(p.mid_command());
  p.append("1PING\n");
  CHECK(std::holds_alternative<command>(p.next()));
  CHECK(std::holds_alternative<std::monostate>(p.next()));
  CHECK_FALSE(p.mid_command());
  p.append("IDENTIFY\n");
  CHECK(std::holds_alternative<std::monostate>(p.next()));
  CHECK(p.mid_command());  // waiting for the body
  CHECK(frame("OK") == std::string("\0\0\0\2OK", 6));
}

TEST_CASE("lookupd registry: only what a live broker has, or was created by hand, is listed", "[lookup]") {
  registry db(5min, 45s);
  auto now = clock::now();
  auto p1 = std::make_shared<peer>(peer{"127.0.0.1:1", {"127.0.0.1:1", "h1", "host1", 4150, 4151, "1.3.0", "", ""}, now});
  auto p2 = std::make_shared<peer>(peer{"127.0.0.1:2", {"127.0.0.1:2", "h2", "host2", 5150, 5151, "1.3.0", "", ""}, now});
  db.add_peer(p1);
  db.add_peer(p2);
  CHECK(db.add_producer("a", "", p1));
  CHECK(db.add_producer("a", "c1", p1));
  CHECK(db.add_producer("a", "c2", p2));
  CHECK_FALSE(db.add_producer("a", "c1", p1));
  CHECK(db.topics(now) == strings{"a"});
  CHECK(db.channels("a", now) == strings{"c1", "c2"});
  CHECK(db.lookup("a", now).size() == 2);

  SECTION("UNREGISTER of a channel drops only it; of the topic, the broker's channels too") {
    db.remove_producer("a", "c1", p1->id);
    CHECK(db.channels("a", now) == strings{"c2"});
    db.remove_producer("a", "", p2->id);
    CHECK(db.channels("a", now).empty());
    CHECK(db.lookup("a", now).size() == 1);
    db.remove_producer("a", "", p1->id);
    CHECK(db.topics(now).empty());
    CHECK_FALSE(db.has_topic("a", now));
  }
  SECTION("a disconnect removes everything of the peer at once") {
    db.remove_peer(p1->id);
    CHECK(db.channels("a", now) == strings{"c2"});
    db.remove_peer(p2->id);
    CHECK(db.topics(now).empty());
    CHECK(db.nodes(now).empty());
  }
  SECTION("created by hand stays without producers until deleted") {
    db.create_channel("b", "x");
    db.remove_peer(p1->id);
    db.remove_peer(p2->id);
    CHECK(db.topics(now) == strings{"b"});
    CHECK(db.channels("b", now) == strings{"x"});
    CHECK(db.delete_channel("b", "x"));
    CHECK_FALSE(db.delete_channel("b", "x"));
    CHECK(db.topics(now) == strings{"b"});
    db.delete_topic("b");
    CHECK(db.topics(now).empty());
  }
  SECTION("inactive producers are neither looked up nor listed") {
    p1->last_update = now - 6min;
    CHECK(db.lookup("a", now).size() == 1);
    CHECK(db.channels("a", now) == strings{"c2"});
    CHECK(db.nodes(now).size() == 1);
    p2->last_update = now - 6min;
    CHECK(db.topics(now).empty());
  }
  SECTION("a tombstone hides a producer from lookup for the tombstone lifetime, not from nodes") {
    db.tombstone("a", "host1:4151");
    auto later = clock::now();
    auto found = db.lookup("a", later);
    REQUIRE(found.size() == 1);
    CHECK(found[0]->info.broadcast_address == "host2");
    auto nodes = db.nodes(later);
    REQUIRE(nodes.size() == 2);
    CHECK(nodes[0].topics == strings{"a"});
    CHECK(nodes[0].tombstones == std::vector<bool>{true});
    CHECK(nodes[1].tombstones == std::vector<bool>{false});
    CHECK_FALSE(db.add_producer("a", "", p1));  // re-REGISTER keeps the tombstone
    CHECK(db.lookup("a", later).size() == 1);
    CHECK(db.lookup("a", later + 46s).size() == 2);  // lifetime over
  }
}

namespace {

// A lookupd on 127.0.0.1 port 0 with its io_context on a thread.
struct running_lookupd {
  asio::io_context io;
  std::unique_ptr<server> srv;
  std::thread thread;
  explicit running_lookupd(options o = {}) {
    o.tcp_address = "127.0.0.1:0";
    o.http_address = "127.0.0.1:0";
    o.broadcast_address = "lookupd.test";
    srv = std::make_unique<server>(io, o);
    thread = std::thread([this] { io.run(); });
  }
  ~running_lookupd() {
    asio::post(io, [this] { srv->stop(); });
    thread.join();
  }
  // One HTTP/1.0 GET or POST; returns "STATUS BODY".
  std::string http(const std::string& method, const std::string& target) {
    asio::io_context cio;
    tcp::socket s(cio);
    s.connect({asio::ip::make_address("127.0.0.1"), srv->http_port()});
    std::string req = method + " " + target + " HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
    asio::write(s, asio::buffer(req));
    std::string resp;
    boost::system::error_code ec;
    asio::read(s, asio::dynamic_buffer(resp), ec);
    auto status = resp.substr(9, 3);
    return status + " " + resp.substr(resp.find("\r\n\r\n") + 4);
  }
};

// A broker's side of the TCP protocol over a blocking socket.
struct broker {
  asio::io_context io;
  tcp::socket s{io};
  explicit broker(std::uint16_t port, bool magic = true) {
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    if (magic) send(std::string(magic_v1));
  }
  void send(const std::string& bytes) { asio::write(s, asio::buffer(bytes)); }
  std::string answer() {
    unsigned char size[4];
    boost::system::error_code ec;
    asio::read(s, asio::buffer(size), ec);
    if (ec) return "<closed>";
    std::string data(std::size_t{size[0]} << 24 | std::size_t{size[1]} << 16 | std::size_t{size[2]} << 8 | size[3], '\0');
    asio::read(s, asio::buffer(data), ec);
    return ec ? "<closed>" : data;
  }
  std::string command(const std::string& line) {
    send(line);
    return answer();
  }
};

}  // namespace

TEST_CASE("lookupd server: brokers register over TCP, consumers find them over HTTP", "[lookup]") {
  running_lookupd l;
  broker b(l.srv->tcp_port());
  CHECK(b.command("PING\n") == "OK");
  auto id = nlohmann::json::parse(b.command(identify()));
  CHECK(id["tcp_port"] == l.srv->tcp_port());
  CHECK(id["http_port"] == l.srv->http_port());
  CHECK(id["broadcast_address"] == "lookupd.test");
  CHECK(id.contains("hostname"));
  CHECK(id.contains("version"));
  CHECK(b.command("REGISTER events\n") == "OK");
  CHECK(b.command("REGISTER events push\n") == "OK");
  auto lookup = l.http("GET", "/lookup?topic=events");
  REQUIRE_THAT(lookup, Catch::StartsWith("200 "));
  auto j = nlohmann::json::parse(lookup.substr(4));
  CHECK(j["channels"] == nlohmann::json::parse(R"(["push"])"));
  REQUIRE(j["producers"].size() == 1);
  auto& p = j["producers"][0];
  CHECK(p["broadcast_address"] == "host1");
  CHECK(p["hostname"] == "h1");
  CHECK(p["tcp_port"] == 4150);
  CHECK(p["http_port"] == 4151);
  CHECK(p["version"] == "1.3.0");
  CHECK_THAT(p["remote_address"].get<std::string>(), Catch::StartsWith("127.0.0.1:"));

  SECTION("topology fields a broker sends are shown, and only then") {
    broker zoned(l.srv->tcp_port());
    CHECK_THAT(zoned.command(identify(R"({"broadcast_address":"host2","tcp_port":5150,"http_port":5151,)"
                                      R"("version":"1.3.0","topology_region":"eu","topology_zone":"eu-1a"})")),
               Catch::Contains("tcp_port"));
    CHECK(zoned.command("REGISTER events\n") == "OK");
    auto both = nlohmann::json::parse(l.http("GET", "/lookup?topic=events").substr(4))["producers"];
    REQUIRE(both.size() == 2);
    for (auto& producer : both) {
      bool zoned_one = producer["broadcast_address"] == "host2";
      CHECK(producer.contains("topology_zone") == zoned_one);
      if (zoned_one) CHECK(producer["topology_region"] == "eu");
      if (zoned_one) CHECK(producer["topology_zone"] == "eu-1a");
    }
  }
  SECTION("a broker that disconnects is removed at once") {
    b.s.close();
    std::string topics;
    for (int i = 0; i < 100; ++i) {
      topics = l.http("GET", "/topics");
      if (topics == R"(200 {"topics":[]})") break;
      std::this_thread::sleep_for(10ms);
    }
    CHECK(topics == R"(200 {"topics":[]})");
    CHECK(l.http("GET", "/lookup?topic=events") == R"(404 {"message":"TOPIC_NOT_FOUND"})");
  }
  SECTION("a bad client is closed with its error; the registered broker is undisturbed") {
    broker bad(l.srv->tcp_port());
    CHECK(bad.command("HELLO\n") == "E_INVALID invalid command HELLO");
    CHECK(bad.answer() == "<closed>");
    broker garbage(l.srv->tcp_port(), false);
    CHECK(garbage.command("GET / HTTP/1.1\r\n\r\n") == "E_BAD_PROTOCOL");
    CHECK(garbage.answer() == "<closed>");
    broker huge(l.srv->tcp_port());
    CHECK(huge.command("IDENTIFY\n" + size_prefix(100u << 20)) == "E_BAD_BODY IDENTIFY invalid body size 104857600");
    CHECK(b.command("PING\n") == "OK");
    CHECK_THAT(l.http("GET", "/topics"), Catch::Equals(R"(200 {"topics":["events"]})"));
  }
}

namespace {
// Waits up to 10 s for an answer or the close on s; false when neither came.
bool readable_within_10s(tcp::socket& s) {
  pollfd p{s.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 10'000) == 1;
}
}  // namespace

TEST_CASE("lookupd server: a command stalled mid-way is cut at the command timeout", "[lookup]") {
  options o;
  o.command_timeout = 200ms;
  o.inactive_producer_timeout = 1h;  // so nothing but the command timeout can close it
  running_lookupd l(o);
  broker stalled(l.srv->tcp_port());
  stalled.send("IDENTIFY\n");  // then no body size
  REQUIRE(readable_within_10s(stalled.s));
  CHECK(stalled.answer() == "<closed>");
}

TEST_CASE("lookupd server: silent brokers are cut, others go on", "[lookup]") {
  options o;
  o.command_timeout = 200ms;
  o.inactive_producer_timeout = 1500ms;
  running_lookupd l(o);
  broker live(l.srv->tcp_port());
  CHECK_THAT(live.command(identify()), Catch::Contains("tcp_port"));
  CHECK(live.command("REGISTER kept\n") == "OK");
  broker silent(l.srv->tcp_port());
  CHECK_THAT(silent.command(identify(R"({"broadcast_address":"quiet","tcp_port":1,"http_port":2,"version":"v"})")),
             Catch::Contains("tcp_port"));
  CHECK(silent.command("REGISTER dropped\n") == "OK");
  // The live broker PINGs more often than the timeout; the silent one does not.
  for (int i = 0; i < 14; ++i) {
    std::this_thread::sleep_for(150ms);
    CHECK(live.command("PING\n") == "OK");
  }
  CHECK(silent.answer() == "<closed>");
  CHECK(l.http("GET", "/topics") == R"(200 {"topics":["kept"]})");

  // A peer that sends and never reads its answers: once they no longer fit in the socket
  // buffers, the connection is closed after the command timeout (its writes then fail).
  broker flood(l.srv->tcp_port());
  std::string pings;
  for (int i = 0; i < 100'000; ++i) pings += "PING\n";
  boost::system::error_code ec;
  auto t1 = std::chrono::steady_clock::now();
  while (!ec && std::chrono::steady_clock::now() - t1 < 20s) asio::write(flood.s, asio::buffer(pings), ec);
  CHECK(ec);
  CHECK(std::chrono::steady_clock::now() - t1 < 10s);
  CHECK(live.command("PING\n") == "OK");
}

TEST_CASE("lookupd server: a command is bounded as a whole, however slowly its bytes come", "[lookup]") {
  options o;
  o.command_timeout = 400ms;
  running_lookupd l(o);
  broker slow(l.srv->tcp_port());
  // IDENTIFY's body, one byte per 100 ms: each read used to restart the limit, so it stayed open.
  std::string cmd = identify();
  auto t0 = std::chrono::steady_clock::now();
  boost::system::error_code ec;
  for (std::size_t i = 0; i < cmd.size() && !ec && std::chrono::steady_clock::now() - t0 < 5s; ++i) {
    asio::write(slow.s, asio::buffer(cmd.data() + i, 1), ec);
    std::this_thread::sleep_for(100ms);
  }
  CHECK(slow.answer() == "<closed>");
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
}

TEST_CASE("lookupd server: --max-connections closes one more connection, serves again once one left", "[lookup]") {
  options o;
  o.max_connections = 2;
  running_lookupd l(o);
  auto one = std::make_unique<broker>(l.srv->tcp_port());
  broker two(l.srv->tcp_port());
  CHECK(one->command("PING\n") == "OK");
  CHECK(two.command("PING\n") == "OK");
  broker three(l.srv->tcp_port());
  CHECK(three.answer() == "<closed>");
  one.reset();
  std::string answer = "<closed>";
  for (auto t0 = std::chrono::steady_clock::now(); answer == "<closed>" && std::chrono::steady_clock::now() - t0 < 5s;) {
    std::this_thread::sleep_for(20ms);
    broker again(l.srv->tcp_port());
    answer = again.command("PING\n");
  }
  CHECK(answer == "OK");
}

TEST_CASE("lookupd registry: generation and valid_until bound what /lookup may cache", "[lookup]") {
  registry db(1min, 10s);
  auto now = clock::now();
  auto p = std::make_shared<peer>(peer{"127.0.0.1:1", {"127.0.0.1:1", "h1", "host1", 4150, 4151, "1.3.0", "", ""}, now});
  auto g = db.generation();
  db.add_peer(p);
  db.add_producer("a", "c", p);
  CHECK(db.generation() > g);
  CHECK(db.valid_until("a", now) == now + 1min);  // the producer goes inactive then
  g = db.generation();
  db.touch(*p, now + 1s);
  CHECK(db.generation() == g);  // a PING from an active producer changes no answer
  CHECK(db.valid_until("a", now + 1s) == now + 1s + 1min);
  db.tombstone("a", "host1:4151");
  CHECK(db.generation() > g);
  CHECK(db.valid_until("a", clock::now()) <= clock::now() + 10s);  // the tombstone ends then
  g = db.generation();
  db.touch(*p, now + 5min);  // back from inactive: answers change
  CHECK(db.generation() > g);
  g = db.generation();
  db.remove_producer("a", "c", p->id);
  CHECK(db.generation() > g);
}
