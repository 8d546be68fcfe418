#pragma once

// The `notify` adapter: a message to an applicant or a clerk, sent by e-mail over SMTP or, where
// a deployment has no mail server, written to an outbox folder that people or another program
// read.
//
// Department settings (engine::Department::settings), exactly one of `smtp` and `outbox`:
//   smtp:                       # deliver through a mail server
//     host: mail.example.gov    # required
//     port: 587                 # optional, 25 by default
//     from: wf@example.gov      # required: the envelope sender and the From header
//     helo: wf.example.gov      # optional, "wf" by default: the name given in EHLO/HELO
//     timeout: 10s              # optional cap on every call's time (the step's timeout otherwise)
//     starttls: required        # `required` (or true) or false; see "STARTTLS" below
//     ca: /etc/wf/mail-ca.pem   # optional PEM file of trusted roots instead of the system's
//     auth: {user: wf, password: "${env.SMTP_PASSWORD}", mechanism: plain}  # optional
//   outbox: /var/lib/wf/outbox  # write one JSON file per message instead
// Unknown keys are refused, and so are both `smtp` and `outbox` together (one of them would be
// silently unused). `${env.NAME}` in host, from, helo, ca, auth.user, auth.password and outbox is
// replaced from the environment once, when the adapter is created; the `ca` file is loaded then.
//
// STARTTLS (RFC 3207): messages carry citizens' personal data, so `starttls` is `required` by
// default: the adapter sends STARTTLS after EHLO, verifies the server's certificate against the
// system's trusted roots (or `ca`) and checks that it names `host` (DNS name or IP address), then
// says EHLO again and forgets everything the server said in clear. A server that does not offer
// STARTTLS, a certificate that does not verify or name the host, or plaintext the server sent
// after its 220 to STARTTLS -> kFailed naming the department and the server, before any
// envelope or message byte is sent. The one exception to the default: a loopback host
// (`localhost`, 127.0.0.0/8, ::1) without `auth` defaults to `starttls: false`, because the
// message never leaves the machine (a local relay, which does its own TLS onwards).
// `starttls: false` must otherwise be written explicitly (a relay on a trusted network that has
// no TLS) and is refused together with `auth` or `ca`. TLS 1.2 at least.
//
// AUTH (RFC 4954), only with `auth` and only ever inside TLS: after the second EHLO, with
// `mechanism: plain` or `login` (case-insensitive), or without `mechanism` the first the server
// offers of PLAIN, LOGIN. A server that offers neither (or no AUTH at all) -> kFailed; 235 is
// success, another 5xx (535: bad credentials) -> kFailed, 4xx -> kRetry. Credentials never
// appear in an outcome's message.
//
// The call's fields:
//   to: applicant@example.org   # required: an e-mail address, or a non-empty list of them
//   subject: "Your birth registration"   # optional text (UTF-8)
//   body: "..."                 # optional text (UTF-8); numbers and booleans are written out
//   operation: appointment      # optional; not used to build the message (recorded in the outbox)
// Addresses are plain `local@domain` (no display names); duplicates are sent once.
//
// SMTP: one connection per call, on which the adapter reads the 220 greeting, sends EHLO (HELO
// when the server refuses EHLO with a 5xx and STARTTLS is off), STARTTLS and EHLO again and AUTH
// as above, MAIL FROM, one RCPT TO per recipient, DATA and the message, then QUIT. The message
// carries From, To, Subject (RFC 2047
// "=?UTF-8?B?...?=" encoded words when it is not plain ASCII), Date, Message-ID, MIME-Version,
// Content-Type: text/plain; charset=utf-8 and Content-Transfer-Encoding: 8bit; the body's line
// ends become CRLF and a line starting with '.' gets another '.' (dot-stuffing). The Message-ID
// is derived from the idempotency key alone ("<wf.KEY@DOMAIN-OF-FROM>", KEY escaped), so a
// resend after a lost answer carries the same id and mail systems and people can recognise it
// as the same message. The outcome:
//   every reply as expected (2xx, 354 after DATA) -> kDone
//        {"delivered_to": ["a@x", ...], "message_id": "<wf....@...>"}
//   a 4xx reply at any stage                      -> kRetry, with the server's reply
//   a 5xx reply at any stage (one refused recipient refuses the whole message: nothing is sent,
//   so a retry never sends twice to the others)   -> kFailed, with the server's reply
//   a reply that is not SMTP, a refused or reset connection, a DNS failure, past the timeout
//                                                 -> kRetry
//   `to` missing or not addresses, a subject or body that is not text -> kFailed
// The timeout covers the whole call (resolving, connecting, the conversation). Once the server
// has accepted the message (250 after the data), a failure of QUIT is ignored.
//
// Outbox (no `smtp`): the message is written as one JSON object to
// `<outbox>/<escaped idempotency key>.json` (letters, digits and '-' kept, every other byte
// written "_XX" in hex, so distinct keys never share a file), through a temporary file in the
// same folder renamed over the final name: readers see the old file or the new one, never a
// partial one, and a second call with the same key replaces the same file, so each key leaves
// exactly one message. The folder (and each missing parent) is created mode 0700 when missing and
// each file mode 0600 (owner only: they hold personal data; an existing folder keeps its mode).
// The object:
//   {"to": [...], "subject": "...", "body": "...", "operation": "...", "message_id": "<...>",
//    "idempotency_key": "...", "case": "...", "step": "...", "written_at": "2026-11-25T23:48:40Z"}
// The outcome: kDone {"outbox": "<path of the file>"}; a folder or file that cannot be written
// -> kRetry naming the path and the system's reason (an operator fixes it, a retry succeeds).
// The file is small and written on the calling thread (a blocking write of a few KiB).
//
// Every message starts with "<department> <operation>: ". Invoke runs on the executor of the
// coroutine that awaits it (the engine's I/O thread) and may be called concurrently: each call
// has its own connection; run that executor on one thread (as the engine does) or a strand.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "workflows/status.hpp"

namespace boost::asio::ssl {
class context;
}  // namespace boost::asio::ssl

namespace wf::adapters {

class NotifyAdapter final : public Adapter {
 public:
  // What Create reads from the department settings (environment variables substituted).
  enum class StartTls { kRequired, kOff };
  enum class AuthMechanism { kAny, kPlain, kLogin };
  struct Auth {
    std::string user;
    std::string password;
    AuthMechanism mechanism = AuthMechanism::kAny;
  };
  struct Smtp {
    std::string host;
    uint16_t port = 25;
    std::string from;
    std::string helo = "wf";
    std::optional<std::chrono::milliseconds> timeout;
    StartTls starttls = StartTls::kRequired;  // the default as resolved by Create (see above)
    std::string ca;                           // empty: the system's trusted roots
    std::optional<Auth> auth;
  };
  struct Settings {
    std::optional<Smtp> smtp;  // set: deliver by SMTP
    std::string outbox;        // otherwise: the outbox folder (never empty then)
  };

  // Reads `settings` of department `department`. kInvalid naming the department and the key for
  // neither or both of `smtp` and `outbox`, a missing host or from, a from that is not an
  // address, a bad port, helo, timeout, starttls or auth, `auth` or `ca` with `starttls: false`,
  // a `ca` file OpenSSL cannot load, an unset environment variable, or an unknown key. Never
  // throws; reads only the `ca` file (the outbox folder is created by the first message).
  static Result<std::unique_ptr<NotifyAdapter>> Create(std::string department,
                                                       const nlohmann::json& settings);
  // Use Create; public only so that Create can use make_unique. With STARTTLS it loads `ca`
  // (or the system's roots); a file that does not load leaves the adapter refusing every
  // certificate.
  NotifyAdapter(std::string department, Settings settings);
  ~NotifyAdapter() override;
  NotifyAdapter(const NotifyAdapter&) = delete;
  NotifyAdapter& operator=(const NotifyAdapter&) = delete;

  // The settings as Create resolved them (defaults filled in).
  const Settings& settings() const { return settings_; }

  // Checks that the call is a mapping with `to`: an address or a non-empty list of addresses
  // (text holding an expression `${ ... }` is accepted as it is, since it is rendered later), and
  // that `subject`, `body` and `operation`, when present, are text. No I/O.
  Status Validate(const StepCall& call) const override;
  // One attempt as described above. Never throws.
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;

  // The messages in outbox folder `dir` (for `wf outbox`): a JSON array of the objects written
  // by the outbox mode, each with "file" (its path) added, ordered by "written_at" and then by
  // file name. Temporary files of writes in progress are skipped; a file that is not a JSON
  // object appears as {"file": path, "error": why} so that nothing is hidden. kNotFound when
  // `dir` does not exist or is not a folder; kInternal when it cannot be read. Reads files only;
  // safe to call while the adapter writes (renames are atomic). Never throws.
  static Result<nlohmann::json> ListOutbox(const std::string& dir);

  // The Message-ID for an idempotency key and a sender address: "<wf.KEY@DOMAIN>", with the key
  // escaped like outbox file names and DOMAIN the sender's domain ("wf.invalid" without one).
  static std::string MessageIdFor(std::string_view idempotency_key, std::string_view from);
  // The outbox file name (without folder) for an idempotency key: "<escaped key>.json".
  static std::string OutboxFileName(std::string_view idempotency_key);

 private:
  asio::awaitable<StepOutcome> Send(StepRequest request, std::vector<std::string> to,
                                    std::string subject, std::string body);
  StepOutcome WriteOutbox(const StepRequest& request, const std::vector<std::string>& to,
                          const std::string& subject, const std::string& body) const;

  std::string department_;
  Settings settings_;
  std::unique_ptr<boost::asio::ssl::context> tls_;  // with STARTTLS only
  std::string tls_error_;                           // why `ca` did not load, for Create
};

}  // namespace wf::adapters
