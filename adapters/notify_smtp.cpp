// The notify adapter's SMTP conversation (NotifyAdapter::Send): EHLO, STARTTLS, AUTH, the
// message, each reply read within the call's deadline.
#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>
#include <optional>
#include <sstream>

#include "adapters/asio.hpp"

#include <openssl/ssl.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "adapters/mail_format.hpp"
#include "adapters/notify.hpp"
#include "adapters/settings.hpp"
#include "adapters/tls_client.hpp"

namespace wf::adapters {

namespace {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // a longer reply is not SMTP
constexpr std::size_t kReplyInMessage = 500;

// What a server's EHLO reply offers (keywords upper-cased).
struct Capabilities {
  bool starttls = false;
  std::vector<std::string> auth;  // the SASL mechanisms after AUTH (or the old AUTH=)
};

Capabilities ParseCapabilities(const std::string& ehlo_reply) {
  Capabilities offered;
  std::istringstream lines(ehlo_reply);
  std::string line;
  bool first = true;
  while (std::getline(lines, line)) {
    if (first) {  // the greeting line names the server, not an extension
      first = false;
      continue;
    }
    if (line.size() <= 4) continue;
    std::string text = line.substr(4);
    std::transform(text.begin(), text.end(), text.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    std::replace(text.begin(), text.end(), '=', ' ');
    std::istringstream words(text);
    std::string keyword;
    words >> keyword;
    if (keyword == "STARTTLS") offered.starttls = true;
    if (keyword == "AUTH") {
      for (std::string mechanism; words >> mechanism;) offered.auth.push_back(mechanism);
    }
  }
  return offered;
}

// One SMTP reply: its code (0 when the text is not a reply) and all its lines, or the network
// failure or timeout that prevented reading it.
struct Reply {
  boost::system::error_code error;
  int code = 0;
  std::string text;
};

// Everything one conversation uses. Held by shared_ptr so that the resolve guard can outlive it.
struct Session {
  explicit Session(const asio::any_io_executor& executor)
      : stream(executor), resolver(executor), resolve_deadline(executor) {}
  beast::tcp_stream stream;  // its deadline bounds the TLS layer's I/O too
  std::optional<ssl::stream<beast::tcp_stream&>> tls;  // set by STARTTLS: all I/O goes through it
  std::string verify_error;                            // why the server's certificate was refused
  tcp::resolver resolver;
  asio::steady_timer resolve_deadline;
  std::string input;  // bytes read and not yet consumed
};

asio::awaitable<void> CancelResolveAtDeadline(std::shared_ptr<Session> session) {
  boost::system::error_code ec;
  co_await session->resolve_deadline.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  if (!ec) session->resolver.cancel();
}

// Reads one (possibly multi-line) reply. `error` set for a network failure or timeout; code 0
// for text that is not an SMTP reply.
asio::awaitable<Reply> ReadReply(std::shared_ptr<Session> session,
                                 std::chrono::steady_clock::time_point deadline) {
  Reply reply;
  for (;;) {
    session->stream.expires_at(deadline);
    std::size_t n = 0;
    if (session->tls) {
      n = co_await asio::async_read_until(
          *session->tls, asio::dynamic_buffer(session->input, kMaxReplyBytes), "\r\n",
          asio::redirect_error(asio::use_awaitable, reply.error));
    } else {
      n = co_await asio::async_read_until(
          session->stream, asio::dynamic_buffer(session->input, kMaxReplyBytes), "\r\n",
          asio::redirect_error(asio::use_awaitable, reply.error));
    }
    if (reply.error) co_return reply;
    std::string line = session->input.substr(0, n - 2);
    session->input.erase(0, n);
    if (!reply.text.empty()) reply.text += '\n';
    reply.text += line;
    bool shaped = line.size() >= 3 && std::isdigit(static_cast<unsigned char>(line[0])) &&
                  std::isdigit(static_cast<unsigned char>(line[1])) &&
                  std::isdigit(static_cast<unsigned char>(line[2])) &&
                  (line.size() == 3 || line[3] == ' ' || line[3] == '-');
    if (!shaped) {
      reply.code = 0;
      co_return reply;
    }
    int code = std::stoi(line.substr(0, 3));
    if (reply.code != 0 && code != reply.code) {
      reply.code = 0;
      co_return reply;
    }
    reply.code = code;
    if (line.size() == 3 || line[3] == ' ') co_return reply;
  }
}

asio::awaitable<boost::system::error_code> Write(std::shared_ptr<Session> session, std::string text,
                                                 std::chrono::steady_clock::time_point deadline) {
  boost::system::error_code ec;
  session->stream.expires_at(deadline);
  if (session->tls) {
    co_await asio::async_write(*session->tls, asio::buffer(text),
                               asio::redirect_error(asio::use_awaitable, ec));
  } else {
    co_await asio::async_write(session->stream, asio::buffer(text),
                               asio::redirect_error(asio::use_awaitable, ec));
  }
  co_return ec;
}

// Ends the conversation politely (best effort: a failure is ignored) and returns `outcome`.
asio::awaitable<StepOutcome> Quit(std::shared_ptr<Session> session,
                                  std::chrono::steady_clock::time_point deadline,
                                  StepOutcome outcome) {
  co_await Write(session, "QUIT\r\n", deadline);
  boost::system::error_code ignored;
  session->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  session->stream.close();
  co_return outcome;
}

}  // namespace

// g++ 12 at -O2 reports coroutine frames as freed by a mismatched operator delete: a false
// positive (Asio's awaitable_frame_base declares the matching operator new and delete).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
asio::awaitable<StepOutcome> NotifyAdapter::Send(StepRequest request, std::vector<std::string> to,
                                                 std::string subject, std::string body) {
  const Smtp& smtp = *settings_.smtp;
  const std::string label = CallLabel(department_, request.operation);
  const std::string server = smtp.host + ":" + std::to_string(smtp.port);
  const std::chrono::milliseconds limit = EffectiveTimeout(request.timeout, smtp.timeout);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  const std::string message_id = MessageIdFor(request.idempotency_key, smtp.from);

  auto session = std::make_shared<Session>(co_await asio::this_coro::executor);

  // Failures of the network or the clock, and replies that are not the expected one.
  auto network_failure = [&](const boost::system::error_code& ec, const std::string& doing) {
    if (ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      return StepOutcome::Retry(label + ": mail server " + server + " timed out after " +
                                DescribeDuration(limit) + " " + doing);
    }
    return StepOutcome::Retry(label + ": mail server " + server + " failed " + doing + ": " +
                              ec.message());
  };
  auto refused = [&](const Reply& reply, const std::string& after) {
    std::string text = label + ": mail server " + server + " answered " + after +
                       " with: " + Excerpt(reply.text, kReplyInMessage);
    if (reply.code >= 500 && reply.code < 600) return StepOutcome::Failed(std::move(text));
    return StepOutcome::Retry(std::move(text));
  };

  // Resolve (bounded by a timer that cancels the resolver) and connect.
  boost::system::error_code ec;
  session->resolve_deadline.expires_at(deadline);
  asio::co_spawn(session->stream.get_executor(), CancelResolveAtDeadline(session), asio::detached);
  auto endpoints = co_await session->resolver.async_resolve(
      smtp.host, std::to_string(smtp.port), asio::redirect_error(asio::use_awaitable, ec));
  session->resolve_deadline.cancel();
  if (ec) co_return network_failure(ec, "resolving its name");
  session->stream.expires_at(deadline);
  co_await session->stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) co_return network_failure(ec, "connecting");

  Reply reply = co_await ReadReply(session, deadline);
  if (reply.error) co_return network_failure(reply.error, "waiting for its greeting");
  if (reply.code != 220)
    co_return co_await Quit(session, deadline, refused(reply, "the connection"));

  // One command and its reply; `reply` holds the answer unless the result is an error.
  auto command = [](std::shared_ptr<Session> s, std::string line,
                    std::chrono::steady_clock::time_point until) -> asio::awaitable<Reply> {
    Reply answer;
    answer.error = co_await Write(s, std::move(line), until);
    if (answer.error) co_return answer;
    co_return co_await ReadReply(s, until);
  };

  const bool starttls = smtp.starttls == StartTls::kRequired;
  reply = co_await command(session, "EHLO " + smtp.helo + "\r\n", deadline);
  if (reply.error) co_return network_failure(reply.error, "after EHLO");
  if (reply.code >= 500 && reply.code < 600 && !starttls) {
    reply = co_await command(session, "HELO " + smtp.helo + "\r\n", deadline);
    if (reply.error) co_return network_failure(reply.error, "after HELO");
    if (reply.code != 250) co_return co_await Quit(session, deadline, refused(reply, "HELO"));
  } else if (reply.code != 250) {
    co_return co_await Quit(session, deadline, refused(reply, "EHLO"));
  }
  Capabilities offered = ParseCapabilities(reply.text);

  if (starttls) {
    if (!offered.starttls) {
      co_return co_await Quit(
          session, deadline,
          StepOutcome::Failed(label + ": mail server " + server +
                              " does not offer STARTTLS; nothing was sent (the message is not "
                              "sent in clear: smtp.starttls is required)"));
    }
    reply = co_await command(session, "STARTTLS\r\n", deadline);
    if (reply.error) co_return network_failure(reply.error, "after STARTTLS");
    if (reply.code != 220) co_return co_await Quit(session, deadline, refused(reply, "STARTTLS"));
    if (!session->input.empty()) {
      // Bytes sent in clear after the 220 would be taken as answers inside TLS (CVE-2011-0411
      // turned around): someone is injecting them.
      co_return StepOutcome::Failed(label + ": mail server " + server +
                                    " sent data in clear after agreeing to STARTTLS; nothing "
                                    "was sent");
    }
    session->tls.emplace(session->stream, *tls_);
    boost::system::error_code tls_ec;
    PrepareTlsClient(*session->tls, smtp.host, true, &session->verify_error, tls_ec);
    if (tls_ec) co_return network_failure(tls_ec, "preparing TLS");
    session->stream.expires_at(deadline);
    co_await session->tls->async_handshake(ssl::stream_base::client,
                                           asio::redirect_error(asio::use_awaitable, tls_ec));
    if (tls_ec) {
      boost::system::error_code ignored;
      session->stream.socket().close(ignored);
      if (!session->verify_error.empty() || !tls_error_.empty()) {
        co_return StepOutcome::Failed(
            label + ": mail server " + server + "'s TLS certificate does not verify: " +
            (session->verify_error.empty() ? tls_error_ : session->verify_error) +
            "; nothing was sent");
      }
      co_return network_failure(tls_ec, "in the TLS handshake");
    }
    // RFC 3207: forget what was said in clear and ask again.
    reply = co_await command(session, "EHLO " + smtp.helo + "\r\n", deadline);
    if (reply.error) co_return network_failure(reply.error, "after EHLO in TLS");
    if (reply.code != 250) co_return co_await Quit(session, deadline, refused(reply, "EHLO"));
    offered = ParseCapabilities(reply.text);
  }

  if (smtp.auth) {
    // Create refuses `auth` without STARTTLS, so this runs only inside TLS.
    const Auth& auth = *smtp.auth;
    auto offers = [&](const char* mechanism) {
      return std::find(offered.auth.begin(), offered.auth.end(), mechanism) != offered.auth.end();
    };
    bool plain = offers("PLAIN") && auth.mechanism != AuthMechanism::kLogin;
    bool login = !plain && offers("LOGIN") && auth.mechanism != AuthMechanism::kPlain;
    if (!plain && !login) {
      std::string wanted = auth.mechanism == AuthMechanism::kPlain   ? "PLAIN"
                           : auth.mechanism == AuthMechanism::kLogin ? "LOGIN"
                                                                     : "PLAIN or LOGIN";
      std::string has = offered.auth.empty() ? "no AUTH" : "AUTH";
      for (const std::string& mechanism : offered.auth) has += " " + mechanism;
      co_return co_await Quit(
          session, deadline,
          StepOutcome::Failed(label + ": mail server " + server + " does not offer AUTH " + wanted +
                              " (it offers " + has + "); nothing was sent"));
    }
    if (plain) {
      reply = co_await command(
          session,
          "AUTH PLAIN " + mail::Base64(std::string(1, '\0') + auth.user + '\0' + auth.password) +
              "\r\n",
          deadline);
    } else {
      reply = co_await command(session, "AUTH LOGIN\r\n", deadline);
      if (!reply.error && reply.code == 334) {
        reply = co_await command(session, mail::Base64(auth.user) + "\r\n", deadline);
      }
      if (!reply.error && reply.code == 334) {
        reply = co_await command(session, mail::Base64(auth.password) + "\r\n", deadline);
      }
    }
    if (reply.error) co_return network_failure(reply.error, "after AUTH");
    if (reply.code != 235) co_return co_await Quit(session, deadline, refused(reply, "AUTH"));
  }

  reply = co_await command(session, "MAIL FROM:<" + smtp.from + ">\r\n", deadline);
  if (reply.error) co_return network_failure(reply.error, "after MAIL FROM");
  if (reply.code != 250) co_return co_await Quit(session, deadline, refused(reply, "MAIL FROM"));

  for (const std::string& address : to) {
    reply = co_await command(session, "RCPT TO:<" + address + ">\r\n", deadline);
    if (reply.error) co_return network_failure(reply.error, "after RCPT TO");
    if (reply.code != 250 && reply.code != 251) {
      co_return co_await Quit(session, deadline, refused(reply, "RCPT TO:<" + address + ">"));
    }
  }

  reply = co_await command(session, "DATA\r\n", deadline);
  if (reply.error) co_return network_failure(reply.error, "after DATA");
  if (reply.code != 354) co_return co_await Quit(session, deadline, refused(reply, "DATA"));

  std::string to_header;
  for (const std::string& address : to) {
    if (!to_header.empty()) to_header += ",\r\n ";
    to_header += address;
  }
  std::string message;
  message += "From: " + smtp.from + "\r\n";
  message += "To: " + to_header + "\r\n";
  message += "Subject: " + mail::EncodeSubject(subject) + "\r\n";
  message += "Date: " + mail::MailDate(std::time(nullptr)) + "\r\n";
  message += "Message-ID: " + message_id + "\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=utf-8\r\n";
  message += "Content-Transfer-Encoding: 8bit\r\n";
  message += "\r\n";
  message += mail::DataSection(body);
  reply = co_await command(session, std::move(message), deadline);
  if (reply.error) co_return network_failure(reply.error, "after the message");
  if (reply.code != 250) co_return co_await Quit(session, deadline, refused(reply, "the message"));

  // (Built outside the co_await: g++ 12 cannot keep a braced list in a coroutine's temporaries.)
  nlohmann::json result = {{"delivered_to", to}, {"message_id", message_id}};
  co_return co_await Quit(session, deadline, StepOutcome::Done(std::move(result)));
}
#pragma GCC diagnostic pop

}  // namespace wf::adapters
