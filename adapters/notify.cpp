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

#include "adapters/mail_format.hpp"
#include "adapters/settings.hpp"
#include "adapters/tls_client.hpp"

namespace wf::adapters {

namespace {

namespace beast = boost::beast;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
namespace fs = std::filesystem;

// The escaped key is a file name with ".json" and, for the temporary file, about 30 bytes more:
// well below NAME_MAX (255).
constexpr std::size_t kMaxEscapedKeyBytes = 200;

bool ContainsExpression(std::string_view text) { return text.find("${") != std::string::npos; }

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

// Reads `to`: an address or a non-empty list of them, duplicates dropped. An error text otherwise.
Result<std::vector<std::string>> Recipients(const nlohmann::json& to) {
  std::vector<std::string> out;
  auto add = [&out](const nlohmann::json& item) -> Status {
    if (!item.is_string()) {
      return Status::Invalid("`to` holds " + Excerpt(item.dump(), 100) + ", not an address");
    }
    std::string address = item.get<std::string>();
    if (!mail::IsAddress(address)) {
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
          if (!mail::IsAddress(*from)) {
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
    if (!ContainsExpression(address) && !mail::IsAddress(address)) {
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
      {"written_at", mail::IsoTime(now)},
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
