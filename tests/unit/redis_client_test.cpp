// pipekit::redis::client against a real redis-server (Debian's), and against a stand-in server
// for what a real Redis will not send (hostile replies), named as such below.
#include <csignal>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <catch2/catch.hpp>
#include <hiredis/hiredis.h>

#include "pipekit/redis/client.hpp"
#include "support/peers.hpp"
#include "support/run_until.hpp"

namespace net = boost::asio;
namespace redis = pipekit::redis;
namespace pt = pipekit::test;
using namespace std::chrono_literals;
using pipekit::test::run_until;

namespace {

redis::options options_for(const pt::redis_server& srv) {
  redis::options o = redis::parse_url(srv.url());
  o.reconnect_min = 20ms;
  o.reconnect_max = 200ms;
  return o;
}

// One command, waited for.
redis::result call(net::io_context& io, redis::client& c, std::vector<std::string> args) {
  std::optional<redis::result> got;
  c.command(std::move(args), [&](redis::result r) { got = std::move(r); });
  run_until(io, [&] { return got.has_value(); }, "a reply");
  return std::move(*got);
}

void start_and_wait(net::io_context& io, redis::client& c) {
  c.start();
  run_until(io, [&] { return c.ready(); }, "the client to be ready");
}

}  // namespace

TEST_CASE("redis URLs", "[util]") {
  auto o = redis::parse_url("redis://:pw@10.1.2.3:6380/4");
  CHECK(o.host == "10.1.2.3");
  CHECK(o.port == 6380);
  CHECK(o.password == "pw");
  CHECK(o.username.empty());
  CHECK(o.db == 4);
  CHECK(redis::describe(o) == "redis://10.1.2.3:6380/4");  // never the password
  o = redis::parse_url("redis://app:pw@[::1]");
  CHECK(o.host == "::1");
  CHECK(o.port == 6379);
  CHECK(o.username == "app");
  CHECK(redis::describe(o) == "redis://app@[::1]:6379/0");
  CHECK_THROWS_WITH(redis::parse_url("http://x"), Catch::Contains("redis://"));
  CHECK_THROWS_WITH(redis::parse_url("redis://h/x"), Catch::Contains("database"));
  CHECK_THROWS_WITH(redis::parse_url("redis://h/-1"), Catch::Contains("database"));
}

TEST_CASE("redis client: commands, replies of every kind, binary-safe values", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  redis::client c(io, options_for(srv));
  std::vector<bool> states;
  c.on_state([&](bool up) { states.push_back(up); });
  start_and_wait(io, c);
  CHECK(states == std::vector<bool>{true});

  const std::string binary("a\0b\r\nc", 6);
  auto r = call(io, c, {"SET", "k", binary});
  REQUIRE(r.ok());
  CHECK(r.value.type == redis::reply::kind::status);
  CHECK(r.value.str == "OK");
  r = call(io, c, {"GET", "k"});
  CHECK(r.value.type == redis::reply::kind::string);
  CHECK(r.value.str == binary);
  r = call(io, c, {"GET", "missing"});
  CHECK(r.value.type == redis::reply::kind::nil);
  r = call(io, c, {"INCR", "n"});
  CHECK(r.value.type == redis::reply::kind::integer);
  CHECK(r.value.integer == 1);
  r = call(io, c, {"LPUSH", "k", "x"});  // WRONGTYPE: an error reply, not a failed command
  REQUIRE(r.ok());
  CHECK(r.value.is_error());
  CHECK_THAT(r.value.str, Catch::StartsWith("WRONGTYPE"));
  call(io, c, {"RPUSH", "l", "a", "b"});
  call(io, c, {"HSET", "h", "f", "v"});
  r = call(io, c, {"EVAL", "return {redis.call('LRANGE', 'l', 0, -1), 7, false}", "0"});
  REQUIRE(r.value.type == redis::reply::kind::array);
  REQUIRE(r.value.elements.size() == 3);
  REQUIRE(r.value.elements[0].elements.size() == 2);
  CHECK(r.value.elements[0].elements[1].str == "b");
  CHECK(r.value.elements[1].integer == 7);
  CHECK(r.value.elements[2].type == redis::reply::kind::nil);
}

TEST_CASE("redis client: a pipeline answers in order, in one round of writes", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  redis::client c(io, options_for(srv));
  start_and_wait(io, c);
  std::vector<std::vector<std::string>> cmds;
  for (int i = 0; i < 2000; ++i) cmds.push_back({"INCR", "counter"});
  std::optional<std::vector<redis::result>> got;
  c.pipeline(std::move(cmds), [&](std::vector<redis::result> rs) { got = std::move(rs); });
  run_until(io, [&] { return got.has_value(); }, "2000 replies");
  REQUIRE(got->size() == 2000);
  for (std::size_t i = 0; i < got->size(); ++i) {
    INFO("reply " << i);
    REQUIRE((*got)[i].ok());
    REQUIRE((*got)[i].value.integer == static_cast<long long>(i + 1));
  }
}

TEST_CASE("redis commands: written as hiredis's redisFormatCommandArgv writes them", "[util]") {
  const std::vector<std::vector<std::string>> samples = {
      {"PING"},
      {"SET", "k", std::string("a\0b\r\nc", 6)},
      {"GET", ""},
      {"XADD", "pipekit:user:{u1}:history", "MAXLEN", "~", "1000", "*", "d", R"({"n":1})", "r", std::string(300, 'x')},
  };
  redis::commands cmds;
  std::string expected;
  for (const auto& args : samples) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) argv.push_back(a.data()), lens.push_back(a.size());
    char* formatted = nullptr;
    const int n = redisFormatCommandArgv(&formatted, static_cast<int>(args.size()), argv.data(), lens.data());
    REQUIRE(n > 0);
    expected.append(formatted, static_cast<std::size_t>(n));
    redisFreeCommand(formatted);
    cmds.add(args);
  }
  cmds.add({std::string_view("GET"), std::string_view("k")});
  expected += "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
  CHECK(cmds.size() == samples.size() + 1);
  CHECK(cmds.resp() == expected);
}

TEST_CASE("redis client: a pipeline of written commands answers in order; the ones over max_pending fail", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  auto o = options_for(srv);
  o.max_pending = 1500;
  redis::client c(io, o);
  start_and_wait(io, c);
  redis::commands cmds;
  for (int i = 0; i < 2000; ++i) cmds.add({"INCR", "counter"});
  std::optional<std::vector<redis::result>> got;
  c.pipeline(std::move(cmds), [&](std::vector<redis::result> rs) { got = std::move(rs); });
  run_until(io, [&] { return got.has_value(); }, "2000 results");
  REQUIRE(got->size() == 2000);
  for (std::size_t i = 0; i < got->size(); ++i) {
    INFO("result " << i);
    if (i < 1500) {
      REQUIRE((*got)[i].ok());
      REQUIRE((*got)[i].value.integer == static_cast<long long>(i + 1));
    } else {
      REQUIRE((*got)[i].error == "overloaded");
    }
  }
  got.reset();
  c.pipeline(redis::commands{}, [&](std::vector<redis::result> rs) { got = std::move(rs); });
  run_until(io, [&] { return got.has_value(); }, "the empty pipeline's answer");
  CHECK(got->empty());
  c.stop();
  got.reset();
  redis::commands one;
  one.add({"PING"});
  c.pipeline(std::move(one), [&](std::vector<redis::result> rs) { got = std::move(rs); });
  CHECK_FALSE(got.has_value());  // never inside the call
  run_until(io, [&] { return got.has_value(); }, "the answer after stop");
  REQUIRE(got->size() == 1);
  CHECK((*got)[0].error == "stopped");
}

TEST_CASE("redis client: AUTH and SELECT from the URL; a wrong password is never ready", "[redis]") {
  pt::redis_server srv({{"--requirepass", "s3cret"}});
  net::io_context io;
  auto good = options_for(srv);
  good.password = "s3cret";
  good.db = 3;
  redis::client c(io, good);
  start_and_wait(io, c);
  REQUIRE(call(io, c, {"SET", "in3", "yes"}).value.str == "OK");

  auto db0 = good;
  db0.db = 0;
  redis::client c0(io, db0);
  start_and_wait(io, c0);
  CHECK(call(io, c0, {"GET", "in3"}).value.type == redis::reply::kind::nil);

  auto bad = good;
  bad.password = "wrong";
  redis::client b(io, bad);
  b.start();
  std::optional<redis::result> r;
  // Until it is ready, commands fail at once as unavailable; it never becomes ready.
  const auto end = std::chrono::steady_clock::now() + 500ms;
  run_until(io, [&] { return std::chrono::steady_clock::now() > end; }, "half a second");
  CHECK_FALSE(b.ready());
  b.command({"PING"}, [&](redis::result x) { r = std::move(x); });
  run_until(io, [&] { return r.has_value(); }, "the refusal");
  CHECK(r->error == "unavailable");
}

TEST_CASE("redis client: a lost connection fails what was pending and comes back", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  redis::client c(io, options_for(srv));
  std::vector<bool> states;
  c.on_state([&](bool up) { states.push_back(up); });
  start_and_wait(io, c);
  auto id = call(io, c, {"CLIENT", "ID"}).value.integer;

  // Another connection kills ours while a blocking command is pending on it.
  redis::client killer(io, options_for(srv));
  start_and_wait(io, killer);
  std::optional<redis::result> pending;
  c.command({"BLPOP", "nothing", "5"}, [&](redis::result r) { pending = std::move(r); });
  call(io, killer, {"CLIENT", "KILL", "ID", std::to_string(id)});
  run_until(io, [&] { return pending.has_value(); }, "the pending command to fail");
  CHECK_THAT(pending->error, Catch::StartsWith("connection lost"));
  CHECK_FALSE(c.ready());
  run_until(io, [&] { return c.ready(); }, "the reconnect");
  CHECK(states == std::vector<bool>{true, false, true});
  CHECK(call(io, c, {"PING"}).value.str == "PONG");
}

TEST_CASE("redis client: a server that stops answering fails commands after the deadline", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  auto o = options_for(srv);
  o.command_timeout = 300ms;
  o.connect_timeout = 300ms;
  redis::client c(io, o);
  start_and_wait(io, c);
  REQUIRE(::kill(srv.pid(), SIGSTOP) == 0);
  std::optional<redis::result> r;
  const auto t0 = std::chrono::steady_clock::now();
  c.command({"PING"}, [&](redis::result x) { r = std::move(x); });
  run_until(io, [&] { return r.has_value(); }, "the deadline to fail the command", 5s);
  ::kill(srv.pid(), SIGCONT);
  CHECK_THAT(r->error, Catch::Contains("timed out"));
  CHECK(std::chrono::steady_clock::now() - t0 >= 300ms);
  run_until(io, [&] { return c.ready(); }, "the reconnect after SIGCONT");
  CHECK(call(io, c, {"PING"}).value.str == "PONG");
}

TEST_CASE("redis client: stop fails pending commands and callbacks may stop the client", "[redis]") {
  pt::redis_server srv;
  net::io_context io;
  redis::client c(io, options_for(srv));
  start_and_wait(io, c);
  std::vector<std::string> errors;
  c.command({"BLPOP", "nothing", "5"}, [&](redis::result r) { errors.push_back(r.error); });
  c.command({"PING"}, [&](redis::result r) { errors.push_back(r.error); });
  c.stop();
  CHECK(errors == std::vector<std::string>{"stopped", "stopped"});
  std::optional<redis::result> after;
  c.command({"PING"}, [&](redis::result r) { after = std::move(r); });
  run_until(io, [&] { return after.has_value(); }, "the answer after stop");
  CHECK(after->error == "stopped");
}

// A stand-in Redis server (not a real Redis: it sends replies no Redis sends) answers the
// handshake's PING, then each command with `hostile`.
TEST_CASE("redis client: hostile replies are bounded and fail the connection", "[redis]") {
  auto hostile = GENERATE(std::string("*2000000\r\n"),                      // a huge array
                          std::string("*3\r\n*600000\r\n*600000\r\n"),       // nested, adding up
                          std::string("$900000000\r\n") + std::string(1 << 20, 'x'),  // a huge string
                          std::string("?what\r\n"));                          // not the protocol
  net::io_context server_io;
  net::ip::tcp::acceptor acceptor(server_io, {net::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::thread server([&] {
    net::ip::tcp::socket s(server_io);
    acceptor.accept(s);
    net::streambuf buf;
    boost::system::error_code ec;
    net::read_until(s, buf, "PING\r\n", ec);
    net::write(s, net::buffer(std::string("+PONG\r\n")), ec);
    net::read_until(s, buf, "GET\r\n", ec);
    net::write(s, net::buffer(hostile), ec);
    char c;
    s.read_some(net::buffer(&c, 1), ec);  // until the client closes
  });
  {
    net::io_context io;
    redis::options o;
    o.port = port;
    o.max_reply_size = 512 << 10;
    o.reconnect_min = o.reconnect_max = 10s;  // one connection only
    redis::client c(io, o);
    start_and_wait(io, c);
    std::optional<redis::result> r;
    c.command({"GET"}, [&](redis::result x) { r = std::move(x); });
    run_until(io, [&] { return r.has_value(); }, "the hostile reply to fail the command");
    INFO(r->error);
    CHECK_THAT(r->error, Catch::Contains("protocol error"));
    CHECK_FALSE(c.ready());
  }
  server.join();
}
