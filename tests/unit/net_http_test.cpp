// http_server over real sockets on 127.0.0.1 port 0: routes, query decoding, keep-alive, errors,
// the body limit, the read timeout, a stall that does not disturb other clients, graceful stop.
// async_http_get against it and against a raw peer.
#include <catch2/catch.hpp>

#include <poll.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <nlohmann/json.hpp>

#include "pipekit/cli/error.hpp"
#include "pipekit/cli/exit_code.hpp"
#include "pipekit/net/http_client.hpp"
#include "pipekit/net/http_server.hpp"
#include "pipekit/net/http_session.hpp"
#include "pipekit/net/tcp_listener.hpp"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace pipekit;

namespace {

// The server on its own thread; requests from this one over plain blocking sockets.
struct running_server {
  asio::io_context io;
  net::http_server server;
  std::thread thread;
  explicit running_server(net::http_server_options opts = {}) : server(io, std::move(opts)) {
    server.route("GET", "/echo", [](const net::http_request& r) {
      nlohmann::json q = nlohmann::json::array();
      for (auto& [k, v] : r.query) q.push_back({k, v});
      return net::json_response({{"method", r.method}, {"path", r.path}, {"query", q}, {"body", r.body}});
    });
    server.route("POST", "/echo", [](const net::http_request& r) {
      const std::string* topic = r.param("topic");
      if (!topic) return net::json_error(400, "MISSING_ARG_TOPIC");
      return net::http_response{200, *topic + ":" + r.body, "text/plain", {{"X-Extra", "1"}}};
    });
    server.route("GET", "/throw", [](const net::http_request&) -> net::http_response { throw std::runtime_error("boom"); });
    server.listen("127.0.0.1:0");
  }
  void start() {
    thread = std::thread([this] { io.run(); });
  }
  ~running_server() {
    asio::post(io, [this] { server.stop(); });
    if (thread.joinable()) thread.join();
  }
};

// Sends raw bytes, reads until the server closes or one full response (by Content-Length) is in.
struct client {
  asio::io_context io;
  tcp::socket socket{io};
  std::string pending;
  explicit client(std::uint16_t port) { socket.connect({asio::ip::make_address("127.0.0.1"), port}); }
  void send(const std::string& bytes) { asio::write(socket, asio::buffer(bytes)); }
  // One response: status line + headers + body; "" when the connection closed first.
  std::string response() {
    for (;;) {
      auto head_end = pending.find("\r\n\r\n");
      if (head_end != std::string::npos) {
        std::size_t length = 0;
        auto cl = pending.find("Content-Length: ");
        if (cl != std::string::npos && cl < head_end) length = std::stoul(pending.substr(cl + 16));
        if (pending.size() >= head_end + 4 + length) {
          auto r = pending.substr(0, head_end + 4 + length);
          pending.erase(0, r.size());
          return r;
        }
      }
      char buf[4096];
      boost::system::error_code ec;
      auto n = socket.read_some(asio::buffer(buf), ec);
      if (ec) return "";
      pending.append(buf, n);
    }
  }
  bool closed_by_peer() {
    char c;
    boost::system::error_code ec;
    socket.read_some(asio::buffer(&c, 1), ec);
    return ec == asio::error::eof || ec == asio::error::connection_reset;
  }
};

std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

}  // namespace

TEST_CASE("http_server routes by method and path and decodes the query", "[net]") {
  running_server s;
  s.start();
  client c(s.server.port());
  c.send("GET /echo?topic=a%2Eb&x=1+2&flag&topic=second HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.response();
  CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 200 OK"));
  CHECK_THAT(r, Catch::Contains("Content-Type: application/json; charset=utf-8"));
  auto j = nlohmann::json::parse(body_of(r));
  CHECK(j["path"] == "/echo");
  CHECK(j["query"] == nlohmann::json::parse(R"([["topic","a.b"],["x","1 2"],["flag",""],["topic","second"]])"));

  SECTION("the same connection is kept alive for the next request, a POST with a body") {
    c.send("POST /echo?topic=t HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 200 OK"));
    CHECK_THAT(r, Catch::Contains("X-Extra: 1"));
    CHECK(body_of(r) == "t:hello");
  }
  SECTION("unknown path 404, wrong method 405, handler error 400 and a throw 500, all as nsq's JSON") {
    c.send("GET /nope HTTP/1.1\r\n\r\n");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 404"));
    CHECK(body_of(r) == R"({"message":"NOT_FOUND"})");
    c.send("DELETE /echo HTTP/1.1\r\n\r\n");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 405"));
    CHECK(body_of(r) == R"({"message":"METHOD_NOT_ALLOWED"})");
    c.send("POST /echo HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 400"));
    CHECK(body_of(r) == R"({"message":"MISSING_ARG_TOPIC"})");
    c.send("GET /throw HTTP/1.1\r\n\r\n");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 500"));
    CHECK(body_of(r) == R"({"message":"INTERNAL_ERROR"})");
  }
  SECTION("Connection: close is honoured") {
    c.send("GET /echo HTTP/1.1\r\nConnection: close\r\n\r\n");
    CHECK_THAT(c.response(), Catch::StartsWith("HTTP/1.1 200"));
    CHECK(c.closed_by_peer());
  }
  SECTION("garbage gets 400 and a close") {
    c.send("NOT HTTP AT ALL\r\n\r\n");
    r = c.response();
    CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 400"));
    CHECK(c.closed_by_peer());
  }
}

TEST_CASE("http_server: a body over the limit gets 413 and a close, others go on", "[net]") {
  net::http_server_options opts;
  opts.body_limit = 100;
  running_server s(opts);
  s.start();
  client big(s.server.port());
  big.send("POST /echo?topic=t HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + std::string(1000, 'x'));
  auto r = big.response();
  CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 413"));
  CHECK(body_of(r) == R"({"message":"BODY_TOO_LARGE"})");
  CHECK(big.closed_by_peer());
  client small(s.server.port());
  small.send("POST /echo?topic=t HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'y'));
  CHECK(body_of(small.response()) == "t:" + std::string(100, 'y'));
}

TEST_CASE("http_server: a stalled client is cut at the read timeout without delaying others", "[net]") {
  net::http_server_options opts;
  opts.read_timeout = std::chrono::milliseconds(1000);
  running_server s(opts);
  s.start();
  client stalled(s.server.port());
  stalled.send("GET /echo HTTP/1.1\r\nHost:");  // and never the rest
  auto t0 = std::chrono::steady_clock::now();
  client other(s.server.port());
  other.send("GET /echo HTTP/1.1\r\n\r\n");
  CHECK_THAT(other.response(), Catch::StartsWith("HTTP/1.1 200"));
  // Not held up by the stall: answered while the stalled connection still waits for its read timeout.
  pollfd p{stalled.socket.native_handle(), POLLIN, 0};
  CHECK(::poll(&p, 1, 0) == 0);
  CHECK(stalled.closed_by_peer());
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
}

TEST_CASE("http_server: stop closes idle connections and the listener", "[net]") {
  auto s = std::make_unique<running_server>();
  s->start();
  auto port = s->server.port();
  client idle(port);
  idle.send("GET /echo HTTP/1.1\r\n\r\n");
  CHECK_THAT(idle.response(), Catch::StartsWith("HTTP/1.1 200"));
  asio::post(s->io, [&] { s->server.stop(); });
  CHECK(idle.closed_by_peer());
  s->thread.join();  // nothing left to do: run() returns
  asio::io_context io;
  tcp::socket again(io);
  boost::system::error_code ec;
  again.connect({asio::ip::make_address("127.0.0.1"), port}, ec);
  CHECK(ec);
}

TEST_CASE("listen addresses: host:port, [v6]:port, :port; bad ones are usage errors", "[net]") {
  CHECK(net::to_string(net::parse_listen_address("127.0.0.1:4161")) == "127.0.0.1:4161");
  CHECK(net::to_string(net::parse_listen_address("[::1]:80")) == "[::1]:80");
  CHECK(net::to_string(net::parse_listen_address(":4160")) == "0.0.0.0:4160");
  for (const char* bad : {"4160", "127.0.0.1:", "127.0.0.1:http", "127.0.0.1:70000"}) {
    INFO(bad);
    try {
      net::parse_listen_address(bad);
      FAIL("no error");
    } catch (const option_error& e) {
      CHECK(e.error_kind() == option_error::kind::usage);
      CHECK(e.with_names([](const std::string& o) { return "--" + o; }).starts_with(std::string("--listen ") + bad));
    }
  }
  asio::io_context io;
  net::tcp_listener first(io, "127.0.0.1:0", [](tcp::socket) {});
  try {
    net::tcp_listener second(io, "127.0.0.1:" + std::to_string(first.port()), [](tcp::socket) {});
    FAIL("bound twice");
  } catch (const option_error& e) {
    CHECK(e.error_kind() == option_error::kind::unavailable);
  }
}

TEST_CASE("http_server answers pipelined requests in order", "[net]") {
  running_server s;
  s.start();
  client c(s.server.port());
  c.send("GET /echo?n=1 HTTP/1.1\r\n\r\nPOST /echo?topic=two HTTP/1.1\r\nContent-Length: 1\r\n\r\nxGET /nope HTTP/1.1\r\n\r\n");
  auto first = nlohmann::json::parse(body_of(c.response()));
  CHECK(first["query"][0][1] == "1");
  CHECK(body_of(c.response()) == "two:x");
  CHECK_THAT(c.response(), Catch::StartsWith("HTTP/1.1 404"));
}

TEST_CASE("http_server: an asynchronous route answers later; pipelined requests keep their order", "[net]") {
  running_server s;
  // Answers after a timer, with the body it was sent: a request behind it must wait its turn.
  s.server.route_async("POST", "/later", [&](const net::http_request& r, net::http_responder respond) {
    auto t = std::make_shared<asio::steady_timer>(s.io, std::chrono::milliseconds(50));
    t->async_wait([t, body = r.body, respond](boost::system::error_code) {
      respond(net::http_response{200, "later:" + body, "text/plain", {}});
    });
  });
  s.server.route_async("GET", "/twice", [](const net::http_request&, net::http_responder respond) {
    respond(net::http_response{200, "first", "text/plain", {}});
    respond(net::http_response{200, "second", "text/plain", {}});  // ignored: one answer per request
  });
  s.server.route_async("GET", "/throws", [](const net::http_request&, net::http_responder) {
    throw std::runtime_error("boom");
  });
  s.start();
  client c(s.server.port());
  c.send("POST /later HTTP/1.1\r\nContent-Length: 1\r\n\r\naGET /echo?n=2 HTTP/1.1\r\n\r\n");
  CHECK(body_of(c.response()) == "later:a");
  CHECK(nlohmann::json::parse(body_of(c.response()))["query"][0][1] == "2");
  c.send("GET /twice HTTP/1.1\r\n\r\nGET /throws HTTP/1.1\r\n\r\nGET /echo?n=3 HTTP/1.1\r\n\r\n");
  CHECK(body_of(c.response()) == "first");
  auto r = c.response();
  CHECK_THAT(r, Catch::StartsWith("HTTP/1.1 500"));
  CHECK(nlohmann::json::parse(body_of(c.response()))["query"][0][1] == "3");
}

// --- async_http_get ------------------------------------------------------------------------------

namespace {

// Runs one GET on a fresh io_context to completion and returns its result.
net::http_get_result get(const std::string& address, const std::string& target, net::http_get_options o = {}) {
  asio::io_context io;
  net::http_get_result out;
  bool called = false;
  net::async_http_get(io, address, target, o, [&](net::http_get_result r) {
    CHECK_FALSE(called);
    called = true;
    out = std::move(r);
  });
  CHECK_FALSE(called);  // never inside the call
  io.run();
  CHECK(called);
  return out;
}

// A one-shot raw HTTP peer: reads the request (head, and a body by Content-Length), then answers
// `reply` (or nothing, when reply is empty); it holds the connection open until the client closes it
// when reply is empty or `hold` is set.
struct raw_peer {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::string request;
  std::thread thread;
  explicit raw_peer(std::string reply, bool hold = false) {
    thread = std::thread([this, reply = std::move(reply), hold] {
      tcp::socket s(io);
      acceptor.accept(s);
      char buf[4096];
      boost::system::error_code ec;
      while (request.find("\r\n\r\n") == std::string::npos && !ec) request.append(buf, s.read_some(asio::buffer(buf), ec));
      // A body, as long as Content-Length says.
      const auto head = request.find("\r\n\r\n") + 4;
      const auto cl = request.find("Content-Length: ");
      const std::size_t length = cl == std::string::npos ? 0 : std::stoul(request.substr(cl + 16));
      while (request.size() < head + length && !ec) request.append(buf, s.read_some(asio::buffer(buf), ec));
      if (!reply.empty()) asio::write(s, asio::buffer(reply), ec);
      if (reply.empty() || hold) s.read_some(asio::buffer(buf), ec);  // until the client gives up and closes
    });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
  ~raw_peer() { thread.join(); }
};

}  // namespace

TEST_CASE("async_http_get: status and body from a real server, errors named", "[net]") {
  running_server s;
  s.start();
  const std::string addr = "127.0.0.1:" + std::to_string(s.server.port());

  auto r = get(addr, "/echo?topic=a%2Eb");
  CHECK(r.status == 200);
  CHECK(r.error.empty());
  CHECK(nlohmann::json::parse(r.body)["query"][0] == nlohmann::json::parse(R"(["topic","a.b"])"));
  r = get("http://" + addr + "/ignored", "/nope");  // a URL's path is not the target
  CHECK(r.status == 404);
  CHECK(r.body == R"({"message":"NOT_FOUND"})");

  net::http_get_options small;
  small.max_body = 10;
  r = get(addr, "/echo", small);
  CHECK(r.status == 0);
  CHECK(r.error == "response too large");

  r = get("127.0.0.1:not-a-port", "/");
  CHECK(r.status == 0);
  CHECK_FALSE(r.error.empty());
}

TEST_CASE("async_http_get: the request it sends, a chunked answer, a peer that never answers", "[net]") {
  {
    raw_peer peer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n");
    net::http_get_options o;
    o.accept = "application/vnd.nsq; version=1.0";
    auto r = get(peer.address(), "/lookup?topic=t", o);
    CHECK(r.status == 200);
    CHECK(r.body == "abcde");
    CHECK_THAT(peer.request, Catch::StartsWith("GET /lookup?topic=t HTTP/1.1\r\n"));
    CHECK_THAT(peer.request, Catch::Contains("Host: " + peer.address() + "\r\n"));
    CHECK_THAT(peer.request, Catch::Contains("Accept: application/vnd.nsq; version=1.0\r\n"));
  }
  {
    raw_peer peer("");
    net::http_get_options o;
    o.timeout = std::chrono::milliseconds(200);
    auto r = get(peer.address(), "/", o);
    CHECK(r.status == 0);
    CHECK(r.error == "timed out");
  }
  {
    // Nothing listens on a port just released.
    std::uint16_t port;
    {
      asio::io_context io;
      tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }
    auto r = get("127.0.0.1:" + std::to_string(port), "/");
    CHECK(r.status == 0);
    CHECK_FALSE(r.error.empty());
  }
}

TEST_CASE("async_http_post: the request it sends, the answer, a bound on it, a deadline", "[net]") {
  auto post = [](const std::string& address, std::string body, net::http_options o) {
    asio::io_context io;
    net::http_result out;
    int calls = 0;
    net::async_http_post(io, address, "/auth?x=1", std::move(body), "application/json", o, [&](net::http_result r) {
      ++calls;
      out = std::move(r);
    });
    CHECK(calls == 0);  // never inside the call
    io.run();
    CHECK(calls == 1);
    return out;
  };
  {
    raw_peer peer("HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\n{\"user\":\"42\"}");
    net::http_options o;
    o.authorization = "Bearer s3cret";
    auto r = post(peer.address(), R"({"token":"t"})", o);
    INFO(r.error);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"user":"42"})");
    CHECK_THAT(peer.request, Catch::StartsWith("POST /auth?x=1 HTTP/1.1\r\n"));
    CHECK_THAT(peer.request, Catch::Contains("Content-Type: application/json\r\n"));
    CHECK_THAT(peer.request, Catch::Contains("Content-Length: 13\r\n"));
    CHECK_THAT(peer.request, Catch::Contains("Authorization: Bearer s3cret\r\n"));
    CHECK_THAT(peer.request, Catch::EndsWith("\r\n\r\n{\"token\":\"t\"}"));
  }
  {
    // Over the bound, even chunked (no Content-Length to refuse up front).
    raw_peer peer("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + std::string("40\r\n") +
                  std::string(64, 'x') + "\r\n0\r\n\r\n");
    net::http_options o;
    o.max_body = 32;
    auto r = post(peer.address(), "{}", o);
    CHECK(r.status == 0);
    CHECK(r.error == "response too large");
  }
  {
    // A peer that answers the head but drips nothing more: the deadline covers the whole exchange.
    raw_peer peer("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{", true);
    net::http_options o;
    o.timeout = std::chrono::milliseconds(200);
    const auto t0 = std::chrono::steady_clock::now();
    auto r = post(peer.address(), "{}", o);
    CHECK(r.status == 0);
    CHECK(r.error == "timed out");
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(2));
  }
}

// --- http_session ---------------------------------------------------------------------------------

namespace {

// A raw HTTP peer for http_session: answers each request with the next of `replies` on the
// connection it came on; a reply ending in "<close>" is sent without that mark and the connection
// closed after it (without saying so in a header: a server's idle close). Counts connections.
struct session_peer {
  asio::io_context io;
  tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
  std::vector<std::string> requests;
  int connections = 0;
  std::thread thread;
  explicit session_peer(std::vector<std::string> replies) {
    thread = std::thread([this, replies = std::move(replies)] {
      std::size_t next = 0;
      while (next < replies.size()) {
        tcp::socket s(io);
        acceptor.accept(s);
        ++connections;
        std::string in;
        boost::system::error_code ec;
        while (next < replies.size() && !ec) {
          char buf[4096];
          std::size_t head;
          while ((head = in.find("\r\n\r\n")) == std::string::npos && !ec) in.append(buf, s.read_some(asio::buffer(buf), ec));
          if (ec) break;
          std::size_t length = 0;
          if (auto cl = in.find("Content-Length: "); cl != std::string::npos && cl < head) length = std::stoul(in.substr(cl + 16));
          while (in.size() < head + 4 + length && !ec) in.append(buf, s.read_some(asio::buffer(buf), ec));
          if (ec) break;
          requests.push_back(in.substr(0, head + 4 + length));
          in.erase(0, head + 4 + length);
          std::string reply = replies[next++];
          const bool close = reply.ends_with("<close>");
          if (close) reply.resize(reply.size() - 7);
          asio::write(s, asio::buffer(reply), ec);
          if (close) break;
        }
      }
    });
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(acceptor.local_endpoint().port()); }
  // Once every reply was sent; then requests and connections may be read.
  void join() { thread.join(); }
  ~session_peer() {
    if (thread.joinable()) thread.join();
  }
};

const std::string ok_reply = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

}  // namespace

TEST_CASE("http_session: one kept-alive connection for several requests; answers of every status", "[net]") {
  running_server s;
  s.start();
  const std::string url = "http://user:pa%20ss@127.0.0.1:" + std::to_string(s.server.port()) + "/echo?topic=u";
  net::http_session h(url);
  auto r = h.post("", "text/plain", "one");  // the URL's own target
  CHECK(r.status == 200);
  CHECK(r.body == "u:one");
  r = h.post("/echo", "text/plain", "x");
  CHECK(r.status == 400);
  CHECK(r.body == R"({"message":"MISSING_ARG_TOPIC"})");
  {
    session_peer peer({ok_reply, ok_reply});
    net::http_session p(peer.url());
    CHECK(p.post("/a", "application/json", "[1]").body == "ok");
    CHECK(p.post("/b", "application/json", "[2]").body == "ok");
    peer.join();
    CHECK(peer.connections == 1);
    REQUIRE(peer.requests.size() == 2);
    CHECK_THAT(peer.requests[0], Catch::StartsWith("POST /a HTTP/1.1\r\n"));
    CHECK_THAT(peer.requests[0], Catch::Contains("Content-Type: application/json\r\n"));
    CHECK_THAT(peer.requests[0], Catch::EndsWith("\r\n\r\n[1]"));
  }
  {
    session_peer peer({ok_reply});
    net::http_session p("http://user:pa%20ss@" + peer.url().substr(7));
    p.post("/", "text/plain", "");
    peer.join();
    REQUIRE(peer.requests.size() == 1);
    CHECK_THAT(peer.requests[0], Catch::Contains("Authorization: Basic dXNlcjpwYSBzcw==\r\n"));  // user:pa ss
  }
}

TEST_CASE("http_session: a connection the server closed meanwhile is opened again; failures named", "[net]") {
  {
    session_peer peer({ok_reply + "<close>", ok_reply});
    net::http_session p(peer.url());
    CHECK(p.post("/", "text/plain", "1").body == "ok");
    CHECK(p.post("/", "text/plain", "2").body == "ok");  // sent again on a new connection
    peer.join();
    CHECK(peer.connections == 2);
  }
  {
    // Announced too large: refused at the header; the session goes on with a new connection.
    session_peer peer({"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'x') + "<close>", ok_reply});
    net::http_session p(peer.url(), {.max_body = 10});
    CHECK_THROWS_AS(p.post("/", "text/plain", ""), net::http_body_too_large);
    CHECK(p.post("/", "text/plain", "").body == "ok");
  }
  {
    raw_peer peer("");  // never answers
    net::http_session p("http://" + peer.address(), {.timeout = std::chrono::milliseconds(200)});
    try {
      p.post("/", "text/plain", "");
      FAIL("no error");
    } catch (const net::http_error& e) {
      CHECK(std::string(e.what()) == "reading the answer: timed out after 200 ms");
    }
  }
  {
    std::uint16_t port;
    {
      asio::io_context io;
      tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
      port = a.local_endpoint().port();
    }
    net::http_session p("http://127.0.0.1:" + std::to_string(port));
    try {
      p.post("/", "text/plain", "");
      FAIL("no error");
    } catch (const net::http_error& e) {
      CHECK_THAT(e.what(), Catch::StartsWith("connecting: "));
    }
  }
  CHECK_THROWS_AS(net::http_session("ftp://127.0.0.1/"), std::invalid_argument);
  CHECK_THROWS_AS(net::http_session("not a url"), std::invalid_argument);
}
