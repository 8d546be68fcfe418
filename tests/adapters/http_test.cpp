// The http adapter against real servers on 127.0.0.1 (a small Beast server on its own thread and
// io_context, plain or TLS with certificates made by the `openssl` command), driven from a client
// io_context on the test's thread.
#include <catch2/catch.hpp>

#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <future>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "adapters/http.hpp"
#include "tests/adapters/test_certificates.hpp"

namespace wf::adapters {
namespace {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Request = http::request<http::string_body>;

// What the test server does with one request.
struct Reply {
  unsigned status = 200;
  std::string body = "{}";
  std::chrono::milliseconds delay{0};  // answer after this long (other requests go on meanwhile)
  bool hang = false;                   // never answer
  bool drop = false;                   // close the connection without answering
  bool close = false;                  // answer, then close the connection
  bool chunked = false;                // send the body in chunks, without Content-Length
};

// A request as the server saw it.
struct Seen {
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;
  int connection = 0;  // which connection (1-based, in accept order) carried it
};

// An HTTP/1.1 server on 127.0.0.1 with an OS-chosen port, on its own thread. Handles every
// connection concurrently (coroutines on one io_context). `handler` runs on the server's thread
// with the request and its index on its connection (1-based).
class TestServer {
 public:
  using Handler = std::function<Reply(const Request&, int index_on_connection)>;

  explicit TestServer(Handler handler, ssl::context* tls = nullptr)
      : handler_(std::move(handler)), tls_(tls), acceptor_(io_) {
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
    asio::co_spawn(io_, Accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~TestServer() {
    io_.stop();
    thread_.join();
  }

  unsigned short port() const { return port_; }
  std::string url(const std::string& path = "") const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  int connections() const { return connections_.load(); }
  std::vector<Seen> seen() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }

  // Closes every open connection from the server's side, as a server does with idle ones, and
  // returns once they are closed.
  void CloseConnections() {
    std::promise<void> done;
    asio::post(io_, [this, &done] {
      for (tcp::socket* socket : open_) {
        boost::system::error_code ec;
        socket->shutdown(tcp::socket::shutdown_both, ec);
        socket->close(ec);
      }
      done.set_value();
    });
    done.get_future().wait();
  }

 private:
  asio::awaitable<void> Accept() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor_.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      int number = ++connections_;
      if (tls_) {
        asio::co_spawn(
            io_, Session(beast::ssl_stream<beast::tcp_stream>(std::move(socket), *tls_), number),
            asio::detached);
      } else {
        asio::co_spawn(io_, Session(beast::tcp_stream(std::move(socket)), number), asio::detached);
      }
    }
  }

  template <class Stream>
  asio::awaitable<void> Session(Stream stream, int number) {
    boost::system::error_code ec;
    tcp::socket& socket = beast::get_lowest_layer(stream).socket();
    auto registered = open_.insert(open_.end(), &socket);
    if constexpr (!std::is_same_v<Stream, beast::tcp_stream>) {
      co_await stream.async_handshake(ssl::stream_base::server,
                                      asio::redirect_error(asio::use_awaitable, ec));
    }
    beast::flat_buffer buffer;
    for (int index = 1; !ec; ++index) {
      Request request;
      co_await http::async_read(stream, buffer, request,
                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) break;
      {
        Seen s;
        s.target = std::string(request.target());
        for (const auto& field : request) {
          s.headers[std::string(field.name_string())] = std::string(field.value());
        }
        s.body = request.body();
        s.connection = number;
        std::lock_guard<std::mutex> lock(mutex_);
        seen_.push_back(std::move(s));
      }
      Reply reply = handler_(request, index);
      if (reply.drop) break;
      if (reply.hang) reply.delay = std::chrono::hours(1);
      if (reply.delay.count() > 0) {
        asio::steady_timer timer(io_, reply.delay);
        co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      http::response<http::string_body> response{static_cast<http::status>(reply.status), 11};
      response.set(http::field::content_type, "application/json");
      response.body() = reply.body;
      response.keep_alive(request.keep_alive() && !reply.close);
      if (reply.chunked) {
        response.chunked(true);
      } else {
        response.prepare_payload();
      }
      co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
      if (!response.keep_alive()) break;
    }
    open_.erase(registered);
    beast::get_lowest_layer(stream).socket().close(ec);
  }

  Handler handler_;
  ssl::context* tls_;
  asio::io_context io_{1};
  tcp::acceptor acceptor_;
  std::thread thread_;
  unsigned short port_ = 0;
  std::atomic<int> connections_{0};
  std::list<tcp::socket*> open_;  // server thread only
  mutable std::mutex mutex_;
  std::vector<Seen> seen_;
};

Reply Answer(unsigned status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

StepRequest MakeRequest(std::string operation, nlohmann::json fields = nlohmann::json::object(),
                        std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  StepRequest request;
  request.case_id = "case-1";
  request.step = "verify_mother";
  request.activation = 3;
  request.idempotency_key = "case-1/verify_mother/3";
  request.operation = std::move(operation);
  request.fields = std::move(fields);
  request.timeout = timeout;
  return request;
}

// Runs calls on one client io_context kept across calls, so that pooled connections are reused.
class Client {
 public:
  StepOutcome Call(Adapter& adapter, StepRequest request) {
    std::optional<StepOutcome> outcome;
    std::exception_ptr error;
    asio::co_spawn(io_, adapter.Invoke(std::move(request)),
                   [&](std::exception_ptr e, StepOutcome o) {
                     error = e;
                     outcome = std::move(o);
                   });
    io_.restart();
    io_.run();
    REQUIRE_FALSE(error);
    REQUIRE(outcome.has_value());
    return *outcome;
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_{1};
};

std::unique_ptr<HttpAdapter> MakeAdapter(nlohmann::json settings,
                                         const std::string& department = "population-db") {
  auto adapter = HttpAdapter::Create(department, settings);
  INFO((adapter ? std::string() : adapter.error().message()));
  REQUIRE(adapter.has_value());
  return std::move(adapter.value());
}

using Kind = StepOutcome::Kind;

TEST_CASE("a 200 answer is the step's result and the call carries its headers and fields",
          "[adapters][http]") {
  ::setenv("WF_HTTP_TEST_TOKEN", "s3cret", 1);
  TestServer server([](const Request& request, int) {
    nlohmann::json echoed = nlohmann::json::parse(request.body());
    return Answer(200, nlohmann::json{{"found", true}, {"got", echoed}}.dump());
  });
  auto adapter = MakeAdapter(
      {{"url", server.url("/population/")},
       {"headers",
        {{"Authorization", "Bearer ${env.WF_HTTP_TEST_TOKEN}"}, {"X-Agency", "commune"}}}});
  Client client;
  StepOutcome outcome =
      client.Call(*adapter, MakeRequest("get_citizen", {{"id", "079123"}, {"n", 7}}));
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(outcome.result["found"] == true);
  CHECK(outcome.result["got"] == nlohmann::json({{"id", "079123"}, {"n", 7}}));

  auto seen = server.seen();
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].target == "/population/get_citizen");
  CHECK(seen[0].headers["Idempotency-Key"] == "case-1/verify_mother/3");
  CHECK(seen[0].headers["X-Wf-Case"] == "case-1");
  CHECK(seen[0].headers["X-Wf-Step"] == "verify_mother");
  CHECK(seen[0].headers["Content-Type"] == "application/json");
  CHECK(seen[0].headers["Authorization"] == "Bearer s3cret");
  CHECK(seen[0].headers["X-Agency"] == "commune");
  CHECK(seen[0].headers["Host"] == "127.0.0.1:" + std::to_string(server.port()));
  CHECK(nlohmann::json::parse(seen[0].body) == nlohmann::json({{"id", "079123"}, {"n", 7}}));
}

TEST_CASE("a 201 answer is done and a 202 answer is accepted", "[adapters][http]") {
  TestServer server([](const Request& request, int) {
    if (request.target() == "/later") return Answer(202, "");
    return Answer(201, R"({"created": 1})");
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome created = client.Call(*adapter, MakeRequest("now"));
  REQUIRE(created.kind == Kind::kDone);
  CHECK(created.result == nlohmann::json({{"created", 1}}));
  StepOutcome later = client.Call(*adapter, MakeRequest("later"));
  CHECK(later.kind == Kind::kAccepted);
}

TEST_CASE("a 4xx answer is a permanent failure naming the status and the body",
          "[adapters][http]") {
  TestServer server([](const Request& request, int) {
    if (request.target() == "/teapot") return Answer(418, "short and stout");
    return Answer(404, R"({"error": "no citizen 079123"})");
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome missing = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(missing.kind == Kind::kFailed);
  CHECK(missing.message ==
        R"(population-db get_citizen: answered 404 Not Found: {"error": "no citizen 079123"})");
  StepOutcome teapot = client.Call(*adapter, MakeRequest("teapot"));
  CHECK(teapot.kind == Kind::kFailed);
  CHECK_THAT(teapot.message, Catch::Contains("418") && Catch::Contains("short and stout"));
}

TEST_CASE("only the first 500 bytes of a refusal's body go into the message", "[adapters][http]") {
  TestServer server([](const Request&, int) { return Answer(400, std::string(5000, 'x')); });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("op"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message.find(std::string(500, 'x') + "...") != std::string::npos);
  CHECK(outcome.message.find(std::string(501, 'x')) == std::string::npos);
}

TEST_CASE("408, 429 and 5xx answers are retried", "[adapters][http]") {
  TestServer server([](const Request& request, int) {
    unsigned status = static_cast<unsigned>(std::stoi(std::string(request.target()).substr(1)));
    return Answer(status, "busy");
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  for (const char* status : {"408", "429", "500", "502", "503"}) {
    StepOutcome outcome = client.Call(*adapter, MakeRequest(status));
    INFO(status << ": " << outcome.message);
    CHECK(outcome.kind == Kind::kRetry);
    CHECK_THAT(outcome.message,
               Catch::StartsWith(std::string("population-db ") + status + ": answered " + status));
  }
}

TEST_CASE("statuses outside the contract are permanent failures", "[adapters][http]") {
  TestServer server([](const Request&, int) {
    Reply reply = Answer(301, "");
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("moved"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message, Catch::Contains("301"));
}

TEST_CASE("a 200 answer whose body is not a JSON object is a permanent failure",
          "[adapters][http]") {
  TestServer server([](const Request& request, int) {
    if (request.target() == "/array") return Answer(200, "[1, 2]");
    return Answer(200, "<html>hello</html>");
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome html = client.Call(*adapter, MakeRequest("html"));
  CHECK(html.kind == Kind::kFailed);
  CHECK_THAT(html.message,
             Catch::StartsWith("population-db html: answered 200 with a body that is not JSON"));
  StepOutcome array = client.Call(*adapter, MakeRequest("array"));
  CHECK(array.kind == Kind::kFailed);
  CHECK_THAT(array.message, Catch::Contains("not an object"));
}

TEST_CASE("a server that does not answer in time is cut off by the step's timeout and retried",
          "[adapters][http]") {
  TestServer server([](const Request&, int) {
    Reply reply;
    reply.hang = true;
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome outcome =
      client.Call(*adapter, MakeRequest("slow", {}, std::chrono::milliseconds(300)));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message == "population-db slow: timed out after 300ms");
}

TEST_CASE("an http department's timeout caps the step's", "[adapters][http]") {
  TestServer server([](const Request&, int) {
    Reply reply;
    reply.hang = true;
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}, {"timeout", "1s"}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("slow", {}, std::chrono::hours(1)));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message == "population-db slow: timed out after 1s");
}

TEST_CASE("a refused connection is retried", "[adapters][http]") {
  unsigned short port = 0;
  {
    asio::io_context io;
    tcp::acceptor probe(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = probe.local_endpoint().port();
  }  // closed again: nothing listens there now
  auto adapter = MakeAdapter({{"url", "http://127.0.0.1:" + std::to_string(port)}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message == "population-db get_citizen: connection refused");
}

TEST_CASE("a host name that does not resolve is retried", "[adapters][http]") {
  auto adapter = MakeAdapter({{"url", "http://no-such-host.invalid:8080"}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK_THAT(outcome.message, Catch::StartsWith("population-db get_citizen: cannot resolve host "
                                                "'no-such-host.invalid'"));
}

TEST_CASE("an answer larger than max_response_bytes is refused", "[adapters][http]") {
  TestServer server([](const Request& request, int) {
    std::string target(request.target());
    std::string filler(target == "/small" ? 10 : 5000, 'x');
    Reply reply = Answer(200, nlohmann::json{{"filler", filler}}.dump());
    reply.chunked = target == "/chunked";
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}, {"max_response_bytes", 1000}});
  Client client;
  StepOutcome big = client.Call(*adapter, MakeRequest("big"));
  CHECK(big.kind == Kind::kFailed);
  CHECK(big.message == "population-db big: answer larger than 1000 bytes");
  StepOutcome chunked = client.Call(*adapter, MakeRequest("chunked"));
  CHECK(chunked.kind == Kind::kFailed);
  CHECK(chunked.message == "population-db chunked: answer larger than 1000 bytes");
  StepOutcome small = client.Call(*adapter, MakeRequest("small"));
  CHECK(small.kind == Kind::kDone);
}

TEST_CASE(
    "an answer of 1 MB of open brackets or a huge string is a permanent failure naming the bound",
    "[adapters][http][limits]") {
  TestServer server([](const Request& request, int) {
    std::string target(request.target());
    if (target == "/deep") return Answer(200, std::string(1000000, '['));
    if (target == "/huge")
      return Answer(200, nlohmann::json{{"scan", std::string(300000, 'x')}}.dump());
    return Answer(200, R"({"status": "alive"})");
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome deep = client.Call(*adapter, MakeRequest("deep"));
  CHECK(deep.kind == Kind::kFailed);
  CHECK_THAT(deep.message, Catch::StartsWith("population-db deep: answered 200 with JSON nested "
                                             "deeper than 32 levels at $[0][0]"));
  StepOutcome huge = client.Call(*adapter, MakeRequest("huge"));
  CHECK(huge.kind == Kind::kFailed);
  CHECK(huge.message ==
        "population-db huge: answered 200 with JSON with a string longer than 262144 bytes at "
        "$.scan");
  StepOutcome fine = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(fine.kind == Kind::kDone);
  CHECK(fine.result["status"] == "alive");
}

TEST_CASE("sequential calls reuse one kept-alive connection", "[adapters][http]") {
  TestServer server([](const Request&, int index) {
    return Answer(200, nlohmann::json{{"index", index}}.dump());
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  for (int i = 1; i <= 5; ++i) {
    StepOutcome outcome = client.Call(*adapter, MakeRequest("op"));
    REQUIRE(outcome.kind == Kind::kDone);
    CHECK(outcome.result["index"] == i);
  }
  CHECK(server.connections() == 1);
  CHECK(adapter->IdleConnections() == 1);
}

TEST_CASE("a connection the server closed while idle is replaced", "[adapters][http]") {
  TestServer server([](const Request&, int) { return Answer(200, R"({"ok": true})"); });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  REQUIRE(client.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
  server.CloseConnections();
  StepOutcome outcome = client.Call(*adapter, MakeRequest("op"));
  CHECK(outcome.kind == Kind::kDone);
  CHECK(server.connections() == 2);
  CHECK(server.seen().size() == 2);
}

TEST_CASE("a reused connection that closes without answering is retried once on a new one",
          "[adapters][http]") {
  // The second request on any connection is dropped unanswered, as when a server closes an idle
  // connection just as the request arrives.
  TestServer server([](const Request&, int index) {
    Reply reply = Answer(200, R"({"ok": true})");
    reply.drop = index == 2;
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  REQUIRE(client.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
  StepOutcome outcome = client.Call(*adapter, MakeRequest("op"));
  CHECK(outcome.kind == Kind::kDone);
  CHECK(server.connections() == 2);
  auto seen = server.seen();
  REQUIRE(seen.size() == 3);
  CHECK(seen[1].headers["Idempotency-Key"] == seen[2].headers["Idempotency-Key"]);
}

TEST_CASE("a new connection that closes without answering is not tried again", "[adapters][http]") {
  TestServer server([](const Request&, int) {
    Reply reply;
    reply.drop = true;
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("op"));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK(outcome.message == "population-db op: the server closed the connection before answering");
  CHECK(server.seen().size() == 1);
}

TEST_CASE("a connection the server closes after answering is not pooled", "[adapters][http]") {
  TestServer server([](const Request&, int) {
    Reply reply = Answer(200, R"({"ok": true})");
    reply.close = true;
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  Client client;
  CHECK(client.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
  CHECK(client.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
  CHECK(adapter->IdleConnections() == 0);
  CHECK(server.connections() == 2);
}

TEST_CASE("pooled connections are released when their io_context goes first", "[adapters][http]") {
  TestServer server([](const Request&, int) { return Answer(200, R"({"ok": true})"); });
  auto adapter = MakeAdapter({{"url", server.url()}});
  {
    Client client;
    REQUIRE(client.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
    REQUIRE(adapter->IdleConnections() == 1);
  }
  CHECK(adapter->IdleConnections() == 0);
  Client again;
  CHECK(again.Call(*adapter, MakeRequest("op")).kind == Kind::kDone);
  CHECK(server.connections() == 2);
}

TEST_CASE("a thousand concurrent calls to a slow department complete on one I/O thread",
          "[adapters][http][load]") {
  // Two descriptors a call (client and server end): make sure the limit allows it.
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < 4096) {
    limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, 4096);
    ::setrlimit(RLIMIT_NOFILE, &limit);
  }
  constexpr int kCalls = 1000;
  TestServer server([](const Request& request, int) {
    Reply reply = Answer(200, nlohmann::json{{"key", request["Idempotency-Key"]}}.dump());
    reply.delay = std::chrono::milliseconds(200);
    return reply;
  });
  auto adapter = MakeAdapter({{"url", server.url()}});
  asio::io_context io{1};
  std::vector<std::optional<StepOutcome>> outcomes(kCalls);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    StepRequest request = MakeRequest("op", {{"i", i}}, std::chrono::seconds(60));
    request.idempotency_key = "case-" + std::to_string(i) + "/s/1";
    asio::co_spawn(io, adapter->Invoke(std::move(request)),
                   [&outcomes, i](std::exception_ptr, StepOutcome o) { outcomes[i] = o; });
  }
  io.run();
  auto elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - started);
  WARN(kCalls << " concurrent calls to a department answering after 200 ms took " << elapsed.count()
              << " ms on one I/O thread");
  int done = 0;
  for (int i = 0; i < kCalls; ++i) {
    REQUIRE(outcomes[i].has_value());
    INFO(i << ": " << outcomes[i]->message);
    REQUIRE(outcomes[i]->kind == Kind::kDone);
    CHECK(outcomes[i]->result["key"] == "case-" + std::to_string(i) + "/s/1");
    ++done;
  }
  CHECK(done == kCalls);
  CHECK(server.seen().size() == kCalls);
  CHECK(adapter->IdleConnections() == 16);  // the default pool keeps 16 of them
}

// --- settings --------------------------------------------------------------------------------

TEST_CASE("a header naming an unset environment variable is a clear creation error",
          "[adapters][http][settings]") {
  ::unsetenv("WF_HTTP_TEST_MISSING");
  auto adapter = HttpAdapter::Create(
      "population-db", {{"url", "http://127.0.0.1:1"},
                        {"headers", {{"Authorization", "Bearer ${env.WF_HTTP_TEST_MISSING}"}}}});
  REQUIRE_FALSE(adapter.has_value());
  CHECK(adapter.error().code() == ErrorCode::kInvalid);
  CHECK(adapter.error().message() ==
        "department 'population-db': headers.Authorization: the environment variable "
        "WF_HTTP_TEST_MISSING (`${env.WF_HTTP_TEST_MISSING}`) is not set");
}

TEST_CASE("bad http settings are refused with the department and the key",
          "[adapters][http][settings]") {
  struct Bad {
    nlohmann::json settings;
    std::string says;
  };
  std::vector<Bad> cases = {
      {nlohmann::json::object(), "`url` is required"},
      {{{"url", "ftp://x"}}, "must start with http:// or https://"},
      {{{"url", "http://:80/x"}}, "has no host"},
      {{{"url", "http://host:99999"}}, "bad port"},
      {{{"url", "http://host"}, {"timeout", "5 working days"}}, "`timeout`: working days"},
      {{{"url", "http://host"}, {"timeout", "soon"}}, "`timeout`"},
      {{{"url", "http://host"}, {"pool_size", 0}}, "`pool_size` must be a positive"},
      {{{"url", "http://host"}, {"max_response_bytes", "big"}}, "`max_response_bytes`"},
      {{{"url", "http://host"}, {"headers", {{"Idempotency-Key", "x"}}}}, "sets this header"},
      {{{"url", "http://host"}, {"headers", {{"Bad Name", "x"}}}}, "not a valid header name"},
      {{{"url", "http://host"}, {"tls", {{"verify", false}}}}, "use https://"},
      {{{"url", "https://host"}, {"tls", {{"ca_file", "/nonexistent/ca.pem"}}}},
       "tls.ca_file '/nonexistent/ca.pem' cannot be loaded"},
      {{{"url", "https://host"}, {"tls", {{"cert_file", "c.pem"}}}}, "go together"},
      {{{"url", "http://host"}, {"urll", "x"}}, "unknown http setting `urll`"},
  };
  for (const auto& bad : cases) {
    auto adapter = HttpAdapter::Create("population-db", bad.settings);
    INFO(bad.settings.dump());
    REQUIRE_FALSE(adapter.has_value());
    CHECK(adapter.error().code() == ErrorCode::kInvalid);
    CHECK_THAT(adapter.error().message(),
               Catch::StartsWith("department 'population-db': ") && Catch::Contains(bad.says));
  }
}

TEST_CASE("an http call is validated without I/O", "[adapters][http][settings]") {
  auto adapter = MakeAdapter({{"url", "http://127.0.0.1:1"}});
  CHECK(adapter->Validate({"population-db", {{"operation", "get_citizen"}, {"id", 1}}}).ok());
  CHECK(adapter->Validate({"population-db", {{"operation", "${ .op }"}}}).ok());
  CHECK(adapter->Validate({"population-db", nlohmann::json::object()}).ok());
  Status bad = adapter->Validate({"population-db", {{"operation", 7}}});
  CHECK(bad.code() == ErrorCode::kInvalid);
  CHECK_THAT(bad.message(), Catch::Contains("`operation` must be text"));
  CHECK_FALSE(adapter->Validate({"population-db", nlohmann::json::array()}).ok());
}

// --- TLS -------------------------------------------------------------------------------------

std::unique_ptr<ssl::context> ServerTls() { return testing::ServerTlsContext(); }

const testing::TestCertificates& TestCertificates() { return testing::Certificates(); }

TEST_CASE("https calls succeed with the CA file and a matching host name",
          "[adapters][http][tls]") {
  auto tls = ServerTls();
  TestServer server([](const Request&, int) { return Answer(200, R"({"secure": true})"); },
                    tls.get());
  auto adapter = MakeAdapter({{"url", "https://localhost:" + std::to_string(server.port())},
                              {"tls", {{"ca_file", TestCertificates().ca}}}});
  Client client;
  StepOutcome first = client.Call(*adapter, MakeRequest("get_citizen"));
  INFO(first.message);
  REQUIRE(first.kind == Kind::kDone);
  CHECK(first.result == nlohmann::json({{"secure", true}}));
  CHECK(client.Call(*adapter, MakeRequest("get_citizen")).kind == Kind::kDone);
  CHECK(server.connections() == 1);  // TLS connections are kept alive too
}

TEST_CASE("a server certificate from an unknown CA is a permanent failure",
          "[adapters][http][tls]") {
  auto tls = ServerTls();
  TestServer server([](const Request&, int) { return Answer(200, "{}"); }, tls.get());
  auto adapter = MakeAdapter({{"url", "https://localhost:" + std::to_string(server.port())}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message,
             Catch::StartsWith(
                 "population-db get_citizen: the server's TLS certificate does not verify: "));
  CHECK(server.seen().empty());
}

TEST_CASE("a server certificate for another host name is a permanent failure",
          "[adapters][http][tls]") {
  auto tls = ServerTls();
  TestServer server([](const Request&, int) { return Answer(200, "{}"); }, tls.get());
  auto adapter = MakeAdapter({{"url", server.url()},  // https://127.0.0.1:PORT
                              {"tls", {{"ca_file", TestCertificates().ca}}}});
  Client client;
  StepOutcome outcome = client.Call(*adapter, MakeRequest("get_citizen"));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK(outcome.message ==
        "population-db get_citizen: the server's TLS certificate does not verify: the "
        "certificate does not name host '127.0.0.1'");
  CHECK(server.seen().empty());
}

TEST_CASE("verify: false accepts any server certificate", "[adapters][http][tls]") {
  auto tls = ServerTls();
  TestServer server([](const Request&, int) { return Answer(200, R"({"ok": 1})"); }, tls.get());
  auto adapter = MakeAdapter({{"url", server.url()}, {"tls", {{"verify", false}}}});
  Client client;
  CHECK(client.Call(*adapter, MakeRequest("get_citizen")).kind == Kind::kDone);
}

}  // namespace
}  // namespace wf::adapters
