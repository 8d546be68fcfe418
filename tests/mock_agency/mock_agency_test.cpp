// The mock agency as the demo and the fault tests use it: the real binary on a free loopback
// port, driven by a small Beast client.

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "adapters/asio.hpp"
#include "tests/support/temp_dir.hpp"

extern char** environ;

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using nlohmann::json;
using namespace std::chrono_literals;

// One call to the mock agency.
struct Call {
  std::string method = "POST";
  std::string target;
  std::string body = "{}";
  std::string key;  // Idempotency-Key, none when empty
  std::string case_id;
  std::string step;
};

struct Reply {
  beast::error_code error;  // a transport failure, e.g. beast::error::timeout
  int status = 0;
  std::string body;
  bool replayed = false;  // header Idempotent-Replayed

  json Json() const { return json::parse(body); }
};

asio::awaitable<Reply> Exchange(uint16_t port, Call call, std::chrono::milliseconds timeout) {
  Reply reply;
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  stream.expires_after(timeout);
  co_await stream.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                                asio::redirect_error(asio::use_awaitable, reply.error));
  if (reply.error) co_return reply;
  http::request<http::string_body> request{http::string_to_verb(call.method), call.target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.set(http::field::content_type, "application/json");
  if (!call.key.empty()) request.set("Idempotency-Key", call.key);
  if (!call.case_id.empty()) request.set("X-Wf-Case", call.case_id);
  if (!call.step.empty()) request.set("X-Wf-Step", call.step);
  if (call.method == "POST") request.body() = call.body;
  request.prepare_payload();
  co_await http::async_write(stream, request,
                             asio::redirect_error(asio::use_awaitable, reply.error));
  if (reply.error) co_return reply;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  co_await http::async_read(stream, buffer, response,
                            asio::redirect_error(asio::use_awaitable, reply.error));
  if (reply.error) co_return reply;
  reply.status = static_cast<int>(response.result_int());
  reply.body = response.body();
  reply.replayed = response["Idempotent-Replayed"] == "true";
  co_return reply;
}

// Runs one exchange to completion.
Reply Send(uint16_t port, Call call, std::chrono::milliseconds timeout = 10s) {
  asio::io_context io;
  Reply reply;
  asio::co_spawn(io, Exchange(port, std::move(call), timeout),
                 [&reply](std::exception_ptr error, Reply result) {
                   if (error) std::rethrow_exception(error);
                   reply = std::move(result);
                 });
  io.run();
  return reply;
}

// The binary, started on a free port in a scratch folder of its own; SIGTERM at the end.
class MockAgency {
 public:
  explicit MockAgency(std::vector<std::string> flags = {}) {
    char pattern[] = "/tmp/wf-mock-test.XXXXXX";
    REQUIRE(mkdtemp(pattern) != nullptr);
    dir_ = pattern;
    const std::string port_file = dir_ + "/port";
    std::vector<std::string> args = {WF_MOCK_AGENCY_BIN, "--port",  "0",
                                     "--port-file",      port_file, "--quiet"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);

    int out[2];
    REQUIRE(pipe2(out, O_CLOEXEC) == 0);
    const std::string log = dir_ + "/stderr.log";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(),
                                     O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int error = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    REQUIRE(error == 0);

    // The server prints its line once it listens (and has written the port file).
    std::string line;
    char c;
    while (read(out[0], &c, 1) == 1 && c != '\n') line += c;
    close(out[0]);
    INFO("stderr: " << Log());
    REQUIRE_THAT(line, Catch::Matchers::StartsWith("wf-mock-agency listening on 127.0.0.1:"));
    std::ifstream in(port_file);
    int port = 0;
    in >> port;
    REQUIRE(port > 0);
    REQUIRE(line == "wf-mock-agency listening on 127.0.0.1:" + std::to_string(port));
    port_ = static_cast<uint16_t>(port);
  }

  ~MockAgency() {
    Stop();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  // Sends SIGTERM and returns the exit status (-1 if it did not exit normally).
  int Stop() {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return exit_status_;
  }

  uint16_t port() const { return port_; }
  const std::string& dir() const { return dir_; }

  Reply Post(const std::string& target, const json& body, const std::string& key = "") const {
    Call call;
    call.target = target;
    call.body = body.dump();
    call.key = key;
    return Send(port_, call);
  }
  json Get(const std::string& target) const {
    Call call;
    call.method = "GET";
    call.target = target;
    const Reply reply = Send(port_, call);
    REQUIRE(reply.status == 200);
    return reply.Json();
  }
  json Stats() const { return Get("/_stats"); }
  std::string Log() const {
    std::ifstream in(dir_ + "/stderr.log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  }

 private:
  std::string dir_;
  pid_t pid_ = -1;
  int exit_status_ = -1;
  uint16_t port_ = 0;
};

// Posts and requires a 200 with a JSON object.
json Answer(const MockAgency& mock, const std::string& target, const json& body,
            const std::string& key = "") {
  const Reply reply = mock.Post(target, body, key);
  INFO(target << " answered " << reply.status << ": " << reply.body);
  REQUIRE(reply.status == 200);
  json answer = reply.Json();
  REQUIRE(answer.is_object());
  return answer;
}

bool Matches(const json& value, const char* pattern) {
  return value.is_string() && std::regex_match(value.get<std::string>(), std::regex(pattern));
}

}  // namespace

TEST_CASE(
    "the mock agency answers every department's operations with the fields the "
    "procedures read",
    "[mock_agency]") {
  MockAgency mock;

  SECTION("population-db reads a citizen from the id") {
    const json citizen =
        Answer(mock, "/population-db/get_citizen", {{"citizen_id", "072195001234"}});
    CHECK(citizen["citizen_id"] == "072195001234");
    CHECK(citizen["sex"] == "female");  // 4th digit 1: a woman born in the 1900s
    CHECK(Matches(citizen["birth_date"], "1995-[0-9]{2}-[0-9]{2}"));
    CHECK(Matches(citizen["full_name"], ".+ .+ .+"));
    CHECK(Matches(citizen["permanent_address"], ".*tỉnh Tây Ninh"));
    CHECK(citizen["status"] == "alive");
    CHECK(mock.Post("/population-db/get_citizen", {{"citizen_id", "1234"}}).status == 422);
  }

  SECTION("civil-status-db registers births and deaths with numbered certificates") {
    const json child = {
        {"full_name", "Trần Minh Khôi"}, {"birth_date", "2026-03-02"}, {"sex", "male"}};
    const json first = Answer(mock, "/civil-status-db/register_birth",
                              {{"child", child}, {"mother_citizen_id", "072195001234"}}, "b1");
    CHECK(first["certificate_no"] == "KS-2026-000001");
    CHECK(first["personal_id"] == "072226000001");
    const json second = Answer(mock, "/civil-status-db/register_birth",
                               {{"child", child}, {"mother_citizen_id", "072195001234"}}, "b2");
    CHECK(second["certificate_no"] == "KS-2026-000002");
    CHECK(second["personal_id"] == "072226000002");

    const json death = Answer(mock, "/civil-status-db/register_death",
                              {{"citizen_id", "072048000731"}, {"date_of_death", "2026-04-06"}});
    CHECK(death["certificate_no"] == "KT-2026-000001");
    // The population database now knows of the death.
    CHECK(Answer(mock, "/population-db/get_citizen", {{"citizen_id", "072048000731"}})["status"] ==
          "deceased");
  }

  SECTION("police-residence registers and deregisters") {
    CHECK(Answer(mock, "/police-residence/register_newborn",
                 {{"personal_id", "072226000418"}, {"address", "Số 12"}})["status"] ==
          "registered");
    CHECK(Answer(mock, "/police-residence/deregister_residence",
                 {{"citizen_id", "072048000731"}, {"reason", "death"}})["status"] ==
          "deregistered");
  }

  SECTION("social-insurance issues cards and reads contribution histories") {
    const json card = Answer(mock, "/social-insurance/issue_card",
                             {{"personal_id", "072226000418"}, {"birth_date", "2026-03-02"}});
    CHECK(card["card_no"] == "TE1722226000418");
    CHECK(card["valid_until"] == "2032-03-02");

    // A man born in 1958 with 278 months of contributions draws a pension.
    const json history =
        Answer(mock, "/social-insurance/get_insurance_history", {{"citizen_id", "079058001962"}});
    CHECK(history["pensioner"] == true);
    CHECK(history["monthly_benefit"] == false);
    CHECK(history["compulsory_months"] == 278);
    // Someone born in 2000 has no pension and at most 8 years of contributions.
    const json young =
        Answer(mock, "/social-insurance/get_insurance_history", {{"citizen_id", "079200000400"}});
    CHECK(young["pensioner"] == false);
    CHECK(young["compulsory_months"].get<int>() <= 96);

    CHECK(Answer(mock, "/social-insurance/grant_survivor_benefits",
                 {{"citizen_id", "079058001962"},
                  {"beneficiary_citizen_id", "079162004410"},
                  {"amount_vnd", 10000000}})["status"] == "approved");
  }

  SECTION("dolisa names the beneficiary category or null") {
    auto category = [&](const char* id) {
      return Answer(mock, "/dolisa/lookup_beneficiary", {{"citizen_id", id}})["category"];
    };
    CHECK(category("079058001962").is_null());
    CHECK(category("079058000007") == "person_with_merit");  // serial divisible by 7
    CHECK(category("001040000003") == "social_welfare");     // 86 years old
    CHECK(Answer(mock, "/dolisa/grant_funeral_support",
                 {{"citizen_id", "001040000003"}, {"category", "social_welfare"}})["status"] ==
          "approved");
  }

  SECTION("business-registry and tax-office decide the S&T enterprise examples") {
    const json established =
        Answer(mock, "/business-registry/lookup_enterprise", {{"enterprise_code", "3900456789"}});
    CHECK(established["status"] == "active");
    CHECK(Matches(established["founded_on"], "20[0-9]{2}-[0-9]{2}-[0-9]{2}"));
    CHECK(established["founded_on"].get<std::string>() < "2021-03-09");
    CHECK_FALSE(established["name"].get<std::string>().empty());
    // The startup example is dated under 5 years before its filing date (2026-06-15).
    const json startup =
        Answer(mock, "/business-registry/lookup_enterprise", {{"enterprise_code", "3902223344"}});
    CHECK(startup["founded_on"].get<std::string>() > "2021-06-15");
    CHECK(Answer(mock, "/business-registry/lookup_enterprise",
                 {{"enterprise_code", "3900120000"}})["status"] == "dissolved");

    // The established example's declared S&T revenue (18.6 billion) is at least 30%.
    const json revenue =
        Answer(mock, "/tax-office/get_revenue", {{"tax_code", "3900456789"}, {"year", 2025}});
    const double total = revenue["total_revenue_vnd"].get<double>();
    CHECK(total > 0);
    CHECK(18600000000.0 / total >= 0.3);
    CHECK(Answer(mock, "/tax-office/get_tax_status", {{"tax_code", "3901234567"}})["status"] ==
          "active");
    CHECK(mock.Post("/tax-office/get_revenue", {{"tax_code", "3900456789"}}).status == 422);
  }

  SECTION("payment-gateway, dost-records, most-portal and procedure-portal") {
    CHECK(Answer(mock, "/payment-gateway/request_payment",
                 {{"payer_enterprise_code", "3901234567"},
                  {"amount_vnd", 3000000}})["amount_vnd"] == 3000000);
    CHECK(Matches(Answer(mock, "/dost-records/issue_certificate",
                         {{"kind", "st_enterprise"}})["certificate_no"],
                  "GCN-KHCN-[0-9]{6}"));
    CHECK(Matches(Answer(mock, "/dost-records/issue_certificate",
                         {{"kind", "technology_transfer_registration"}})["certificate_no"],
                  "GCN-CGCN-[0-9]{6}"));
    CHECK(mock.Post("/dost-records/issue_certificate", {{"kind", "other"}}).status == 422);
    CHECK(Answer(mock, "/most-portal/forward_dossier",
                 {{"contract_number", "SGB-TNX/2026/02"}})["status"] == "received");
    for (const char* operation : {"send_appointment", "request_supplement", "notify_applicant",
                                  "notify_refusal", "return_result"}) {
      INFO(operation);
      CHECK(Answer(mock, std::string("/procedure-portal/") + operation,
                   {{"citizen_id", "072195001234"}})
                .contains("status"));
    }
  }
}

TEST_CASE("a repeated idempotency key replays the first answer and is applied once",
          "[mock_agency][idempotency]") {
  MockAgency mock({"--threads", "2"});
  const json body = {{"child", {{"full_name", "An"}, {"birth_date", "2026-01-28"}}},
                     {"mother_citizen_id", "079196003321"}};
  Call call;
  call.target = "/civil-status-db/register_birth";
  call.body = body.dump();
  call.key = "case-1/register_birth/1";
  call.case_id = "case-1";
  call.step = "register_birth";
  const Reply first = Send(mock.port(), call);
  const Reply again = Send(mock.port(), call);
  REQUIRE(first.status == 200);
  CHECK_FALSE(first.replayed);
  CHECK(again.status == 200);
  CHECK(again.replayed);
  CHECK(again.body == first.body);
  // The replay took no number: the next key gets the second certificate.
  CHECK(Answer(mock, "/civil-status-db/register_birth", body,
               "case-2/register_birth/1")["certificate_no"] == "KS-2026-000002");

  const json stats = mock.Stats();
  CHECK(stats["requests"] == 3);
  CHECK(stats["applied"] == 2);
  CHECK(stats["keys"] == 2);
  CHECK(stats["replays"] == 1);
  CHECK(stats["conflicts"] == 0);
  CHECK(stats["departments"]["civil-status-db"]["operations"]["register_birth"]["replays"] == 1);

  const json ledger = mock.Get("/_ledger");
  REQUIRE(ledger.size() == 2);
  CHECK(ledger[0]["key"] == "case-1/register_birth/1");
  CHECK(ledger[0]["department"] == "civil-status-db");
  CHECK(ledger[0]["operation"] == "register_birth");
  CHECK(ledger[0]["case"] == "case-1");
  CHECK(ledger[0]["step"] == "register_birth");
  CHECK(ledger[0]["replays"] == 1);

  SECTION("the same key with another body is counted as a conflict") {
    mock.Post("/civil-status-db/register_birth", {{"mother_citizen_id", "079196003321"}},
              "case-1/register_birth/1");
    CHECK(mock.Stats()["conflicts"] == 1);
  }
}

TEST_CASE("fail_first answers 503 for the first tries of each key, then succeeds",
          "[mock_agency][faults]") {
  MockAgency mock({"--fault", "tax-office:fail_first=2"});
  const json body = {{"tax_code", "3901234567"}};
  CHECK(mock.Post("/tax-office/get_tax_status", body, "k1").status == 503);
  CHECK(mock.Post("/tax-office/get_tax_status", body, "k1").status == 503);
  CHECK(mock.Post("/tax-office/get_tax_status", body, "k1").status == 200);
  CHECK(mock.Post("/tax-office/get_tax_status", body, "k2").status == 503);
  // Other departments are not affected.
  CHECK(mock.Post("/business-registry/lookup_enterprise", {{"enterprise_code", "3901234567"}}, "k3")
            .status == 200);
  const json stats = mock.Stats();
  CHECK(stats["departments"]["tax-office"]["faults"] == 3);
  CHECK(stats["departments"]["tax-office"]["applied"] == 1);
}

TEST_CASE("failure_rate fails a seeded, repeatable share of the tries", "[mock_agency][faults]") {
  auto failures = [](const std::string& rate, const std::string& seed) {
    MockAgency mock({"--failure-rate", rate, "--seed", seed});
    std::string pattern;
    for (int i = 0; i < 40; ++i) {
      const Reply reply = mock.Post("/population-db/get_citizen", {{"citizen_id", "072195001234"}},
                                    "key-" + std::to_string(i));
      REQUIRE((reply.status == 200 || reply.status == 503));
      pattern += reply.status == 503 ? 'x' : '.';
    }
    return pattern;
  };
  const std::string half = failures("0.5", "42");
  const auto failed = std::count(half.begin(), half.end(), 'x');
  CHECK(failed > 5);
  CHECK(failed < 35);
  CHECK(failures("0.5", "42") == half);
  CHECK(failures("0.5", "43") != half);
  CHECK(failures("1", "42") == std::string(40, 'x'));
  CHECK(failures("0", "42") == std::string(40, '.'));
}

TEST_CASE("a slow department does not hold up a call to another one", "[mock_agency][faults]") {
  MockAgency mock({"--threads", "1"});
  REQUIRE(mock.Post("/_faults", {{"department", "population-db"}, {"latency_ms", 30000}}).status ==
          200);
  asio::io_context io;
  std::vector<std::string> finished;
  Call slow;
  slow.target = "/population-db/get_citizen";
  slow.body = json{{"citizen_id", "072195001234"}}.dump();
  asio::co_spawn(io, Exchange(mock.port(), slow, 60s),
                 [&finished](std::exception_ptr, Reply) { finished.push_back("slow"); });
  // Wait (by asking, not sleeping) until the slow call has reached the agency.
  for (int i = 0; i < 100000; ++i) {
    io.poll();
    if (mock.Stats()["requests"] == 1) break;
  }
  REQUIRE(mock.Stats()["requests"] == 1);
  Call fast;
  fast.target = "/tax-office/get_tax_status";
  fast.body = json{{"tax_code", "3901234567"}}.dump();
  asio::co_spawn(io, Exchange(mock.port(), fast, 20s),
                 [&finished, &io](std::exception_ptr, Reply reply) {
                   finished.push_back("fast " + std::to_string(reply.status));
                   io.stop();
                 });
  io.run();
  CHECK(finished == std::vector<std::string>{"fast 200"});
}

TEST_CASE("a hanging department never answers but keeps the connection", "[mock_agency][faults]") {
  MockAgency mock;
  REQUIRE(mock.Post("/_faults", {{"department", "dolisa"}, {"hang", true}}).status == 200);
  Call call;
  call.target = "/dolisa/lookup_beneficiary";
  call.body = json{{"citizen_id", "079058001962"}}.dump();
  call.key = "h1";
  const Reply reply = Send(mock.port(), call, 300ms);
  CHECK(reply.error == beast::error::timeout);
  CHECK(reply.status == 0);
  const json stats = mock.Stats();
  CHECK(stats["hung"] == 1);
  CHECK(stats["applied"] == 0);
  CHECK(Answer(mock, "/population-db/get_citizen", {{"citizen_id", "072195001234"}})["status"] ==
        "alive");
}

TEST_CASE("the status and max_body_bytes switches shape the answer", "[mock_agency][faults]") {
  MockAgency mock({"--fault", "most-portal:status=400", "--max-body-bytes", "65536"});
  CHECK(mock.Post("/most-portal/forward_dossier", {{"contract_number", "X"}}).status == 400);
  const Reply big = mock.Post("/tax-office/get_tax_status", {{"tax_code", "3901234567"}});
  CHECK(big.status == 200);
  CHECK(big.body.size() == 65536);
  CHECK(big.Json()["tax_code"] == "3901234567");
  // Switched off at run time: null clears a switch.
  REQUIRE(mock.Post("/_faults", {{"max_body_bytes", nullptr}}).status == 200);
  CHECK(mock.Post("/tax-office/get_tax_status", {{"tax_code", "3901234567"}}).body.size() < 1000);
  CHECK(mock.Post("/_faults", {{"latency", 5}}).status == 400);
}

TEST_CASE("an accepted call answers 202 and delivers its result through the callback",
          "[mock_agency][faults]") {
  wf::testing::TempDir scratch("wf-mock-fifo.");
  const std::string fifo = (scratch / "result").string();
  REQUIRE(mkfifo(fifo.c_str(), 0600) == 0);
  MockAgency mock({"--fault", "payment-gateway:accept=true", "--fault",
                   "payment-gateway:callback_delay_ms=0", "--callback",
                   "sh -c '{ echo \"$0 $1\"; cat; } > " + fifo + "' {case} {step}"});
  // Opened before the call so the callback's writer finds a reader.
  const int reader = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  REQUIRE(reader >= 0);

  Call call;
  call.target = "/payment-gateway/request_payment";
  call.body = json{{"payer_enterprise_code", "3901234567"}, {"amount_vnd", 3000000}}.dump();
  call.key = "C-7/pay_fee/1";
  call.case_id = "C-7";
  call.step = "pay_fee";
  const Reply accepted = Send(mock.port(), call);
  CHECK(accepted.status == 202);
  CHECK(accepted.Json()["status"] == "accepted");

  std::string delivered;
  for (;;) {
    pollfd wait{reader, POLLIN, 0};
    REQUIRE(poll(&wait, 1, 20000) == 1);
    char chunk[4096];
    const ssize_t n = read(reader, chunk, sizeof chunk);
    if (n <= 0) break;
    delivered.append(chunk, static_cast<size_t>(n));
  }
  close(reader);
  const size_t newline = delivered.find('\n');
  REQUIRE(newline != std::string::npos);
  CHECK(delivered.substr(0, newline) == "C-7 pay_fee");
  const json result = json::parse(delivered.substr(newline + 1));
  CHECK(result["status"] == "paid");
  CHECK(result["amount_vnd"] == 3000000);

  // The replay is the same 202 and starts no second callback.
  const Reply replay = Send(mock.port(), call);
  CHECK(replay.status == 202);
  CHECK(replay.body == accepted.body);
  const json stats = mock.Stats();
  CHECK(stats["accepted"] == 1);
  CHECK(stats["callbacks"]["started"] == 1);
}

TEST_CASE("an accepted call without a callback command just answers 202", "[mock_agency][faults]") {
  MockAgency mock({"--accept"});
  const Reply reply = mock.Post("/dolisa/lookup_beneficiary", {{"citizen_id", "079058001962"}});
  CHECK(reply.status == 202);
  CHECK(reply.Json()["callback"] == false);
  CHECK(mock.Stats()["callbacks"]["started"] == 0);
}

TEST_CASE("a reset clears the ledger, the counters and the run-time faults",
          "[mock_agency][reset]") {
  MockAgency mock({"--fault", "dolisa:status=500"});
  const json body = {{"citizen_id", "072048000731"}, {"date_of_death", "2026-04-06"}};
  Answer(mock, "/civil-status-db/register_death", body, "d1");
  REQUIRE(mock.Post("/_faults", {{"latency_ms", 1}}).status == 200);
  REQUIRE(mock.Post("/_reset", json::object()).status == 200);

  const json stats = mock.Stats();
  CHECK(stats["requests"] == 0);
  CHECK(stats["applied"] == 0);
  CHECK(stats["departments"].empty());
  CHECK(mock.Get("/_ledger").empty());
  // Back to the command line's switches.
  const json faults = mock.Get("/_faults");
  CHECK(faults["global"].empty());
  CHECK(faults["departments"]["dolisa"]["status"] == 500);
  // The same key is new again and the certificate book starts over; the death is forgotten.
  CHECK(Answer(mock, "/population-db/get_citizen", {{"citizen_id", "072048000731"}})["status"] ==
        "alive");
  const Reply again = mock.Post("/civil-status-db/register_death", body, "d1");
  CHECK_FALSE(again.replayed);
  CHECK(again.Json()["certificate_no"] == "KT-2026-000001");
}

TEST_CASE("bad requests get 400, unknown departments and operations 404", "[mock_agency][errors]") {
  MockAgency mock;
  Call call;
  call.target = "/population-db/get_citizen";
  call.body = "{not json";
  CHECK(Send(mock.port(), call).status == 400);
  call.body = "[1, 2]";
  CHECK(Send(mock.port(), call).status == 400);
  CHECK(mock.Post("/land-registry/get_parcel", json::object()).status == 404);
  CHECK(mock.Post("/population-db/delete_citizen", json::object()).status == 404);
  CHECK(mock.Post("/_nothing", json::object()).status == 404);
  Call get;
  get.method = "GET";
  get.target = "/population-db/get_citizen";
  CHECK(Send(mock.port(), get).status == 405);
  const json stats = mock.Stats();
  CHECK(stats["rejected"] == 6);
  CHECK(stats["applied"] == 0);
  CHECK(mock.Get("/")["departments"].size() == 11);
}

TEST_CASE("SIGTERM stops the mock agency cleanly", "[mock_agency]") {
  MockAgency mock;
  Answer(mock, "/population-db/get_citizen", {{"citizen_id", "072195001234"}});
  CHECK(mock.Stop() == 0);
}
