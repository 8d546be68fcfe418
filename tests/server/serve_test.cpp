// wf serve against real sockets: an in-process server on a free loopback port over a fresh
// store of each kind, called through Beast's synchronous client.
#include <atomic>
#include <chrono>
#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "server/api.hpp"
#include "server/server.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/test_database.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using nlohmann::json;

constexpr const char* kPermit = R"(
procedure: api-permit
version: 1
title: A permit started over the API
agency: town-hall
deadline: 3 working days
dedupe: ${ .applicant.id }
input:
  required: [applicant]
  properties:
    applicant:
      type: object
      required: [id, name]
      properties:
        id: {type: string, pattern: "^[0-9]{4}$"}
        name: {type: string}
steps:
  documents:
    wait: documents
    save_as: documents
    next: done
  done:
    end: completed
)";

// A server over a fresh store, serving on its own thread until the fixture ends.
class LiveServer {
 public:
  explicit LiveServer(wf::testing::TestDatabase& db, wf::server::Limits limits = {}) {
    auto store = wf::engine::Store::Open(db.url(), limits.workers + 1);
    REQUIRE(store.has_value());
    store_ = std::move(*store);
    runtime_ = std::make_unique<wf::engine::Runtime>(*store_, deployment_);
    REQUIRE(runtime_->Deploy(wf::testing::ProcedureFromYaml(kPermit)).has_value());
    wf::server::ServeOptions options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.limits = limits;
    options.access_log = [this](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(line);
    };
    server_ = std::make_unique<wf::server::Server>(*runtime_, options);
    REQUIRE(server_->Listen().ok());
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~LiveServer() {
    server_->Stop();
    thread_.join();
  }

  unsigned short port() const { return server_->port(); }
  std::size_t starts_waiting() const { return server_->StartsWaiting(); }
  wf::engine::Store& store() { return *store_; }
  std::vector<std::string> log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

 private:
  wf::engine::Deployment deployment_ = wf::engine::Deployment::Empty();
  std::unique_ptr<wf::engine::Store> store_;
  std::unique_ptr<wf::engine::Runtime> runtime_;
  std::unique_ptr<wf::server::Server> server_;
  std::thread thread_;
  std::mutex log_mutex_;
  std::vector<std::string> log_;
};

struct Reply {
  int status = 0;
  json body;
  std::string text;
};

// One request on a connection of its own.
Reply Call(unsigned short port, http::verb method, const std::string& target,
           const std::string& body = "", const std::string& idempotency_key = "") {
  asio::io_context io;
  beast::tcp_stream stream(io);
  stream.expires_after(std::chrono::seconds(60));
  stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!idempotency_key.empty()) request.set("Idempotency-Key", idempotency_key);
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = body;
  }
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  Reply reply;
  reply.status = static_cast<int>(response.result_int());
  reply.text = response.body();
  reply.body = json::parse(reply.text, nullptr, false);
  return reply;
}

Reply Start(unsigned short port, const json& data, const std::string& key) {
  return Call(port, http::verb::post, "/v1/procedures/api-permit/cases", data.dump(), key);
}

json Applicant(const std::string& id) {
  return {{"applicant", {{"id", id}, {"name", "Nguyen Van A"}}}};
}

long long CaseCount(wf::testing::TestDatabase& db) {
  return db.QueryInt("SELECT COUNT(*) FROM cases");
}

// Sends raw bytes and reads until the server closes; the whole answer as text.
std::string RawExchange(unsigned short port, const std::string& bytes) {
  asio::io_context io;
  tcp::socket socket(io);
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(socket, asio::buffer(bytes));
  std::string answer;
  boost::system::error_code ec;
  std::array<char, 4096> chunk;
  while (!ec) {
    std::size_t n = socket.read_some(asio::buffer(chunk), ec);
    answer.append(chunk.data(), n);
  }
  return answer;
}

int StatusOf(const std::string& raw) {
  // "HTTP/1.1 408 Request Timeout"
  if (raw.size() < 12) return 0;
  return std::stoi(raw.substr(9, 3));
}

}  // namespace

WF_STORE_TEST_CASE("serve answers health and its OpenAPI document lists every route", "[server]",
                   db) {
  LiveServer server(db);
  Reply health = Call(server.port(), http::verb::get, "/v1/health");
  CHECK(health.status == 200);
  CHECK(health.body["status"] == "ok");
  Reply doc = Call(server.port(), http::verb::get, "/v1/openapi.json");
  REQUIRE(doc.status == 200);
  CHECK(doc.body["openapi"].get<std::string>().rfind("3.", 0) == 0);
  for (const char* path :
       {"/v1/procedures/{name}/cases", "/v1/cases/{id}", "/v1/cases/{id}/history",
        "/v1/cases/{id}/events/{event}", "/v1/health", "/v1/openapi.json"}) {
    CHECK(doc.body["paths"].contains(path));
  }
  // Every answer the real server gives below is one the document lists for its route.
  const json& paths = doc.body["paths"];
  auto listed = [&](const char* path, const char* method, int status) {
    return paths[path][method]["responses"].contains(std::to_string(status));
  };
  CHECK(listed("/v1/health", "get", health.status));
  CHECK(listed("/v1/openapi.json", "get", doc.status));
  Reply created = Start(server.port(), Applicant("1234"), "key-1");
  CHECK(listed("/v1/procedures/{name}/cases", "post", created.status));
  CHECK(listed("/v1/procedures/{name}/cases", "post",
               Start(server.port(), Applicant("1234"), "key-1").status));
  CHECK(listed("/v1/procedures/{name}/cases", "post",
               Start(server.port(), Applicant("1234"), "key-2").status));
  CHECK(listed("/v1/procedures/{name}/cases", "post",
               Start(server.port(), Applicant("x"), "key-3").status));
  const std::string id = created.body["id"];
  CHECK(listed("/v1/cases/{id}", "get",
               Call(server.port(), http::verb::get, "/v1/cases/" + id).status));
  CHECK(listed("/v1/cases/{id}", "get",
               Call(server.port(), http::verb::get, "/v1/cases/nope").status));
  CHECK(listed("/v1/cases/{id}/events/{event}", "post",
               Call(server.port(), http::verb::post, "/v1/cases/" + id + "/events/other").status));
  CHECK(listed("/v1/cases/{id}/events/{event}", "post",
               Call(server.port(), http::verb::post, "/v1/cases/" + id + "/events/documents",
                    R"({"pages": 3})")
                   .status));
  Reply history = Call(server.port(), http::verb::get, "/v1/cases/" + id + "/history");
  CHECK(listed("/v1/cases/{id}/history", "get", history.status));
  CHECK(history.status == 200);
  CHECK(history.body["events"].size() >= 2);
  CHECK(history.body["events"][0]["action"] == "case.started");
  CHECK(listed("/v1/cases/{id}/history", "get",
               Call(server.port(), http::verb::get, "/v1/cases/nope/history").status));
  CHECK(Call(server.port(), http::verb::get, "/v2/anything").status == 404);
  CHECK(Call(server.port(), http::verb::delete_, "/v1/health").status == 405);
}

WF_STORE_TEST_CASE("serve starts a case once per Idempotency-Key", "[server]", db) {
  LiveServer server(db);
  Reply first = Start(server.port(), Applicant("1234"), "application-7");
  REQUIRE(first.status == 201);
  const std::string id = first.body["id"];
  CHECK(!id.empty());
  Reply again = Start(server.port(), Applicant("1234"), "application-7");
  CHECK(again.status == 200);
  CHECK(again.body["id"] == id);
  CHECK(CaseCount(db) == 1);
  // The key is durable and shared: a second server on the same store answers it the same way.
  LiveServer other(db);
  Reply elsewhere = Start(other.port(), Applicant("1234"), "application-7");
  CHECK(elsewhere.status == 200);
  CHECK(elsewhere.body["id"] == id);
  // The same key with other data is refused, starting nothing.
  Reply reused = Start(server.port(), Applicant("9999"), "application-7");
  CHECK(reused.status == 422);
  CHECK(CaseCount(db) == 1);
  // Without a key: 400, nothing written.
  CHECK(Start(server.port(), Applicant("5555"), "").status == 400);
  CHECK(CaseCount(db) == 1);
  // A repeat is answered by its key even when its data would not start a case any more: a newer
  // version of the procedure (without the dedupe key, which would refuse the repeat first)
  // refuses the applicant's id.
  {
    auto store = wf::engine::Store::Open(db.url(), 1);
    REQUIRE(store.has_value());
    wf::engine::Deployment deployment = wf::engine::Deployment::Empty();
    wf::engine::Runtime runtime(**store, deployment);
    std::string stricter = kPermit;
    stricter.replace(stricter.find("version: 1"), 10, "version: 2");
    stricter.replace(stricter.find("{4}"), 3, "{6}");
    const size_t dedupe = stricter.find("dedupe:");
    stricter.erase(dedupe, stricter.find('\n', dedupe) + 1 - dedupe);
    REQUIRE(runtime.Deploy(wf::testing::ProcedureFromYaml(stricter.c_str())).has_value());
  }
  CHECK(Start(server.port(), Applicant("5678"), "application-8").status == 422);
  Reply repeated = Start(server.port(), Applicant("1234"), "application-7");
  CHECK(repeated.status == 200);
  CHECK(repeated.body["id"] == id);
  CHECK(CaseCount(db) == 1);
}

WF_STORE_TEST_CASE("serve starts one case when the same key races on two servers", "[server]", db) {
  LiveServer one(db);
  LiveServer two(db);
  std::vector<Reply> replies(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < replies.size(); ++i) {
    threads.emplace_back([&, i] {
      replies[i] = Start(i % 2 ? one.port() : two.port(), Applicant("4321"), "racing-key");
    });
  }
  for (auto& t : threads) t.join();
  int created = 0;
  for (const auto& reply : replies) {
    REQUIRE((reply.status == 201 || reply.status == 200));
    CHECK(reply.body["id"] == replies[0].body["id"]);
    if (reply.status == 201) ++created;
  }
  CHECK(created == 1);
  CHECK(CaseCount(db) == 1);
}

WF_STORE_TEST_CASE("serve answers starts that arrive together, each on its own", "[server]", db) {
  wf::server::Limits limits;
  limits.workers = 1;  // one committer: starts that arrive while it commits wait and go together
  LiveServer server(db, limits);
  constexpr size_t kClients = 24;
  auto refused = [](size_t i) { return i % 4 == 3; };  // an id that is not four digits
  auto send_all = [&] {
    std::vector<Reply> replies(kClients);
    std::vector<std::thread> threads;
    for (size_t i = 0; i < kClients; ++i) {
      threads.emplace_back([&, i] {
        const std::string id = refused(i) ? "12" : std::to_string(1000 + i);
        replies[i] = Start(server.port(), Applicant(id), "together-" + std::to_string(i));
      });
    }
    for (auto& t : threads) t.join();
    return replies;
  };
  std::vector<Reply> first = send_all();
  for (size_t i = 0; i < kClients; ++i) {
    INFO(i << ": " << first[i].text);
    CHECK(first[i].status == (refused(i) ? 422 : 201));
  }
  CHECK(CaseCount(db) == 18);
  // The same requests again: each answered with its own case, nothing started.
  std::vector<Reply> again = send_all();
  for (size_t i = 0; i < kClients; ++i) {
    INFO(i << ": " << again[i].text);
    CHECK(again[i].status == (refused(i) ? 422 : 200));
    if (!refused(i)) CHECK(again[i].body["id"] == first[i].body["id"]);
  }
  CHECK(CaseCount(db) == 18);
  // Each start logged once under its route (a line is written just after its answer: polled).
  auto logged = [&] {
    int count = 0;
    for (const std::string& line : server.log()) {
      count += json::parse(line)["route"] == "/v1/procedures/{name}/cases";
    }
    return count;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (logged() < 2 * static_cast<int>(kClients) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(logged() == 2 * static_cast<int>(kClients));
}

WF_POSTGRES_TEST_CASE("serve commits the starts that arrive while its committers are busy as one",
                      "[server]", db) {
  wf::server::Limits limits;
  limits.workers = 1;
  LiveServer server(db, limits);
  // The one committer's first start waits for this lock on the idempotency keys it writes.
  db.Execute("BEGIN");
  db.Execute("LOCK TABLE idempotency_keys IN SHARE MODE");
  constexpr size_t kClients = 6;
  std::vector<Reply> replies(kClients);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      replies[i] =
          Start(server.port(), Applicant(std::to_string(3000 + i)), "busy-" + std::to_string(i));
    });
  }
  // The server still takes the others in meanwhile: they wait for the committer together.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (server.starts_waiting() < kClients - 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(server.starts_waiting() == kClients - 1);
  db.Execute("COMMIT");
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < kClients; ++i) {
    INFO(i << ": " << replies[i].text);
    CHECK(replies[i].status == 201);
  }
  CHECK(CaseCount(db) == static_cast<long long>(kClients));
  // The first start's transaction, and one for the five that waited.
  CHECK(db.QueryInt("SELECT COUNT(DISTINCT xmin::text) FROM cases") == 2);
}

WF_STORE_TEST_CASE("serve refuses invalid data, duplicates, unknown procedures and bad JSON",
                   "[server]", db) {
  LiveServer server(db);
  // Every error, with its JSON path.
  Reply invalid = Start(server.port(), {{"applicant", {{"id", "12"}}}}, "k1");
  CHECK(invalid.status == 422);
  CHECK(invalid.body["error"] == "invalid");
  INFO(invalid.text);
  CHECK(invalid.body["errors"].size() >= 2);
  CHECK(invalid.text.find("$.applicant.id") != std::string::npos);
  CHECK(invalid.text.find("name") != std::string::npos);
  // A duplicate application names the open case.
  Reply first = Start(server.port(), Applicant("1234"), "k2");
  REQUIRE(first.status == 201);
  Reply duplicate = Start(server.port(), Applicant("1234"), "k3");
  CHECK(duplicate.status == 409);
  CHECK(duplicate.text.find(first.body["id"].get<std::string>()) != std::string::npos);
  CHECK(duplicate.body["case"] == first.body["id"]);
  // No such procedure.
  CHECK(Call(server.port(), http::verb::post, "/v1/procedures/none/cases", "{}", "k4").status ==
        404);
  // Not JSON, and JSON that is not an object.
  Reply bad = Call(server.port(), http::verb::post, "/v1/procedures/api-permit/cases",
                   "{\"applicant\": ", "k5");
  CHECK(bad.status == 400);
  CHECK(bad.body["error"] == "usage");
  CHECK(Call(server.port(), http::verb::post, "/v1/procedures/api-permit/cases", "[1, 2]", "k6")
            .status == 422);
  CHECK(CaseCount(db) == 1);
}

WF_STORE_TEST_CASE("serve shows a case as wf show --json and delivers its signal", "[server]", db) {
  LiveServer server(db);
  Reply created = Start(server.port(), Applicant("2468"), "k1");
  REQUIRE(created.status == 201);
  const std::string id = created.body["id"];
  Reply shown = Call(server.port(), http::verb::get, "/v1/cases/" + id);
  REQUIRE(shown.status == 200);
  for (const char* field :
       {"id", "procedure", "version", "status", "data", "tasks", "incidents", "deadline"}) {
    CHECK(shown.body.contains(field));
  }
  CHECK(shown.body["id"] == id);
  CHECK(shown.body["status"] == "open");
  CHECK(shown.body["current_steps"] == json::array({"documents"}));
  CHECK(Call(server.port(), http::verb::get, "/v1/cases/no-such-case").status == 404);
  // An event nothing waits for: 409, the case unchanged.
  CHECK(Call(server.port(), http::verb::post, "/v1/cases/" + id + "/events/payment").status == 409);
  CHECK(Call(server.port(), http::verb::post, "/v1/cases/no-such-case/events/documents").status ==
        404);
  CHECK(Call(server.port(), http::verb::post, "/v1/cases/" + id + "/events/documents", "{oops")
            .status == 400);
  Reply delivered = Call(server.port(), http::verb::post, "/v1/cases/" + id + "/events/documents",
                         R"({"pages": 3})");
  CHECK(delivered.status == 200);
  CHECK(delivered.body["status"] == "completed");
  Reply after = Call(server.port(), http::verb::get, "/v1/cases/" + id);
  CHECK(after.body["status"] == "completed");
  CHECK(after.body["data"]["documents"]["pages"] == 3);
}

WF_STORE_TEST_CASE("serve refuses an oversized body with 413 and writes nothing", "[server]", db) {
  wf::server::Limits limits;
  limits.max_body_bytes = 1024;
  LiveServer server(db, limits);
  json big = Applicant("1357");
  big["filler"] = std::string(4096, 'x');
  Reply reply = Start(server.port(), big, "big");
  CHECK(reply.status == 413);
  CHECK(reply.body["error"] == "too_large");
  CHECK(CaseCount(db) == 0);
  // A header claiming more than the limit is refused before the body is read.
  std::string raw = RawExchange(server.port(),
                                "POST /v1/procedures/api-permit/cases HTTP/1.1\r\nHost: x\r\n"
                                "Idempotency-Key: k\r\nContent-Length: 99999999\r\n\r\n{");
  CHECK(StatusOf(raw) == 413);
  CHECK(Call(server.port(), http::verb::get, "/v1/health").status == 200);
}

WF_STORE_TEST_CASE("a slow client gets 408 and does not hold the server", "[server]", db) {
  wf::server::Limits limits;
  limits.header_timeout = std::chrono::milliseconds(300);
  limits.body_timeout = std::chrono::milliseconds(300);
  LiveServer server(db, limits);
  asio::io_context io;
  // Slowloris: a header begun and never finished, on several connections.
  std::vector<std::unique_ptr<tcp::socket>> slow;
  for (int i = 0; i < 4; ++i) {
    auto socket = std::make_unique<tcp::socket>(io);
    socket->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    asio::write(*socket, asio::buffer(std::string("GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Slow")));
    slow.push_back(std::move(socket));
  }
  // Meanwhile others are served.
  CHECK(Call(server.port(), http::verb::get, "/v1/health").status == 200);
  // Each slow one is answered 408 and closed: reading blocks until the server acts.
  for (auto& socket : slow) {
    std::string answer;
    boost::system::error_code ec;
    std::array<char, 4096> chunk;
    while (!ec) {
      std::size_t n = socket->read_some(asio::buffer(chunk), ec);
      answer.append(chunk.data(), n);
    }
    CHECK(StatusOf(answer) == 408);
  }
  // A body that never completes: 408 too, nothing written.
  std::string raw = RawExchange(server.port(),
                                "POST /v1/procedures/api-permit/cases HTTP/1.1\r\nHost: x\r\n"
                                "Idempotency-Key: k\r\nContent-Length: 100\r\n\r\n{\"a\":");
  CHECK(StatusOf(raw) == 408);
  CHECK(CaseCount(db) == 0);
  CHECK(Call(server.port(), http::verb::get, "/v1/health").status == 200);
}

WF_STORE_TEST_CASE("serve answers 503 beyond its connection limit", "[server]", db) {
  wf::server::Limits limits;
  limits.max_connections = 2;
  LiveServer server(db, limits);
  asio::io_context io;
  std::vector<std::unique_ptr<tcp::socket>> held;
  for (int i = 0; i < 2; ++i) {
    auto socket = std::make_unique<tcp::socket>(io);
    socket->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server.port()));
    held.push_back(std::move(socket));
  }
  // The held connections are accepted in order; poll until the third is turned away.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  int status = 0;
  while (status != 503 && std::chrono::steady_clock::now() < deadline) {
    status = Call(server.port(), http::verb::get, "/v1/health").status;
  }
  CHECK(status == 503);
  held.clear();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (status != 200 && std::chrono::steady_clock::now() < deadline) {
    status = Call(server.port(), http::verb::get, "/v1/health").status;
  }
  CHECK(status == 200);
}

WF_STORE_TEST_CASE("serve's access log holds no personal value", "[server]", db) {
  LiveServer server(db);
  Reply created = Start(server.port(), Applicant("8642"), "k1");
  REQUIRE(created.status == 201);
  CHECK(Call(server.port(), http::verb::get, "/v1/cases/" + created.body["id"].get<std::string>())
            .status == 200);
  // A line is written once its answer is sent: poll until both are there.
  std::vector<std::string> log = server.log();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (log.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
    log = server.log();
  }
  REQUIRE(log.size() == 2);
  for (const auto& line : log) {
    json entry = json::parse(line);
    for (const char* field : {"at", "remote", "method", "route", "status", "ms"}) {
      CHECK(entry.contains(field));
    }
    // The time, the client's port and the numbers (duration, sizes) are digits that may hold
    // "8642" by chance (a client port of 58642): the citizen id is looked for in the rest.
    json rest = entry;
    for (const char* field : {"at", "remote", "ms", "bytes_in", "bytes_out", "status"}) {
      rest.erase(field);
    }
    CHECK(rest.dump().find("8642") == std::string::npos);
    CHECK(line.find("Nguyen") == std::string::npos);
  }
  CHECK(json::parse(log[0])["route"] == "/v1/procedures/{name}/cases");
  CHECK(json::parse(log[1])["route"] == "/v1/cases/{id}");
}

TEST_CASE("serve listens on loopback only without an identity", "[server]") {
  CHECK(wf::server::IsLoopback("127.0.0.1"));
  CHECK(wf::server::IsLoopback("::1"));
  CHECK(wf::server::IsLoopback("localhost"));
  CHECK_FALSE(wf::server::IsLoopback("0.0.0.0"));
  CHECK_FALSE(wf::server::IsLoopback("192.168.1.1"));
  auto parsed = wf::server::ParseListen("127.0.0.1:8443");
  REQUIRE(parsed.has_value());
  CHECK(parsed->second == 8443);
  CHECK_FALSE(wf::server::ParseListen("127.0.0.1").has_value());
  CHECK_FALSE(wf::server::ParseListen("127.0.0.1:99999").has_value());
  CHECK(wf::server::HttpStatusOf(wf::ErrorCode::kInvalid) == 422);
  CHECK(wf::server::HttpStatusOf(wf::ErrorCode::kConflict) == 409);
  CHECK(wf::server::HttpStatusOf(wf::ErrorCode::kNotPermitted) == 403);
  CHECK(wf::server::HttpStatusOf(wf::ErrorCode::kNotFound) == 404);
}
