#include "adapters/notify.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>

#include "adapters/asio.hpp"

#include <openssl/ssl.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "adapters/settings.hpp"
#include "adapters/tls_client.hpp"

namespace wf::adapters {

namespace {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
namespace fs = std::filesystem;

constexpr std::size_t kMaxReplyBytes = 64 * 1024;  // a longer reply is not SMTP
constexpr std::size_t kReplyInMessage = 500;
// The escaped key is a file name with ".json" and, for the temporary file, about 30 bytes more:
// well below NAME_MAX (255).
constexpr std::size_t kMaxEscapedKeyBytes = 200;
constexpr std::size_t kMaxAddressBytes = 254;

bool ContainsExpression(std::string_view text) { return text.find("${") != std::string::npos; }

// A plain `local@domain` address: no spaces, controls or the characters that would let it break
// out of `<...>` in an SMTP command or a header.
bool IsAddress(std::string_view text) {
  if (text.empty() || text.size() > kMaxAddressBytes) return false;
  std::size_t at = text.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == text.size()) return false;
  for (unsigned char c : text) {
    if (c <= 0x20 || c == 0x7f) return false;
    if (std::strchr("<>(),;:\"[]\\", c) != nullptr) return false;
  }
  return true;
}

// Letters, digits and '-' kept; every other byte "_XX". Injective, and safe both as a file name
// and in a Message-ID's left part.
std::string EscapeKey(std::string_view key) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : key) {
    bool keep =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
    if (keep) {
      out += static_cast<char>(c);
    } else {
      out += '_';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base64(std::string_view data) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t n = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8) |
                 uint32_t(uint8_t(data[i + 2]));
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += kAlphabet[n & 63];
  }
  if (i + 1 == data.size()) {
    uint32_t n = uint32_t(uint8_t(data[i])) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == data.size()) {
    uint32_t n = (uint32_t(uint8_t(data[i])) << 16) | (uint32_t(uint8_t(data[i + 1])) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// The subject as a header value: as it is when printable ASCII, otherwise RFC 2047 encoded words
// ("=?UTF-8?B?...?=", at most 75 characters each, never splitting a UTF-8 character) folded onto
// continuation lines. Line breaks in the subject become spaces first (no header injection).
std::string EncodeSubject(std::string subject) {
  std::replace(subject.begin(), subject.end(), '\r', ' ');
  std::replace(subject.begin(), subject.end(), '\n', ' ');
  bool plain = std::all_of(subject.begin(), subject.end(), [](char c) {
    auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f;
  });
  if (plain && subject.find("=?") == std::string::npos && subject.size() <= 900) return subject;
  // 75 - len("=?UTF-8?B?") - len("?=") = 63 base64 characters: 45 bytes of text at most.
  constexpr std::size_t kChunk = 45;
  std::string out;
  std::size_t start = 0;
  while (start < subject.size()) {
    std::size_t end = std::min(subject.size(), start + kChunk);
    // Back off to the start of a UTF-8 character (never below start + 1).
    while (end < subject.size() && end > start + 1 &&
           (static_cast<unsigned char>(subject[end]) & 0xC0) == 0x80) {
      --end;
    }
    if (!out.empty()) out += "\r\n ";
    out += "=?UTF-8?B?" + Base64(std::string_view(subject).substr(start, end - start)) + "?=";
    start = end;
  }
  return out;
}

// RFC 5322 date, in UTC, independent of the locale.
std::string MailDate(std::time_t now) {
  static const char* const kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static const char* const kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64];
  std::snprintf(text, sizeof text, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return text;
}

std::string IsoTime(std::time_t now) {
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// The body with CRLF line ends, dot-stuffed, ending in CRLF, followed by the end-of-data line.
std::string DataSection(std::string_view body) {
  std::string out;
  out.reserve(body.size() + body.size() / 16 + 8);
  bool line_start = true;
  for (std::size_t i = 0; i < body.size(); ++i) {
    char c = body[i];
    if (line_start && c == '.') out += '.';
    line_start = false;
    if (c == '\r') {
      out += "\r\n";
      if (i + 1 < body.size() && body[i + 1] == '\n') ++i;
      line_start = true;
    } else if (c == '\n') {
      out += "\r\n";
      line_start = true;
    } else {
      out += c;
    }
  }
  if (!line_start) out += "\r\n";
  out += ".\r\n";
  return out;
}

// Reads `to`: an address or a non-empty list of them, duplicates dropped. An error text otherwise.
Result<std::vector<std::string>> Recipients(const nlohmann::json& to) {
  std::vector<std::string> out;
  auto add = [&out](const nlohmann::json& item) -> Status {
    if (!item.is_string()) {
      return Status::Invalid("`to` holds " + Excerpt(item.dump(), 100) + ", not an address");
    }
    std::string address = item.get<std::string>();
    if (!IsAddress(address)) {
      return Status::Invalid("`to` holds '" + Excerpt(address, 100) + "', not an e-mail address");
    }
    if (std::find(out.begin(), out.end(), address) == out.end()) out.push_back(address);
    return Status::Ok();
  };
  if (to.is_array()) {
    if (to.empty()) return Status::Invalid("`to` is an empty list");
    for (const auto& item : to) {
      Status status = add(item);
      if (!status.ok()) return status;
    }
  } else if (to.is_null()) {
    return Status::Invalid("`to` is required: an e-mail address or a list of them");
  } else {
    Status status = add(to);
    if (!status.ok()) return status;
  }
  return out;
}

// A field that must be text; numbers and booleans are written out, null or absent is "".
Result<std::string> TextField(const nlohmann::json& fields, const char* name) {
  auto it = fields.find(name);
  if (it == fields.end() || it->is_null()) return std::string();
  if (it->is_string()) return it->get<std::string>();
  if (it->is_number() || it->is_boolean()) return it->dump();
  return Status::Invalid(std::string("`") + name + "` must be text, not " + it->type_name());
}

bool IsLoopbackHost(std::string_view host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "localhost" || lower == "localhost.") return true;
  boost::system::error_code ec;
  asio::ip::address address = asio::ip::make_address(lower, ec);
  return !ec && address.is_loopback();
}

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

// Creates `dir` and each missing parent with mode 0700 (an existing folder keeps its mode).
std::error_code CreatePrivateFolders(const fs::path& dir) {
  std::error_code error;
  if (dir.empty() || fs::is_directory(dir, error)) return {};
  fs::path parent = dir.parent_path();
  if (parent != dir) {
    if (std::error_code parent_error = CreatePrivateFolders(parent)) return parent_error;
  }
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return std::error_code(errno, std::generic_category());
  }
  return {};
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

// Reads `auth: {user, password, mechanism}`; `text` reads one text setting (substituted).
using ReadText = std::function<Result<std::string>(const nlohmann::json&, const std::string&)>;

Result<NotifyAdapter::Auth> ParseAuth(const nlohmann::json& value, const std::string& where,
                                      const ReadText& text) {
  if (!value.is_object()) {
    return Status::Invalid(where + ": must be a mapping {user, password, mechanism}");
  }
  NotifyAdapter::Auth auth;
  bool has_user = false;
  bool has_password = false;
  for (const auto& [name, setting] : value.items()) {
    const std::string at = where + "." + name;
    if (name == "user" || name == "password") {
      auto read = text(setting, at);
      if (!read) return read.error();
      (name == "user" ? auth.user : auth.password) = std::move(*read);
      (name == "user" ? has_user : has_password) = true;
    } else if (name == "mechanism") {
      std::string mechanism = setting.is_string() ? setting.get<std::string>() : "";
      std::transform(mechanism.begin(), mechanism.end(), mechanism.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (mechanism == "plain") {
        auth.mechanism = NotifyAdapter::AuthMechanism::kPlain;
      } else if (mechanism == "login") {
        auth.mechanism = NotifyAdapter::AuthMechanism::kLogin;
      } else {
        return Status::Invalid(at + ": must be plain or login");
      }
    } else {
      return Status::Invalid(where + ": unknown auth setting `" + name +
                             "` (known: user, password, mechanism)");
    }
  }
  if (!has_user || !has_password) {
    return Status::Invalid(where + ": `user` and `password` are both required");
  }
  return auth;
}

}  // namespace

NotifyAdapter::NotifyAdapter(std::string department, Settings settings)
    : department_(std::move(department)), settings_(std::move(settings)) {
  if (!settings_.smtp || settings_.smtp->starttls != StartTls::kRequired) return;
  tls_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls_->native_handle(), TLS1_2_VERSION);
  boost::system::error_code ec;
  if (settings_.smtp->ca.empty()) {
    tls_->set_default_verify_paths(ec);
  } else {
    tls_->load_verify_file(settings_.smtp->ca, ec);
  }
  if (ec) tls_error_ = ec.message();
  tls_->set_verify_mode(ssl::verify_peer, ec);
}

NotifyAdapter::~NotifyAdapter() = default;

std::string NotifyAdapter::MessageIdFor(std::string_view idempotency_key, std::string_view from) {
  std::string domain = "wf.invalid";
  std::size_t at = from.rfind('@');
  if (at != std::string_view::npos && at + 1 < from.size()) domain = from.substr(at + 1);
  return "<wf." + EscapeKey(idempotency_key) + "@" + domain + ">";
}

std::string NotifyAdapter::OutboxFileName(std::string_view idempotency_key) {
  return EscapeKey(idempotency_key) + ".json";
}

Result<std::unique_ptr<NotifyAdapter>> NotifyAdapter::Create(std::string department,
                                                             const nlohmann::json& settings) {
  const std::string where = "department '" + department + "'";
  if (!settings.is_object()) return Status::Invalid(where + ": settings must be a mapping");
  Settings parsed;
  bool has_outbox = false;
  // Reads a text setting with `${env.NAME}` substituted.
  auto text = [](const nlohmann::json& value, const std::string& at) -> Result<std::string> {
    if (!value.is_string() || value.get<std::string>().empty()) {
      return Status::Invalid(at + ": must be non-empty text");
    }
    auto substituted = SubstituteEnv(value.get<std::string>(), at);
    if (!substituted) return substituted.error();
    if (substituted->find_first_of(std::string("\r\n\0", 3)) != std::string::npos) {
      return Status::Invalid(at + ": holds a line break or NUL character");
    }
    return substituted;
  };
  for (const auto& [key, value] : settings.items()) {
    if (key == "smtp") {
      if (!value.is_object()) {
        return Status::Invalid(where +
                               ": `smtp` must be a mapping {host, port, from, helo, "
                               "timeout}");
      }
      Smtp smtp;
      std::optional<StartTls> starttls;  // unset: the default for the host
      bool has_host = false;
      bool has_from = false;
      for (const auto& [name, setting] : value.items()) {
        const std::string at = where + ": smtp." + name;
        if (name == "host") {
          auto host = text(setting, at);
          if (!host) return host.error();
          smtp.host = std::move(*host);
          has_host = true;
        } else if (name == "port") {
          int64_t port = 0;
          if (setting.is_number_integer()) {
            port = setting.get<int64_t>();
          } else if (setting.is_string()) {
            auto port_text = text(setting, at);
            if (!port_text) return port_text.error();
            char* end = nullptr;
            port = std::strtoll(port_text->c_str(), &end, 10);
            if (end == nullptr || *end != '\0') port = 0;
          }
          if (port < 1 || port > 65535) {
            return Status::Invalid(at + ": must be a port number from 1 to 65535");
          }
          smtp.port = static_cast<uint16_t>(port);
        } else if (name == "from") {
          auto from = text(setting, at);
          if (!from) return from.error();
          if (!IsAddress(*from)) {
            return Status::Invalid(at + ": '" + Excerpt(*from, 100) +
                                   "' is not an e-mail address (local@domain)");
          }
          smtp.from = std::move(*from);
          has_from = true;
        } else if (name == "helo") {
          auto helo = text(setting, at);
          if (!helo) return helo.error();
          if (helo->find(' ') != std::string::npos) {
            return Status::Invalid(at + ": must be one host name, without spaces");
          }
          smtp.helo = std::move(*helo);
        } else if (name == "timeout") {
          if (setting.is_null()) continue;
          auto timeout = ParseDurationSetting(setting, at);
          if (!timeout) return timeout.error();
          smtp.timeout = *timeout;
        } else if (name == "starttls") {
          if (setting == true || setting == "required") {
            starttls = StartTls::kRequired;
          } else if (setting == false) {
            starttls = StartTls::kOff;
          } else {
            return Status::Invalid(at + ": must be `required` (or true) or false");
          }
        } else if (name == "ca") {
          auto ca = text(setting, at);
          if (!ca) return ca.error();
          smtp.ca = std::move(*ca);
        } else if (name == "auth") {
          auto auth = ParseAuth(setting, at, text);
          if (!auth) return auth.error();
          smtp.auth = std::move(*auth);
        } else {
          return Status::Invalid(where + ": unknown smtp setting `" + name +
                                 "` (known: host, port, from, helo, timeout, starttls, ca, auth)");
        }
      }
      if (!has_host) return Status::Invalid(where + ": smtp.host is required");
      if (!has_from) return Status::Invalid(where + ": smtp.from is required: the sender address");
      // Citizens' data goes out in clear only to this machine or when the settings say so.
      smtp.starttls = starttls.value_or(
          IsLoopbackHost(smtp.host) && !smtp.auth ? StartTls::kOff : StartTls::kRequired);
      if (smtp.starttls == StartTls::kOff && smtp.auth) {
        return Status::Invalid(where +
                               ": smtp.auth needs STARTTLS: credentials are never sent in clear "
                               "(remove `starttls: false`)");
      }
      if (smtp.starttls == StartTls::kOff && !smtp.ca.empty()) {
        return Status::Invalid(where + ": smtp.ca is used only with STARTTLS, which is off");
      }
      parsed.smtp = std::move(smtp);
    } else if (key == "outbox") {
      auto outbox = text(value, where + ": `outbox`");
      if (!outbox) return outbox.error();
      parsed.outbox = std::move(*outbox);
      has_outbox = true;
    } else {
      return Status::Invalid(where + ": unknown notify setting `" + key +
                             "` (known: smtp, outbox)");
    }
  }
  if (parsed.smtp && has_outbox) {
    return Status::Invalid(where + ": `smtp` and `outbox` exclude each other: choose one");
  }
  if (!parsed.smtp && !has_outbox) {
    return Status::Invalid(where + ": `smtp` (a mail server) or `outbox` (a folder) is required");
  }
  auto adapter = std::make_unique<NotifyAdapter>(std::move(department), std::move(parsed));
  if (!adapter->tls_error_.empty()) {
    const std::string& ca = adapter->settings_.smtp->ca;
    return Status::Invalid(
        where + (ca.empty() ? ": the system's trusted certificates" : ": smtp.ca '" + ca + "'") +
        " cannot be loaded: " + adapter->tls_error_);
  }
  return adapter;
}

Status NotifyAdapter::Validate(const StepCall& call) const {
  const std::string where = "department '" + department_ + "'";
  if (!call.call.is_object()) {
    return Status::Invalid(where + ": the call must be a mapping with at least `to`");
  }
  auto to = call.call.find("to");
  if (to == call.call.end() || to->is_null()) {
    return Status::Invalid(where + ": `to` is required: an e-mail address or a list of them");
  }
  auto check = [&](const nlohmann::json& item) -> Status {
    if (!item.is_string()) {
      return Status::Invalid(where + ": `to` holds " + Excerpt(item.dump(), 100) +
                             ", not an address");
    }
    const std::string& address = item.get_ref<const std::string&>();
    if (!ContainsExpression(address) && !IsAddress(address)) {
      return Status::Invalid(where + ": `to` holds '" + Excerpt(address, 100) +
                             "', not an e-mail address");
    }
    return Status::Ok();
  };
  if (to->is_array()) {
    if (to->empty()) return Status::Invalid(where + ": `to` is an empty list");
    for (const auto& item : *to) {
      Status status = check(item);
      if (!status.ok()) return status;
    }
  } else {
    Status status = check(*to);
    if (!status.ok()) return status;
  }
  for (const char* name : {"subject", "body", "operation"}) {
    auto it = call.call.find(name);
    if (it != call.call.end() && !it->is_string() && !it->is_null() &&
        !(std::string_view(name) == "body" && (it->is_number() || it->is_boolean()))) {
      return Status::Invalid(where + ": `" + name + "` must be text");
    }
  }
  return Status::Ok();
}

asio::awaitable<StepOutcome> NotifyAdapter::Invoke(StepRequest request) {
  const std::string label = CallLabel(department_, request.operation);
  try {
    if (!request.fields.is_object()) {
      co_return StepOutcome::Failed(label + ": the call's fields are not a mapping");
    }
    auto to_field = request.fields.find("to");
    auto to = Recipients(to_field == request.fields.end() ? nlohmann::json() : *to_field);
    if (!to) co_return StepOutcome::Failed(label + ": " + to.error().message());
    auto subject = TextField(request.fields, "subject");
    if (!subject) co_return StepOutcome::Failed(label + ": " + subject.error().message());
    auto body = TextField(request.fields, "body");
    if (!body) co_return StepOutcome::Failed(label + ": " + body.error().message());
    if (request.idempotency_key.empty()) {
      co_return StepOutcome::Failed(label + ": the call has no idempotency key");
    }
    if (OutboxFileName(request.idempotency_key).size() > kMaxEscapedKeyBytes + 5) {
      co_return StepOutcome::Failed(label + ": the idempotency key is too long (" +
                                    std::to_string(request.idempotency_key.size()) + " bytes)");
    }
    if (!settings_.smtp) co_return WriteOutbox(request, *to, *subject, *body);
    co_return co_await Send(std::move(request), std::move(*to), std::move(*subject),
                            std::move(*body));
  } catch (const std::exception& e) {
    co_return StepOutcome::Retry(label + ": internal error in the notify adapter: " + e.what());
  }
}

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
          "AUTH PLAIN " + Base64(std::string(1, '\0') + auth.user + '\0' + auth.password) + "\r\n",
          deadline);
    } else {
      reply = co_await command(session, "AUTH LOGIN\r\n", deadline);
      if (!reply.error && reply.code == 334) {
        reply = co_await command(session, Base64(auth.user) + "\r\n", deadline);
      }
      if (!reply.error && reply.code == 334) {
        reply = co_await command(session, Base64(auth.password) + "\r\n", deadline);
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
  message += "Subject: " + EncodeSubject(subject) + "\r\n";
  message += "Date: " + MailDate(std::time(nullptr)) + "\r\n";
  message += "Message-ID: " + message_id + "\r\n";
  message += "MIME-Version: 1.0\r\n";
  message += "Content-Type: text/plain; charset=utf-8\r\n";
  message += "Content-Transfer-Encoding: 8bit\r\n";
  message += "\r\n";
  message += DataSection(body);
  reply = co_await command(session, std::move(message), deadline);
  if (reply.error) co_return network_failure(reply.error, "after the message");
  if (reply.code != 250) co_return co_await Quit(session, deadline, refused(reply, "the message"));

  // (Built outside the co_await: g++ 12 cannot keep a braced list in a coroutine's temporaries.)
  nlohmann::json result = {{"delivered_to", to}, {"message_id", message_id}};
  co_return co_await Quit(session, deadline, StepOutcome::Done(std::move(result)));
}
#pragma GCC diagnostic pop

StepOutcome NotifyAdapter::WriteOutbox(const StepRequest& request,
                                       const std::vector<std::string>& to,
                                       const std::string& subject, const std::string& body) const {
  static std::atomic<uint64_t> counter{0};
  const std::string label = CallLabel(department_, request.operation);
  std::time_t now = std::time(nullptr);
  nlohmann::json message = {
      {"to", to},
      {"subject", subject},
      {"body", body},
      {"operation", request.operation},
      {"message_id", MessageIdFor(request.idempotency_key, "")},
      {"idempotency_key", request.idempotency_key},
      {"case", request.case_id},
      {"step", request.step},
      {"written_at", IsoTime(now)},
  };
  std::string text = message.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";

  fs::path dir(settings_.outbox);
  std::error_code fs_error = CreatePrivateFolders(dir);
  if (fs_error) {
    return StepOutcome::Retry(label + ": cannot create the outbox folder '" + dir.string() +
                              "': " + fs_error.message());
  }
  fs::path final_path = dir / OutboxFileName(request.idempotency_key);
  fs::path temp_path = dir / ("." + final_path.filename().string() + ".tmp." +
                              std::to_string(::getpid()) + "." + std::to_string(++counter));
  auto fail = [&](const std::string& what, int error) {
    ::unlink(temp_path.c_str());
    return StepOutcome::Retry(label + ": cannot " + what + " '" + final_path.string() +
                              "': " + std::strerror(error));
  };
  // Owner only from the start: the message holds personal data.
  int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) return fail("write", errno);
  std::size_t written = 0;
  while (written < text.size()) {
    ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      return fail("write", error);
    }
    written += static_cast<std::size_t>(n);
  }
  if (::fsync(fd) != 0) {
    int error = errno;
    ::close(fd);
    return fail("write", error);
  }
  if (::close(fd) != 0) return fail("write", errno);
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) return fail("rename onto", errno);
  // Make the rename itself durable.
  int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
  return StepOutcome::Done({{"outbox", final_path.string()}});
}

Result<nlohmann::json> NotifyAdapter::ListOutbox(const std::string& dir) {
  try {
    std::error_code error;
    if (!fs::is_directory(dir, error)) {
      return Status::NotFound("outbox '" + dir + "' is not a folder");
    }
    std::vector<nlohmann::json> messages;
    fs::directory_iterator it(dir, error);
    if (error) return Status::Internal("cannot read outbox '" + dir + "': " + error.message());
    for (; it != fs::directory_iterator(); it.increment(error)) {
      const fs::path& path = it->path();
      std::string name = path.filename().string();
      if (name.empty() || name[0] == '.' || path.extension() != ".json") continue;
      std::ifstream in(path, std::ios::binary);
      std::stringstream content;
      content << in.rdbuf();
      nlohmann::json message = nlohmann::json::parse(content.str(), nullptr, false);
      if (!in || message.is_discarded() || !message.is_object()) {
        messages.push_back({{"file", path.string()}, {"error", "not a JSON object"}});
        continue;
      }
      message["file"] = path.string();
      messages.push_back(std::move(message));
    }
    if (error) return Status::Internal("cannot read outbox '" + dir + "': " + error.message());
    auto written_at = [](const nlohmann::json& m) {
      auto at = m.find("written_at");
      return at != m.end() && at->is_string() ? at->get<std::string>() : std::string();
    };
    std::sort(messages.begin(), messages.end(), [&](const auto& a, const auto& b) {
      std::string wa = written_at(a);
      std::string wb = written_at(b);
      if (wa != wb) return wa < wb;
      return a["file"].template get<std::string>() < b["file"].template get<std::string>();
    });
    return nlohmann::json(std::move(messages));
  } catch (const std::exception& e) {
    return Status::Internal("cannot read outbox '" + dir + "': " + e.what());
  }
}

}  // namespace wf::adapters
