// wf serve over TLS with client certificates (DESIGN.md, "`wf serve`"): who a client is comes
// from its certificate's CN, what it may do from the deployment config's `clients:`; a
// department may deliver only its own steps' answers. Real sockets, real certificates (made by
// examples/federation/make-certs.sh with the openssl command), a fresh SQLite store per test.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/runtime.hpp"
#include "engine/store.hpp"
#include "server/server.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_database.hpp"

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using nlohmann::json;

constexpr const char* kPermit = R"(
procedure: api-permit
version: 1
agency: town-hall
input:
  properties:
    applicant: {type: string}
steps:
  documents:
    wait: documents
    next: done
  done:
    end: completed
)";

// A step that calls department `records`: with no engine running, its call stays out and the
// step takes the department's answer as a callback.
constexpr const char* kLookup = R"(
procedure: api-lookup
version: 1
agency: town-hall
steps:
  lookup:
    adapter: records
    call: {operation: find}
    save_as: found
    next: done
  done:
    end: completed
)";

// The certificates of one test run: the deployment `town-hall`, clients and a rogue `portal`.
const std::filesystem::path& Certificates() {
  static const std::filesystem::path dir = [] {
    auto path = std::filesystem::temp_directory_path() / ("wf_tls_" + wf::testing::RandomName(10));
    // From the source tree wherever the test runs (ctest runs it there; by hand, anywhere).
    const std::string command = "bash '" WF_SOURCE_DIR "/examples/federation/make-certs.sh' " +
                                path.string() +
                                " portal town-hall records other-department reader stranger" +
                                " > " + path.string() + ".log 2>&1";
    REQUIRE(std::system(command.c_str()) == 0);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(Certificates(), ignored);
      std::filesystem::remove(Certificates().string() + ".log", ignored);
    });
    return path;
  }();
  return dir;
}

std::string Cert(const std::string& name) { return (Certificates() / (name + ".pem")).string(); }
std::string Key(const std::string& name) { return (Certificates() / (name + ".key")).string(); }

wf::engine::Deployment TownHall(const std::string& identity_name = "town-hall") {
  wf::engine::Deployment deployment = wf::engine::Deployment::Empty();
  deployment.identity =
      wf::engine::Identity{identity_name, Cert("town-hall"), Key("town-hall"), Cert("ca"), {}};
  auto client = [&](const std::string& name, std::vector<std::string> may,
                    std::vector<std::string> procedures = {}) {
    wf::engine::Client entry;
    entry.name = name;
    entry.may = std::move(may);
    entry.procedures = std::move(procedures);
    deployment.clients[name] = entry;
  };
  client("portal", {"show", "start"}, {"api-permit", "api-lookup"});
  client("records", {"events"});
  client("other-department", {"events"});
  client("reader", {"show"});
  for (const char* name : {"records", "other-department"}) {
    wf::engine::Department department;
    department.name = name;
    department.adapter = "noop";
    deployment.departments[name] = department;
  }
  return deployment;
}

class TlsServer {
 public:
  explicit TlsServer(wf::testing::TestDatabase& db) : deployment_(TownHall()) {
    auto store = wf::engine::Store::Open(db.url(), 3);
    REQUIRE(store.has_value());
    store_ = std::move(*store);
    runtime_ = std::make_unique<wf::engine::Runtime>(*store_, deployment_);
    REQUIRE(runtime_->Deploy(wf::testing::ProcedureFromYaml(kPermit)).has_value());
    REQUIRE(runtime_->Deploy(wf::testing::ProcedureFromYaml(kLookup)).has_value());
    wf::server::ServeOptions options;
    options.port = 0;
    options.access_log = [this](const std::string& line) {
      std::lock_guard lock(log_mutex_);
      log_.push_back(line);
    };
    server_ = std::make_unique<wf::server::Server>(*runtime_, options);
    REQUIRE(server_->Listen().ok());
    REQUIRE(server_->tls());
    thread_ = std::thread([this] { server_->Run(); });
  }
  ~TlsServer() {
    server_->Stop();
    thread_.join();
  }
  unsigned short port() const { return server_->port(); }
  std::vector<std::string> log() {
    std::lock_guard lock(log_mutex_);
    return log_;
  }

 private:
  wf::engine::Deployment deployment_;
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
};

// One HTTPS request presenting certificate `as` ("": none; "rogue-portal": signed by another
// CA), trusting the test CA for the server.
Reply Call(unsigned short port, const std::string& as, http::verb method, const std::string& target,
           const std::string& body = "", const std::string& idempotency_key = "") {
  asio::io_context io;
  ssl::context context(ssl::context::tls_client);
  context.load_verify_file(Cert("ca"));
  context.set_verify_mode(ssl::verify_peer);
  if (!as.empty()) {
    context.use_certificate_chain_file(Cert(as));
    context.use_private_key_file(Key(as), ssl::context::pem);
  }
  beast::ssl_stream<beast::tcp_stream> stream(io, context);
  beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(60));
  beast::get_lowest_layer(stream).connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  stream.handshake(ssl::stream_base::client);
  http::request<http::string_body> request{method, target, 11};
  request.set(http::field::host, "127.0.0.1");
  if (!idempotency_key.empty()) request.set("Idempotency-Key", idempotency_key);
  request.body() = body;
  request.prepare_payload();
  http::write(stream, request);
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response);
  return {static_cast<int>(response.result_int()), json::parse(response.body(), nullptr, false)};
}

Reply StartPermit(unsigned short port, const std::string& as, const std::string& key) {
  return Call(port, as, http::verb::post, "/v1/procedures/api-permit/cases",
              R"({"applicant": "Nguyen Van A"})", key);
}

}  // namespace

TEST_CASE("serve over TLS refuses a client without a certificate or with a rogue one (401)",
          "[server][tls]") {
  wf::testing::TestDatabase db(wf::engine::Backend::kSqlite);
  TlsServer server(db);
  CHECK(Call(server.port(), "", http::verb::get, "/v1/health").status == 200);
  CHECK(Call(server.port(), "", http::verb::get, "/v1/openapi.json").status == 200);
  Reply none = StartPermit(server.port(), "", "k1");
  CHECK(none.status == 401);
  CHECK(none.body["error"] == "unauthenticated");
  CHECK(none.body["message"].get<std::string>().find("no client certificate") != std::string::npos);
  Reply rogue = StartPermit(server.port(), "rogue-portal", "k2");
  CHECK(rogue.status == 401);
  CHECK(rogue.body["message"].get<std::string>().find("does not verify") != std::string::npos);
  CHECK(Call(server.port(), "", http::verb::get, "/v1/cases/x").status == 401);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases") == 0);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history") == 0);
}

TEST_CASE("serve over TLS refuses an unlisted client and one that may not start (403)",
          "[server][tls]") {
  wf::testing::TestDatabase db(wf::engine::Backend::kSqlite);
  TlsServer server(db);
  Reply stranger = StartPermit(server.port(), "stranger", "k1");
  CHECK(stranger.status == 403);
  CHECK(stranger.body["message"].get<std::string>().find("not listed under `clients:`") !=
        std::string::npos);
  CHECK(StartPermit(server.port(), "reader", "k2").status == 403);
  CHECK(StartPermit(server.port(), "records", "k3").status == 403);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases") == 0);

  Reply created = StartPermit(server.port(), "portal", "k4");
  REQUIRE(created.status == 201);
  const std::string id = created.body["id"];
  CHECK(db.QueryInt("SELECT COUNT(*) FROM cases WHERE started_by = 'portal'") == 1);
  // The portal sees its case; a client with `show` sees only the cases it started.
  Reply shown = Call(server.port(), "portal", http::verb::get, "/v1/cases/" + id);
  CHECK(shown.status == 200);
  CHECK(shown.body["id"] == id);
  CHECK(Call(server.port(), "reader", http::verb::get, "/v1/cases/" + id).status == 403);
  CHECK(Call(server.port(), "records", http::verb::get, "/v1/cases/" + id).status == 403);
  // The access log names the client by its CN.
  bool logged = false;
  for (const std::string& line : server.log()) {
    json entry = json::parse(line, nullptr, false);
    if (entry.is_object() && entry.value("client", "") == "portal" &&
        entry.value("status", 0) == 201) {
      logged = true;
    }
  }
  CHECK(logged);
}

TEST_CASE("serve over TLS lets a department deliver only its own steps' answers", "[server][tls]") {
  wf::testing::TestDatabase db(wf::engine::Backend::kSqlite);
  TlsServer server(db);
  Reply lookup = Call(server.port(), "portal", http::verb::post, "/v1/procedures/api-lookup/cases",
                      "{}", "l1");
  REQUIRE(lookup.status == 201);
  const std::string id = lookup.body["id"];
  const std::string route = "/v1/cases/" + id + "/events/lookup";
  // Another department, and a client that is no department, are refused; nothing is written.
  const long long events = db.QueryInt("SELECT COUNT(*) FROM history");
  Reply other = Call(server.port(), "other-department", http::verb::post, route, R"({"n": 1})");
  CHECK(other.status == 403);
  CHECK(other.body["message"].get<std::string>().find("department records") != std::string::npos);
  CHECK(Call(server.port(), "portal", http::verb::post, route, R"({"n": 1})").status == 403);
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history") == events);
  // The department itself: the step's result, and the hash of the event that records it.
  Reply answer = Call(server.port(), "records", http::verb::post, route, R"({"n": 1})");
  REQUIRE(answer.status == 200);
  CHECK(answer.body["status"] == "completed");
  const std::string hash = answer.body["hash"];
  CHECK(db.QueryInt("SELECT COUNT(*) FROM history WHERE action = 'signal.received' AND hash = '" +
                    hash + "' AND actor = 'records'") == 1);

  // A declared signal needs `events`: the portal has none, a department with it may.
  Reply permit = StartPermit(server.port(), "portal", "p1");
  REQUIRE(permit.status == 201);
  const std::string documents =
      "/v1/cases/" + permit.body["id"].get<std::string>() + "/events/documents";
  CHECK(Call(server.port(), "portal", http::verb::post, documents, "{}").status == 403);
  CHECK(Call(server.port(), "records", http::verb::post, documents, "{}").status == 200);
}

TEST_CASE("serve refuses an identity whose certificate names another deployment", "[server][tls]") {
  wf::testing::TestDatabase db(wf::engine::Backend::kSqlite);
  auto store = wf::engine::Store::Open(db.url(), 2);
  REQUIRE(store.has_value());
  wf::engine::Deployment deployment = TownHall("tay-ninh");
  wf::engine::Runtime runtime(**store, deployment);
  wf::server::Server server(runtime, wf::server::ServeOptions{});
  wf::Status listening = server.Listen();
  CHECK(listening.code() == wf::ErrorCode::kInvalid);
  CHECK(listening.message().find("names 'town-hall'") != std::string::npos);

  deployment.identity->key = Key("portal");
  wf::server::Server mismatched(runtime, wf::server::ServeOptions{});
  CHECK(mismatched.Listen().message().find("does not belong") != std::string::npos);
}
