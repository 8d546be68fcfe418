// The notify adapter against a small SMTP sink on 127.0.0.1 (a thread speaking just enough SMTP
// with blocking sockets, STARTTLS and AUTH included, recording what it was sent), and in outbox
// mode against a temporary folder. Calls are driven from an io_context on the test's thread.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "adapters/asio.hpp"

#include <boost/asio/ssl.hpp>

#include "adapters/notify.hpp"
#include "tests/adapters/test_certificates.hpp"

namespace wf::adapters {
namespace {

namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Kind = StepOutcome::Kind;
namespace fs = std::filesystem;

// How the sink answers. Each reply is sent as written plus CRLF (multi-line replies carry their
// own inner CRLFs).
struct Script {
  bool greet = true;  // false: accept, then say nothing until the client goes away
  std::string greeting = "220 sink.test ESMTP";
  std::string ehlo;       // empty: "250-sink.test", then the extensions below, then "250 8BITMIME"
  bool starttls = false;  // offer STARTTLS (in clear only) and carry it out
  bool certificate_for_loopback_address =
      true;                            // present the 127.0.0.1 certificate, not localhost's
  bool inject_after_starttls = false;  // send a line in clear right after "220" to STARTTLS
  std::string auth;  // the mechanisms offered after AUTH (in clear and in TLS), e.g. "PLAIN LOGIN"
  std::string auth_reply = "235 2.7.0 authenticated";
  std::string helo = "250 sink.test";
  std::string mail = "250 2.1.0 ok";
  std::string rcpt = "250 2.1.5 ok";
  std::string data = "354 end with <CRLF>.<CRLF>";
  std::string after_data = "250 2.0.0 queued";
  int connections = 1;  // how many connections to serve, one after the other
};

// What one connection carried.
struct Transcript {
  std::vector<std::string> commands;  // every line outside DATA, without CRLF
  std::string data;                   // everything after 354 up to and including CRLF.CRLF
  int tls_from = -1;                  // index in `commands` of the first line received in TLS
  std::string tls_error;              // why the TLS handshake failed, if it did
};

// An SMTP server on 127.0.0.1 with an OS-chosen port, serving `script.connections` connections
// one after the other on its own thread. Finish() waits for it and returns what it saw.
class SmtpSink {
 public:
  explicit SmtpSink(Script script) : script_(std::move(script)), acceptor_(io_) {
    if (script_.starttls) {
      tls_context_ = testing::ServerTlsContext(script_.certificate_for_loopback_address);
    }
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), 0);
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { Serve(); });
  }
  ~SmtpSink() {
    stopping_ = true;
    // A sink still waiting in accept (a test that failed early) is woken by a connection.
    boost::system::error_code ignored;
    asio::io_context io;
    tcp::socket poke(io);
    if (!done_) poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ignored);
    if (thread_.joinable()) thread_.join();
  }

  uint16_t port() const { return port_; }

  std::vector<Transcript> Finish() {
    if (thread_.joinable()) thread_.join();
    return transcripts_;
  }

 private:
  void Serve() {
    for (int i = 0; i < script_.connections && !stopping_; ++i) {
      boost::system::error_code ec;
      tcp::socket socket(io_);
      acceptor_.accept(socket, ec);
      if (ec || stopping_) break;
      transcripts_.push_back(Converse(socket));
    }
    done_ = true;
  }

  std::string EhloReply(bool in_tls) const {
    if (!script_.ehlo.empty()) return script_.ehlo;
    std::string reply = "250-sink.test\r\n";
    if (script_.starttls && !in_tls) reply += "250-STARTTLS\r\n";
    if (!script_.auth.empty()) reply += "250-AUTH " + script_.auth + "\r\n";
    return reply + "250 8BITMIME";
  }

  Transcript Converse(tcp::socket& socket) {
    Transcript seen;
    std::string input;
    boost::system::error_code ec;
    std::optional<ssl::stream<tcp::socket&>> tls;
    auto send = [&](const std::string& reply) {
      boost::system::error_code ignored;
      if (tls) {
        asio::write(*tls, asio::buffer(reply + "\r\n"), ignored);
      } else {
        asio::write(socket, asio::buffer(reply + "\r\n"), ignored);
      }
    };
    auto read_until = [&](const char* delimiter) -> std::size_t {
      return tls ? asio::read_until(*tls, asio::dynamic_buffer(input), delimiter, ec)
                 : asio::read_until(socket, asio::dynamic_buffer(input), delimiter, ec);
    };
    auto read_line = [&]() -> std::optional<std::string> {
      std::size_t n = read_until("\r\n");
      if (ec) return std::nullopt;
      std::string line = input.substr(0, n - 2);
      input.erase(0, n);
      seen.commands.push_back(line);
      return line;
    };
    if (!script_.greet) {
      // Read (and drop) until the client gives up and closes.
      asio::read(socket, asio::dynamic_buffer(input), ec);
      return seen;
    }
    send(script_.greeting);
    for (;;) {
      std::optional<std::string> line = read_line();
      if (!line) return seen;
      std::string verb = line->substr(0, 4);
      if (verb == "EHLO") {
        send(EhloReply(tls.has_value()));
      } else if (verb == "HELO") {
        send(script_.helo);
      } else if (*line == "STARTTLS" && script_.starttls && !tls) {
        send(script_.inject_after_starttls ? "220 go ahead\r\n250 injected in clear"
                                           : "220 go ahead");
        tls.emplace(socket, *tls_context_);
        tls->handshake(ssl::stream_base::server, ec);
        if (ec) {
          seen.tls_error = ec.message();
          return seen;
        }
        seen.tls_from = static_cast<int>(seen.commands.size());
      } else if (verb == "AUTH" && !script_.auth.empty()) {
        if (line->rfind("AUTH LOGIN", 0) == 0) {
          send("334 VXNlcm5hbWU6");
          if (!read_line()) return seen;
          send("334 UGFzc3dvcmQ6");
          if (!read_line()) return seen;
        }
        send(script_.auth_reply);
      } else if (verb == "MAIL") {
        send(script_.mail);
      } else if (verb == "RCPT") {
        send(script_.rcpt);
      } else if (verb == "DATA") {
        send(script_.data);
        if (script_.data.rfind("354", 0) != 0) continue;
        std::size_t n = read_until("\r\n.\r\n");
        if (ec) return seen;
        seen.data = input.substr(0, n);
        input.erase(0, n);
        send(script_.after_data);
      } else if (verb == "QUIT") {
        send("221 bye");
        return seen;
      } else {
        send("500 unknown command");
      }
    }
  }

  Script script_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::unique_ptr<ssl::context> tls_context_;
  uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> done_{false};
  std::vector<Transcript> transcripts_;  // written by the thread, read after join
};

std::unique_ptr<NotifyAdapter> MakeAdapter(const nlohmann::json& settings) {
  auto adapter = NotifyAdapter::Create("post-office", settings);
  INFO((adapter ? std::string() : adapter.error().message()));
  REQUIRE(adapter);
  return std::move(*adapter);
}

nlohmann::json SmtpSettings(uint16_t port, double timeout_seconds = 10) {
  return {{"smtp",
           {{"host", "127.0.0.1"},
            {"port", port},
            {"from", "wf@agency.example.gov"},
            {"timeout", timeout_seconds}}}};
}

StepRequest MakeRequest(nlohmann::json fields, std::string key = "case-1/notify/1") {
  StepRequest request;
  request.case_id = "case-1";
  request.step = "notify";
  request.activation = 1;
  request.idempotency_key = std::move(key);
  request.operation = "appointment";
  request.fields = std::move(fields);
  return request;
}

StepOutcome Run(NotifyAdapter& adapter, StepRequest request) {
  asio::io_context io{1};
  std::optional<StepOutcome> outcome;
  std::exception_ptr error;
  asio::co_spawn(io, adapter.Invoke(std::move(request)), [&](std::exception_ptr e, StepOutcome o) {
    error = e;
    outcome = std::move(o);
  });
  io.run();
  REQUIRE_FALSE(error);
  REQUIRE(outcome.has_value());
  return *outcome;
}

// Decodes standard base64 (the test's own, to check the adapter's encoder).
std::string FromBase64(const std::string& text) {
  const std::string alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  uint32_t bits = 0;
  int count = 0;
  for (char c : text) {
    if (c == '=') break;
    auto at = alphabet.find(c);
    REQUIRE(at != std::string::npos);
    bits = (bits << 6) | static_cast<uint32_t>(at);
    count += 6;
    if (count >= 8) {
      count -= 8;
      out += static_cast<char>((bits >> count) & 0xFF);
    }
  }
  return out;
}

// The unfolded value of header `name` in a message's header block ("" when absent).
std::string Header(const std::string& data, const std::string& name) {
  // "\r\n" in front so that the first header is found like the others.
  std::string head = "\r\n" + data.substr(0, data.find("\r\n\r\n") + 2);
  std::size_t at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return "";
  std::string value;
  std::size_t pos = at + 2 + name.size() + 2;
  for (;;) {
    std::size_t end = head.find("\r\n", pos);
    value += head.substr(pos, end - pos);
    pos = end + 2;
    if (pos >= head.size() || (head[pos] != ' ' && head[pos] != '\t')) break;
  }
  return value;
}

// The text of a subject made of RFC 2047 "=?UTF-8?B?...?=" words separated by folding spaces.
std::string DecodeSubject(const std::string& value) {
  std::string out;
  std::size_t pos = 0;
  while ((pos = value.find("=?UTF-8?B?", pos)) != std::string::npos) {
    std::size_t end = value.find("?=", pos + 10);
    REQUIRE(end != std::string::npos);
    REQUIRE(end + 2 - pos <= 75);  // an encoded word is at most 75 characters
    out += FromBase64(value.substr(pos + 10, end - pos - 10));
    pos = end + 2;
  }
  return out;
}

// A fresh folder under the system's temporary folder, removed at the end of the test.
struct TempDir {
  TempDir() {
    static int counter = 0;
    path = fs::temp_directory_path() /
           ("wf-notify-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter));
    fs::remove_all(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
  fs::path path;
};

TEST_CASE("a message is delivered over SMTP with its headers and dot-stuffed body",
          "[adapters][notify]") {
  SmtpSink sink({});
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  const std::string subject = "Giấy khai sinh của bạn đã sẵn sàng — lịch hẹn nhận kết quả tại UBND";
  StepOutcome outcome = Run(
      *adapter,
      MakeRequest({{"to", {"mother@example.org", "clerk@agency.example.gov", "mother@example.org"}},
                   {"subject", subject},
                   {"body", "Xin chào,\n.hidden\n..two\nnormal\n."}}));
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  CHECK(outcome.result["delivered_to"] ==
        nlohmann::json({"mother@example.org", "clerk@agency.example.gov"}));
  CHECK(outcome.result["message_id"] == "<wf.case-1_2Fnotify_2F1@agency.example.gov>");

  auto transcripts = sink.Finish();
  REQUIRE(transcripts.size() == 1);
  const Transcript& seen = transcripts[0];
  CHECK(seen.commands == std::vector<std::string>{"EHLO wf", "MAIL FROM:<wf@agency.example.gov>",
                                                  "RCPT TO:<mother@example.org>",
                                                  "RCPT TO:<clerk@agency.example.gov>", "DATA",
                                                  "QUIT"});
  CHECK(Header(seen.data, "From") == "wf@agency.example.gov");
  CHECK(Header(seen.data, "To") == "mother@example.org, clerk@agency.example.gov");
  CHECK(Header(seen.data, "Message-ID") == "<wf.case-1_2Fnotify_2F1@agency.example.gov>");
  CHECK(Header(seen.data, "Content-Type") == "text/plain; charset=utf-8");
  CHECK(Header(seen.data, "Content-Transfer-Encoding") == "8bit");
  CHECK(Header(seen.data, "Date").size() == std::string("Wed, 25 Nov 2026 23:48:40 +0000").size());
  std::string encoded = Header(seen.data, "Subject");
  CHECK(encoded.rfind("=?UTF-8?B?", 0) == 0);
  CHECK(DecodeSubject(encoded) == subject);
  // Every header line is ASCII.
  std::string head = seen.data.substr(0, seen.data.find("\r\n\r\n"));
  CHECK(std::all_of(head.begin(), head.end(),
                    [](char c) { return static_cast<unsigned char>(c) < 0x80; }));
  std::string body = seen.data.substr(seen.data.find("\r\n\r\n") + 4);
  CHECK(body == "Xin chào,\r\n..hidden\r\n...two\r\nnormal\r\n..\r\n.\r\n");
}

TEST_CASE("a resend under the same idempotency key carries the same Message-ID",
          "[adapters][notify]") {
  Script script;
  script.connections = 2;
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  nlohmann::json fields = {{"to", "mother@example.org"}, {"subject", "Appointment"}, {"body", "x"}};
  StepOutcome first = Run(*adapter, MakeRequest(fields, "case-7/notify/3"));
  StepOutcome second = Run(*adapter, MakeRequest(fields, "case-7/notify/3"));
  REQUIRE(first.kind == Kind::kDone);
  REQUIRE(second.kind == Kind::kDone);
  auto transcripts = sink.Finish();
  REQUIRE(transcripts.size() == 2);
  CHECK(Header(transcripts[0].data, "Message-ID") == "<wf.case-7_2Fnotify_2F3@agency.example.gov>");
  CHECK(Header(transcripts[1].data, "Message-ID") == Header(transcripts[0].data, "Message-ID"));
  CHECK(Header(transcripts[0].data, "Subject") == "Appointment");
  CHECK(NotifyAdapter::MessageIdFor("case-7/notify/4", "wf@agency.example.gov") !=
        NotifyAdapter::MessageIdFor("case-7/notify/3", "wf@agency.example.gov"));
}

TEST_CASE("a server that refuses EHLO is greeted with HELO", "[adapters][notify]") {
  Script script;
  script.ehlo = "502 5.5.1 command not implemented";
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "a@example.org"}, {"body", "hi"}}));
  INFO(outcome.message);
  CHECK(outcome.kind == Kind::kDone);
  auto transcripts = sink.Finish();
  REQUIRE(transcripts.size() == 1);
  REQUIRE(transcripts[0].commands.size() >= 2);
  CHECK(transcripts[0].commands[0] == "EHLO wf");
  CHECK(transcripts[0].commands[1] == "HELO wf");
}

TEST_CASE("a 450 on RCPT is retried and nothing is sent", "[adapters][notify]") {
  Script script;
  script.rcpt = "450 4.2.1 mailbox busy, try later";
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "a@example.org"}, {"body", "hi"}}));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK_THAT(outcome.message, Catch::StartsWith("post-office appointment: "));
  CHECK_THAT(outcome.message, Catch::Contains("450 4.2.1 mailbox busy"));
  auto transcripts = sink.Finish();
  REQUIRE(transcripts.size() == 1);
  CHECK(transcripts[0].data.empty());
  CHECK(transcripts[0].commands.back() == "QUIT");
}

TEST_CASE("a 550 is a permanent failure carrying the server's line", "[adapters][notify]") {
  Script script;
  script.rcpt = "550 5.1.1 no such user here";
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  StepOutcome outcome =
      Run(*adapter, MakeRequest({{"to", {"ok@example.org", "gone@example.org"}}, {"body", "hi"}}));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message, Catch::Contains("550 5.1.1 no such user here"));
  CHECK_THAT(outcome.message, Catch::Contains("RCPT TO:<ok@example.org>"));
  CHECK(sink.Finish()[0].data.empty());
}

TEST_CASE("a 5xx after the message data is a permanent failure", "[adapters][notify]") {
  Script script;
  script.after_data = "554 5.6.0 message rejected";
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port()));
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "a@example.org"}, {"body", "hi"}}));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message, Catch::Contains("554 5.6.0 message rejected"));
}

TEST_CASE("a server that never greets is retried after the timeout", "[adapters][notify]") {
  Script script;
  script.greet = false;
  SmtpSink sink(script);
  auto adapter = MakeAdapter(SmtpSettings(sink.port(), 0.2));
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "a@example.org"}}));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK_THAT(outcome.message, Catch::Contains("timed out after 200ms"));
  CHECK_THAT(outcome.message, Catch::Contains("greeting"));
}

TEST_CASE("a refused SMTP connection is retried", "[adapters][notify]") {
  uint16_t port = 0;
  {
    asio::io_context io;
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acceptor.local_endpoint().port();
  }  // closed: nothing listens there now
  auto adapter = MakeAdapter(SmtpSettings(port));
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "a@example.org"}}));
  CHECK(outcome.kind == Kind::kRetry);
  CHECK_THAT(outcome.message, Catch::Contains("connecting"));
  CHECK_THAT(outcome.message, Catch::Contains("127.0.0.1:" + std::to_string(port)));
}

TEST_CASE("outbox mode writes one file per idempotency key and ListOutbox returns them",
          "[adapters][notify]") {
  TempDir dir;
  auto adapter = MakeAdapter({{"outbox", (dir.path / "out").string()}});
  StepOutcome first =
      Run(*adapter,
          MakeRequest({{"to", "mother@example.org"}, {"subject", "Lịch hẹn"}, {"body", "first"}}));
  INFO(first.message);
  REQUIRE(first.kind == Kind::kDone);
  const std::string path = (dir.path / "out" / "case-1_2Fnotify_2F1.json").string();
  CHECK(first.result == nlohmann::json({{"outbox", path}}));

  // The same key again (a retry after a lost answer): the same file, replaced.
  StepOutcome second =
      Run(*adapter,
          MakeRequest({{"to", "mother@example.org"}, {"subject", "Lịch hẹn"}, {"body", "second"}}));
  REQUIRE(second.kind == Kind::kDone);
  CHECK(second.result["outbox"] == path);
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir.path / "out")) {
    names.push_back(entry.path().filename().string());
  }
  CHECK(names == std::vector<std::string>{"case-1_2Fnotify_2F1.json"});

  auto listed = NotifyAdapter::ListOutbox((dir.path / "out").string());
  REQUIRE(listed);
  REQUIRE(listed->size() == 1);
  const nlohmann::json& message = (*listed)[0];
  CHECK(message["file"] == path);
  CHECK(message["to"] == nlohmann::json({"mother@example.org"}));
  CHECK(message["subject"] == "Lịch hẹn");
  CHECK(message["body"] == "second");
  CHECK(message["idempotency_key"] == "case-1/notify/1");
  CHECK(message["operation"] == "appointment");
  CHECK(message["message_id"] == NotifyAdapter::MessageIdFor("case-1/notify/1", ""));

  // Another key: another file; a foreign file is shown, not hidden.
  REQUIRE(Run(*adapter, MakeRequest({{"to", "b@example.org"}}, "case-2/notify/1")).kind ==
          Kind::kDone);
  std::ofstream(dir.path / "out" / "broken.json") << "{not json";
  listed = NotifyAdapter::ListOutbox((dir.path / "out").string());
  REQUIRE(listed);
  REQUIRE(listed->size() == 3);
  int broken = 0;
  for (const auto& item : *listed) broken += item.contains("error") ? 1 : 0;
  CHECK(broken == 1);
}

TEST_CASE("ListOutbox of a folder that does not exist is kNotFound", "[adapters][notify]") {
  TempDir dir;
  auto listed = NotifyAdapter::ListOutbox((dir.path / "missing").string());
  REQUIRE_FALSE(listed);
  CHECK(listed.error().code() == ErrorCode::kNotFound);
}

TEST_CASE("distinct idempotency keys never share an outbox file", "[adapters][notify]") {
  CHECK(NotifyAdapter::OutboxFileName("a/b") != NotifyAdapter::OutboxFileName("a_b"));
  CHECK(NotifyAdapter::OutboxFileName("a_2Fb") != NotifyAdapter::OutboxFileName("a/b"));
  CHECK(NotifyAdapter::OutboxFileName("../x").find('/') == std::string::npos);
  CHECK(NotifyAdapter::OutboxFileName("../x").rfind('.', 0) != 0);
}

TEST_CASE("Validate requires `to` and checks literal addresses", "[adapters][notify]") {
  auto adapter = MakeAdapter({{"outbox", "/nonexistent/never-written"}});
  Status missing = adapter->Validate({"post-office", {{"subject", "x"}, {"body", "y"}}});
  CHECK(missing.code() == ErrorCode::kInvalid);
  CHECK_THAT(missing.message(), Catch::Contains("department 'post-office'"));
  CHECK_THAT(missing.message(), Catch::Contains("`to` is required"));

  CHECK(adapter->Validate({"post-office", {{"to", "a@example.org"}, {"subject", "x"}}}).ok());
  CHECK(adapter->Validate({"post-office", {{"to", "${ .applicant.email }"}}}).ok());
  CHECK(adapter->Validate({"post-office", {{"to", {"a@example.org", "${ .clerk }"}}}}).ok());
  CHECK_FALSE(adapter->Validate({"post-office", {{"to", "not an address"}}}).ok());
  CHECK_FALSE(adapter->Validate({"post-office", {{"to", nlohmann::json::array()}}}).ok());
  CHECK_FALSE(adapter->Validate({"post-office", {{"to", "a@example.org"}, {"subject", 3}}}).ok());

  // The same rules at run time, after rendering: a permanent failure.
  StepOutcome outcome = Run(*adapter, MakeRequest({{"subject", "x"}}));
  CHECK(outcome.kind == Kind::kFailed);
  CHECK_THAT(outcome.message, Catch::Contains("`to` is required"));
}

TEST_CASE("settings need exactly one of smtp and outbox and refuse unknown keys",
          "[adapters][notify]") {
  auto none = NotifyAdapter::Create("post-office", nlohmann::json::object());
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message(), Catch::Contains("`smtp` (a mail server) or `outbox`"));
  auto both = NotifyAdapter::Create(
      "post-office", {{"outbox", "/tmp/x"}, {"smtp", {{"host", "h"}, {"from", "a@b.c"}}}});
  CHECK_FALSE(both);
  auto unknown = NotifyAdapter::Create("post-office", {{"outbox", "/tmp/x"}, {"oubox", 1}});
  REQUIRE_FALSE(unknown);
  CHECK_THAT(unknown.error().message(), Catch::Contains("oubox"));
  auto no_from = NotifyAdapter::Create("post-office", {{"smtp", {{"host", "h"}}}});
  REQUIRE_FALSE(no_from);
  CHECK_THAT(no_from.error().message(), Catch::Contains("smtp.from"));
  auto bad_port = NotifyAdapter::Create(
      "post-office", {{"smtp", {{"host", "h"}, {"from", "a@b.c"}, {"port", 0}}}});
  CHECK_FALSE(bad_port);
  ::setenv("WF_NOTIFY_TEST_HOST", "mail.example.gov", 1);
  auto env = NotifyAdapter::Create(
      "post-office", {{"smtp", {{"host", "${env.WF_NOTIFY_TEST_HOST}"}, {"from", "a@b.c"}}}});
  CHECK(env);
  ::unsetenv("WF_NOTIFY_TEST_UNSET");
  auto unset = NotifyAdapter::Create(
      "post-office", {{"smtp", {{"host", "${env.WF_NOTIFY_TEST_UNSET}"}, {"from", "a@b.c"}}}});
  REQUIRE_FALSE(unset);
  CHECK_THAT(unset.error().message(), Catch::Contains("WF_NOTIFY_TEST_UNSET"));
}

// --- STARTTLS and AUTH ------------------------------------------------------------------------

// Settings for the sink on 127.0.0.1 with STARTTLS required and the test CA trusted; `extra`
// keys are merged into `smtp` (a null value removes the key).
nlohmann::json TlsSettings(uint16_t port, const nlohmann::json& extra) {
  nlohmann::json smtp = {
      {"host", "127.0.0.1"}, {"port", port},           {"from", "wf@agency.example.gov"},
      {"timeout", 20},       {"starttls", "required"}, {"ca", testing::Certificates().ca}};
  for (const auto& [key, value] : extra.items()) {
    if (value.is_null()) {
      smtp.erase(key);
    } else {
      smtp[key] = value;
    }
  }
  return {{"smtp", smtp}};
}

// One call to a sink following `script`, with TlsSettings(extra); what the sink saw of its one
// connection.
struct SinkCall {
  StepOutcome outcome;
  Transcript seen;
};

SinkCall CallSink(Script script, const nlohmann::json& extra = nlohmann::json::object(),
                  nlohmann::json fields = {{"to", "a@example.org"}, {"body", "x"}}) {
  SmtpSink sink(std::move(script));
  auto adapter = MakeAdapter(TlsSettings(sink.port(), extra));
  SinkCall call{Run(*adapter, MakeRequest(std::move(fields))), {}};
  auto transcripts = sink.Finish();
  REQUIRE(transcripts.size() == 1);
  call.seen = transcripts[0];
  return call;
}

Script StartTlsScript(std::string auth = "") {
  Script script;
  script.starttls = true;
  script.auth = std::move(auth);
  return script;
}

std::size_t IndexOf(const std::vector<std::string>& commands, const std::string& prefix) {
  for (std::size_t i = 0; i < commands.size(); ++i) {
    if (commands[i].rfind(prefix, 0) == 0) return i;
  }
  return commands.size();
}

using Commands = std::vector<std::string>;

TEST_CASE("with STARTTLS the message travels only inside TLS and arrives",
          "[adapters][notify][tls]") {
  SinkCall call = CallSink(StartTlsScript(), nlohmann::json::object(),
                           {{"to", "mother@example.org"},
                            {"subject", "Giấy khai sinh"},
                            {"body", "Số định danh 079123456789"}});
  INFO(call.outcome.message << " / " << call.seen.tls_error);
  REQUIRE(call.outcome.kind == Kind::kDone);
  CHECK(call.seen.commands == Commands{"EHLO wf", "STARTTLS", "EHLO wf",
                                       "MAIL FROM:<wf@agency.example.gov>",
                                       "RCPT TO:<mother@example.org>", "DATA", "QUIT"});
  CHECK(call.seen.tls_from == 2);  // everything after STARTTLS, the second EHLO included
  CHECK(call.seen.data.find("Số định danh 079123456789") != std::string::npos);
}

TEST_CASE("a server that does not offer STARTTLS when it is required gets nothing",
          "[adapters][notify][tls]") {
  SinkCall call = CallSink({});  // offers no STARTTLS
  CHECK(call.outcome.kind == Kind::kFailed);
  CHECK_THAT(call.outcome.message,
             Catch::StartsWith("post-office appointment: mail server 127.0.0.1:"));
  CHECK_THAT(call.outcome.message, Catch::Contains("does not offer STARTTLS; nothing was sent"));
  CHECK(call.seen.commands == Commands{"EHLO wf", "QUIT"});
  CHECK(call.seen.data.empty());
}

TEST_CASE("a server that refuses EHLO is not greeted with HELO when STARTTLS is required",
          "[adapters][notify][tls]") {
  Script script;
  script.ehlo = "502 5.5.1 command not implemented";
  SinkCall call = CallSink(script);
  CHECK(call.outcome.kind == Kind::kFailed);
  CHECK_THAT(call.outcome.message, Catch::Contains("answered EHLO with: 502"));
  CHECK(call.seen.commands == Commands{"EHLO wf", "QUIT"});
}

TEST_CASE("a mail server certificate that does not name the host or is not trusted gets nothing",
          "[adapters][notify][tls]") {
  SECTION("a certificate for another name") {
    Script script = StartTlsScript();
    script.certificate_for_loopback_address = false;  // names "localhost" only
    SinkCall call = CallSink(script);
    CHECK(call.outcome.kind == Kind::kFailed);
    CHECK_THAT(call.outcome.message,
               Catch::Contains("TLS certificate does not verify: the certificate does not name "
                               "host '127.0.0.1'; nothing was sent"));
    CHECK(call.seen.commands == Commands{"EHLO wf", "STARTTLS"});
    CHECK_FALSE(call.seen.tls_error.empty());
  }
  SECTION("a certificate from a CA the system does not trust") {
    SinkCall call = CallSink(StartTlsScript(), {{"ca", nullptr}});  // the system's roots
    CHECK(call.outcome.kind == Kind::kFailed);
    CHECK_THAT(call.outcome.message, Catch::Contains("TLS certificate does not verify"));
    CHECK(call.seen.commands == Commands{"EHLO wf", "STARTTLS"});
  }
}

TEST_CASE("plaintext injected after the server's 220 to STARTTLS stops the conversation",
          "[adapters][notify][tls]") {
  Script script = StartTlsScript();
  script.inject_after_starttls = true;
  SinkCall call = CallSink(script);
  CHECK(call.outcome.kind == Kind::kFailed);
  CHECK_THAT(call.outcome.message,
             Catch::Contains("sent data in clear after agreeing to STARTTLS"));
  CHECK(IndexOf(call.seen.commands, "MAIL") == call.seen.commands.size());
  CHECK(call.seen.data.empty());
}

TEST_CASE("AUTH credentials are sent only after TLS is up", "[adapters][notify][tls][auth]") {
  ::setenv("WF_NOTIFY_TEST_PASSWORD", "mật khẩu 42", 1);
  nlohmann::json auth = {{"user", "wf-sender"}, {"password", "${env.WF_NOTIFY_TEST_PASSWORD}"}};
  SECTION("PLAIN, the first the server offers, though it offers AUTH in clear too") {
    SinkCall call = CallSink(StartTlsScript("PLAIN LOGIN"), {{"auth", auth}});
    INFO(call.outcome.message);
    REQUIRE(call.outcome.kind == Kind::kDone);
    const Commands& commands = call.seen.commands;
    std::size_t at = IndexOf(commands, "AUTH ");
    REQUIRE(at < commands.size());
    REQUIRE(call.seen.tls_from >= 0);
    CHECK(at >= static_cast<std::size_t>(call.seen.tls_from));
    CHECK(at < IndexOf(commands, "MAIL"));
    CHECK_THAT(commands[at], Catch::StartsWith("AUTH PLAIN "));
    CHECK(FromBase64(commands[at].substr(11)) ==
          std::string(1, '\0') + "wf-sender" + '\0' + "mật khẩu 42");
    for (int i = 0; i < call.seen.tls_from; ++i) {
      CHECK(commands[i].find("AUTH") == std::string::npos);
    }
  }
  SECTION("LOGIN when the settings ask for it") {
    auth["mechanism"] = "LOGIN";
    SinkCall call = CallSink(StartTlsScript("PLAIN LOGIN"), {{"auth", auth}});
    INFO(call.outcome.message);
    REQUIRE(call.outcome.kind == Kind::kDone);
    const Commands& commands = call.seen.commands;
    std::size_t at = IndexOf(commands, "AUTH LOGIN");
    REQUIRE(at + 2 < commands.size());
    CHECK(at >= static_cast<std::size_t>(call.seen.tls_from));
    CHECK(FromBase64(commands[at + 1]) == "wf-sender");
    CHECK(FromBase64(commands[at + 2]) == "mật khẩu 42");
  }
  SECTION("bad credentials are a permanent failure that does not repeat them") {
    Script script = StartTlsScript("PLAIN");
    script.auth_reply = "535 5.7.8 authentication credentials invalid";
    SinkCall call = CallSink(script, {{"auth", auth}});
    CHECK(call.outcome.kind == Kind::kFailed);
    CHECK_THAT(call.outcome.message, Catch::Contains("535 5.7.8"));
    CHECK(call.outcome.message.find("mật khẩu") == std::string::npos);
    CHECK(IndexOf(call.seen.commands, "MAIL") == call.seen.commands.size());
  }
  SECTION("a server that offers no AUTH gets no message") {
    SinkCall call = CallSink(StartTlsScript(), {{"auth", auth}});
    CHECK(call.outcome.kind == Kind::kFailed);
    CHECK_THAT(call.outcome.message, Catch::Contains("does not offer AUTH PLAIN or LOGIN"));
    CHECK(call.seen.commands == Commands{"EHLO wf", "STARTTLS", "EHLO wf", "QUIT"});
  }
}

TEST_CASE("STARTTLS is required by default except for a loopback relay without AUTH",
          "[adapters][notify][tls][settings]") {
  using StartTls = NotifyAdapter::StartTls;
  auto resolved = [](nlohmann::json smtp) {
    smtp["from"] = "wf@agency.example.gov";
    auto adapter = NotifyAdapter::Create("post-office", {{"smtp", smtp}});
    INFO((adapter ? std::string() : adapter.error().message()));
    REQUIRE(adapter);
    return (*adapter)->settings().smtp->starttls;
  };
  CHECK(resolved({{"host", "mail.example.gov"}}) == StartTls::kRequired);
  CHECK(resolved({{"host", "10.0.0.25"}}) == StartTls::kRequired);
  CHECK(resolved({{"host", "127.0.0.1"}}) == StartTls::kOff);
  CHECK(resolved({{"host", "localhost"}}) == StartTls::kOff);
  CHECK(resolved({{"host", "::1"}}) == StartTls::kOff);
  CHECK(resolved({{"host", "127.0.0.1"}, {"auth", {{"user", "u"}, {"password", "p"}}}}) ==
        StartTls::kRequired);
  CHECK(resolved({{"host", "mail.example.gov"}, {"starttls", false}}) == StartTls::kOff);
  CHECK(resolved({{"host", "localhost"}, {"starttls", true}}) == StartTls::kRequired);

  struct Bad {
    nlohmann::json smtp;
    std::string says;
  };
  std::vector<Bad> bad = {
      {{{"host", "h"}, {"starttls", false}, {"auth", {{"user", "u"}, {"password", "p"}}}},
       "smtp.auth needs STARTTLS"},
      {{{"host", "h"}, {"starttls", false}, {"ca", "/etc/ssl/ca.pem"}}, "smtp.ca is used only"},
      {{{"host", "h"}, {"starttls", "maybe"}}, "smtp.starttls: must be `required`"},
      {{{"host", "h"}, {"auth", {{"user", "u"}}}}, "`user` and `password` are both required"},
      {{{"host", "h"}, {"auth", {{"user", "u"}, {"password", "p"}, {"mechanism", "cram-md5"}}}},
       "must be plain or login"},
      {{{"host", "h"}, {"ca", "/nonexistent/ca.pem"}}, "smtp.ca '/nonexistent/ca.pem' cannot be"},
  };
  for (auto& b : bad) {
    b.smtp["from"] = "wf@agency.example.gov";
    auto adapter = NotifyAdapter::Create("post-office", {{"smtp", b.smtp}});
    INFO(b.smtp.dump());
    REQUIRE_FALSE(adapter);
    CHECK(adapter.error().code() == ErrorCode::kInvalid);
    CHECK_THAT(adapter.error().message(),
               Catch::StartsWith("department 'post-office': ") && Catch::Contains(b.says));
  }
}

TEST_CASE("outbox folders are created 0700 and messages 0600, whatever the umask",
          "[adapters][notify][files]") {
  TempDir dir;
  mode_t previous = ::umask(0);
  auto adapter = MakeAdapter({{"outbox", (dir.path / "a" / "out").string()}});
  StepOutcome outcome = Run(*adapter, MakeRequest({{"to", "mother@example.org"}, {"body", "x"}}));
  ::umask(previous);
  INFO(outcome.message);
  REQUIRE(outcome.kind == Kind::kDone);
  auto mode = [](const fs::path& path) {
    struct stat info {};
    REQUIRE(::stat(path.c_str(), &info) == 0);
    return info.st_mode & 07777;
  };
  CHECK(mode(dir.path / "a") == 0700);
  CHECK(mode(dir.path / "a" / "out") == 0700);
  CHECK(mode(outcome.result["outbox"].get<std::string>()) == 0600);
}

}  // namespace
}  // namespace wf::adapters
