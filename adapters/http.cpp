#include "adapters/http.hpp"

#include <poll.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "adapters/asio.hpp"

#include <openssl/ssl.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include "adapters/http_url.hpp"
#include "adapters/settings.hpp"
#include "adapters/tls_client.hpp"
#include "workflows/json_limits.hpp"

namespace wf::adapters {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace ssl = boost::asio::ssl;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kDefaultMaxResponseBytes = 1 << 20;
constexpr std::size_t kDefaultPoolSize = 16;
constexpr std::uint32_t kHeaderLimit = 64 * 1024;
constexpr std::size_t kBodyExcerptBytes = 500;

using http_url::EncodeOperation;
using http_url::HeaderSafe;
using http_url::IEquals;
using http_url::IsTokenChar;
using http_url::ParseUrl;
using http_url::Url;

// One kept-alive connection, plain or TLS, bound to the execution context that opened it.
struct Connection {
  asio::execution_context* context = nullptr;
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  // Why the peer's certificate was refused, filled by the verify callback during the handshake.
  std::string verify_error;

  beast::tcp_stream& Tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
};

// True when an idle connection has something to read: the server's close (EOF or reset) or
// bytes nobody asked for. Either way it must not carry the next request.
bool HasPendingInput(Connection& connection) {
  pollfd fd{};
  fd.fd = connection.Tcp().socket().native_handle();
  fd.events = POLLIN | POLLRDHUP;
  return ::poll(&fd, 1, 0) != 0;
}

// The idle connections of one adapter. Shared with the PoolWatch of every execution context that
// has connections in it, which drops them when that context shuts down: a socket must not outlive
// its io_context, and the adapter may well outlive the engine's.
class Pool {
 public:
  explicit Pool(std::size_t capacity) : capacity_(capacity) {}

  // An idle connection opened on `context`, or nullptr.
  std::unique_ptr<Connection> Take(asio::execution_context* context) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = idle_.rbegin(); it != idle_.rend(); ++it) {
      if ((*it)->context == context) {
        std::unique_ptr<Connection> found = std::move(*it);
        idle_.erase(std::next(it).base());
        return found;
      }
    }
    return nullptr;
  }

  // Keeps `connection` for reuse if there is room; returns true when the caller must make sure
  // its context's PoolWatch knows this pool (the first connection kept for that context).
  bool Put(std::unique_ptr<Connection>& connection) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (idle_.size() >= capacity_) return false;
    asio::execution_context* context = connection->context;
    idle_.push_back(std::move(connection));
    if (std::find(watched_.begin(), watched_.end(), context) != watched_.end()) return false;
    watched_.push_back(context);
    return true;
  }

  // Forgets `context`: its connections are destroyed (called while it shuts down).
  void Drop(asio::execution_context* context) {
    std::vector<std::unique_ptr<Connection>> dropped;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& connection : idle_) {
        if (connection->context == context) dropped.push_back(std::move(connection));
      }
      idle_.erase(std::remove(idle_.begin(), idle_.end(), nullptr), idle_.end());
      watched_.erase(std::remove(watched_.begin(), watched_.end(), context), watched_.end());
    }
  }

  std::size_t Size() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return idle_.size();
  }

 private:
  const std::size_t capacity_;
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Connection>> idle_;
  std::vector<asio::execution_context*> watched_;
};

// An Asio service living in each execution context that has pooled connections: when the
// context shuts down (io_context's destructor), it destroys those connections while the
// context's reactor still exists.
class PoolWatch final : public asio::execution_context::service {
 public:
  static asio::execution_context::id id;

  explicit PoolWatch(asio::execution_context& context)
      : asio::execution_context::service(context) {}

  void Watch(std::weak_ptr<Pool> pool) {
    std::lock_guard<std::mutex> lock(mutex_);
    pools_.push_back(std::move(pool));
  }

 private:
  void shutdown() override {
    std::vector<std::weak_ptr<Pool>> pools;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      pools.swap(pools_);
    }
    for (auto& weak : pools) {
      if (auto pool = weak.lock()) pool->Drop(&context());
    }
  }

  std::mutex mutex_;
  std::vector<std::weak_ptr<Pool>> pools_;
};

asio::execution_context::id PoolWatch::id;

bool IsHttpError(const beast::error_code& ec) {
  return ec.category() == make_error_code(http::error::end_of_stream).category();
}

// One request on `stream`: writes it, reads the answer into `parser`. `*ec` says how it ended.
// The header is read first and its Content-Length checked against the parser's body limit here:
// Beast 1.74's eager parsing (which async_read turns on) skips that check when the header and
// the body arrive together. Chunked and read-to-close bodies are checked by the parser.
template <class Stream>
asio::awaitable<void> Exchange(Stream* stream, const http::request<http::string_body>* request,
                               http::response_parser<http::string_body>* parser,
                               std::size_t body_limit, beast::flat_buffer* buffer,
                               beast::error_code* ec) {
  co_await http::async_write(*stream, *request, asio::redirect_error(asio::use_awaitable, *ec));
  if (*ec) co_return;
  co_await http::async_read_header(*stream, *buffer, *parser,
                                   asio::redirect_error(asio::use_awaitable, *ec));
  if (*ec || parser->is_done()) co_return;
  if (auto length = parser->content_length(); length && *length > body_limit) {
    *ec = http::error::body_limit;
    co_return;
  }
  co_await http::async_read(*stream, *buffer, *parser,
                            asio::redirect_error(asio::use_awaitable, *ec));
}

}  // namespace

struct HttpAdapter::Impl {
  std::string department;
  Url url;
  std::optional<std::chrono::milliseconds> timeout;
  std::vector<std::pair<std::string, std::string>> headers;
  std::size_t max_response_bytes = kDefaultMaxResponseBytes;
  std::unique_ptr<ssl::context> tls;  // https only
  bool verify = true;
  std::shared_ptr<Pool> pool;

  // A failure before any answer: the connection could not be made or broke.
  StepOutcome TransportFailure(const std::string& label, const char* stage,
                               const beast::error_code& ec, Clock::time_point deadline,
                               std::chrono::milliseconds limit) const {
    if (ec == beast::error::timeout || Clock::now() >= deadline) {
      return StepOutcome::Retry(label + ": timed out after " + DescribeDuration(limit));
    }
    if (ec == asio::error::connection_refused) {
      return StepOutcome::Retry(label + ": connection refused");
    }
    if (ec == asio::error::connection_reset) {
      return StepOutcome::Retry(label + ": connection reset by the server (" + stage + ")");
    }
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof) {
      return StepOutcome::Retry(label + ": the server closed the connection before answering");
    }
    if (ec == http::error::body_limit) {
      return StepOutcome::Failed(label + ": answer larger than " +
                                 std::to_string(max_response_bytes) + " bytes");
    }
    if (ec == http::error::header_limit) {
      return StepOutcome::Failed(label + ": answer headers larger than " +
                                 std::to_string(kHeaderLimit) + " bytes");
    }
    if (IsHttpError(ec)) {
      return StepOutcome::Failed(label + ": answered with malformed HTTP (" + ec.message() + ")");
    }
    return StepOutcome::Retry(label + ": " + stage + ": " + ec.message());
  }

  // A new connection to the URL's host, connected (and TLS-handshaken) before `deadline`; on
  // failure nullptr with `*failure` set.
  asio::awaitable<std::unique_ptr<Connection>> Connect(std::string label,
                                                       Clock::time_point deadline,
                                                       std::chrono::milliseconds limit,
                                                       StepOutcome* failure) {
    asio::any_io_executor executor = co_await asio::this_coro::executor;
    auto connection = std::make_unique<Connection>();
    connection->context =
        &asio::query(executor, asio::execution::context_as<asio::execution_context&>);
    if (tls) {
      connection->tls.emplace(executor, *tls);
    } else {
      connection->plain.emplace(executor);
    }
    beast::tcp_stream& stream = connection->Tcp();
    beast::error_code ec;

    boost::system::error_code not_address;
    asio::ip::address address = asio::ip::make_address(url.host, not_address);
    if (!not_address) {
      stream.expires_at(deadline);
      tcp::endpoint endpoint(address, static_cast<unsigned short>(std::stoi(url.port)));
      co_await stream.async_connect(endpoint, asio::redirect_error(asio::use_awaitable, ec));
    } else {
      // Asio's resolver cannot be cut short (getaddrinfo runs to its end on a helper thread), so
      // the call waits on a timer instead, which the resolution's handler cancels; a resolution
      // still running at the deadline is abandoned to finish on its own.
      struct Resolution {
        explicit Resolution(const asio::any_io_executor& ex) : resolver(ex), wake(ex) {}
        tcp::resolver resolver;
        asio::steady_timer wake;
        bool done = false;
        beast::error_code ec;
        tcp::resolver::results_type results;
      };
      auto resolution = std::make_shared<Resolution>(executor);
      resolution->wake.expires_at(deadline);
      resolution->resolver.async_resolve(
          url.host, url.port,
          [resolution](const beast::error_code& resolved_ec, tcp::resolver::results_type results) {
            resolution->ec = resolved_ec;
            resolution->results = std::move(results);
            resolution->done = true;
            resolution->wake.cancel();
          });
      beast::error_code wake_ec;
      co_await resolution->wake.async_wait(asio::redirect_error(asio::use_awaitable, wake_ec));
      if (!resolution->done) {
        resolution->resolver.cancel();
        *failure = StepOutcome::Retry(label + ": timed out after " + DescribeDuration(limit) +
                                      " resolving '" + url.host + "'");
        co_return nullptr;
      }
      if (resolution->ec) {
        *failure = StepOutcome::Retry(label + ": cannot resolve host '" + url.host +
                                      "': " + resolution->ec.message());
        co_return nullptr;
      }
      stream.expires_at(deadline);
      co_await stream.async_connect(resolution->results,
                                    asio::redirect_error(asio::use_awaitable, ec));
    }
    if (ec) {
      *failure = TransportFailure(label, "connect", ec, deadline, limit);
      co_return nullptr;
    }
    stream.socket().set_option(tcp::no_delay(true), ec);

    if (tls) {
      PrepareTlsClient(*connection->tls, url.host, verify, &connection->verify_error, ec);
      co_await connection->tls->async_handshake(ssl::stream_base::client,
                                                asio::redirect_error(asio::use_awaitable, ec));
      if (ec) {
        if (!connection->verify_error.empty()) {
          *failure =
              StepOutcome::Failed(label + ": the server's TLS certificate does not verify: " +
                                  connection->verify_error);
        } else {
          *failure = TransportFailure(label, "TLS handshake", ec, deadline, limit);
        }
        co_return nullptr;
      }
    }
    co_return connection;
  }

  // The outcome for a complete answer.
  StepOutcome Classify(const std::string& label, const http::response<http::string_body>& answer) {
    unsigned status = answer.result_int();
    std::string status_text = std::to_string(status);
    if (!answer.reason().empty()) status_text += " " + std::string(answer.reason());
    const std::string& body = answer.body();
    if (status == 200 || status == 201) {
      // The bounds first, with a SAX pass: a DOM of 500k levels would sink the engine the
      // first time anything copied it. Over them, the department would only answer the same
      // again: a permanent failure.
      if (Status bounded = workflows::CheckJsonText(body); !bounded.ok()) {
        return StepOutcome::Failed(label + ": answered " + std::to_string(status) + " with " +
                                   bounded.message());
      }
      nlohmann::json result = nlohmann::json::parse(body, nullptr, false);
      if (result.is_discarded()) {
        return StepOutcome::Failed(
            label + ": answered " + std::to_string(status) +
            " with a body that is not JSON: " + Excerpt(body, kBodyExcerptBytes));
      }
      if (!result.is_object()) {
        return StepOutcome::Failed(
            label + ": answered " + std::to_string(status) +
            " with JSON that is not an object: " + Excerpt(body, kBodyExcerptBytes));
      }
      return StepOutcome::Done(std::move(result));
    }
    if (status == 202) return StepOutcome::Accepted();
    std::string excerpt = Excerpt(body, kBodyExcerptBytes);
    std::string said = excerpt.empty() ? "" : ": " + excerpt;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599)) {
      return StepOutcome::Retry(label + ": answered " + status_text + said);
    }
    if (status >= 400 && status <= 499) {
      return StepOutcome::Failed(label + ": answered " + status_text + said);
    }
    return StepOutcome::Failed(label + ": answered " + status_text +
                               ", which is not a step answer (expected 200, 201 or 202)" + said);
  }

  asio::awaitable<StepOutcome> Call(StepRequest request) {
    const std::string label = CallLabel(department, request.operation);
    const std::chrono::milliseconds limit = EffectiveTimeout(request.timeout, timeout);
    const Clock::time_point deadline = Clock::now() + limit;
    asio::any_io_executor executor = co_await asio::this_coro::executor;
    asio::execution_context* context =
        &asio::query(executor, asio::execution::context_as<asio::execution_context&>);

    std::string target = url.base_path;
    if (!request.operation.empty()) target += "/" + EncodeOperation(request.operation);
    if (target.empty()) target = "/";
    http::request<http::string_body> message{http::verb::post, target, 11};
    message.set(http::field::host, url.host_header);
    message.set(http::field::user_agent, "wf");
    message.set(http::field::accept, "application/json");
    message.set(http::field::content_type, "application/json");
    message.set("Idempotency-Key", HeaderSafe(request.idempotency_key));
    message.set("X-Wf-Case", HeaderSafe(request.case_id));
    message.set("X-Wf-Step", HeaderSafe(request.step));
    message.set("X-Wf-Attempt", std::to_string(request.attempt));
    for (const auto& [name, value] : headers) message.set(name, value);
    message.keep_alive(true);
    const nlohmann::json& fields =
        request.fields.is_null() ? nlohmann::json::object() : request.fields;
    message.body() = fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    message.prepare_payload();

    // One try on a pooled connection if there is one, then one on a fresh connection: the second
    // only when the pooled one failed before any byte of an answer (the server closed it while
    // it was idle), which is safe to repeat under the same idempotency key.
    std::unique_ptr<Connection> connection = pool->Take(context);
    while (connection && HasPendingInput(*connection)) connection = pool->Take(context);
    for (;;) {
      bool reused = connection != nullptr;
      if (!connection) {
        StepOutcome failure;
        connection = co_await Connect(label, deadline, limit, &failure);
        if (!connection) co_return failure;
      }
      connection->Tcp().expires_at(deadline);
      beast::flat_buffer buffer;
      http::response_parser<http::string_body> parser;
      parser.body_limit(max_response_bytes);

      parser.header_limit(kHeaderLimit);
      beast::error_code ec;
      if (connection->tls) {
        co_await Exchange(&*connection->tls, &message, &parser, max_response_bytes, &buffer, &ec);
      } else {
        co_await Exchange(&*connection->plain, &message, &parser, max_response_bytes, &buffer, &ec);
      }
      if (ec) {
        bool answered_some = parser.got_some() || buffer.size() > 0;
        connection.reset();
        if (reused && !answered_some && ec != beast::error::timeout && Clock::now() < deadline) {
          continue;
        }
        co_return TransportFailure(label, "exchange", ec, deadline, limit);
      }
      StepOutcome outcome = Classify(label, parser.get());
      if (parser.get().keep_alive() && buffer.size() == 0) {
        connection->Tcp().expires_never();
        if (pool->Put(connection)) {
          asio::use_service<PoolWatch>(*context).Watch(pool);
        }
      }
      co_return outcome;
    }
  }
};

HttpAdapter::HttpAdapter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpAdapter::~HttpAdapter() = default;

Result<std::unique_ptr<HttpAdapter>> HttpAdapter::Create(std::string department,
                                                         const nlohmann::json& settings) {
  const std::string where = "department '" + department + "'";
  if (!settings.is_object()) return Status::Invalid(where + ": settings must be a mapping");
  static const std::vector<std::string> kKeys = {
      "url", "timeout", "headers", "tls", "max_response_bytes", "pool_size"};
  for (const auto& [key, value] : settings.items()) {
    if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
      return Status::Invalid(where + ": unknown http setting `" + key +
                             "` (known: url, timeout, headers, tls, max_response_bytes, "
                             "pool_size)");
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->department = department;

  auto url_it = settings.find("url");
  if (url_it == settings.end() || !url_it->is_string()) {
    return Status::Invalid(where + ": `url` is required and must be a string");
  }
  auto url = ParseUrl(url_it->get<std::string>(), where);
  if (!url) return url.error();
  impl->url = std::move(url.value());

  if (auto it = settings.find("timeout"); it != settings.end() && !it->is_null()) {
    auto timeout = ParseDurationSetting(*it, where + ": `timeout`");
    if (!timeout) return timeout.error();
    impl->timeout = *timeout;
  }

  auto read_count = [&](const char* key, std::size_t fallback, std::size_t* out) -> Status {
    auto it = settings.find(key);
    if (it == settings.end() || it->is_null()) {
      *out = fallback;
      return Status::Ok();
    }
    if (!it->is_number_integer() || it->get<int64_t>() < 1) {
      return Status::Invalid(where + ": `" + key + "` must be a positive whole number");
    }
    *out = static_cast<std::size_t>(it->get<int64_t>());
    return Status::Ok();
  };
  if (Status s =
          read_count("max_response_bytes", kDefaultMaxResponseBytes, &impl->max_response_bytes);
      !s.ok()) {
    return s;
  }
  std::size_t pool_size = kDefaultPoolSize;
  if (Status s = read_count("pool_size", kDefaultPoolSize, &pool_size); !s.ok()) return s;
  impl->pool = std::make_shared<Pool>(pool_size);

  if (auto it = settings.find("headers"); it != settings.end() && !it->is_null()) {
    if (!it->is_object()) return Status::Invalid(where + ": `headers` must be a mapping");
    static const std::vector<std::string_view> kReserved = {
        "Host",       "Content-Length", "Transfer-Encoding",
        "Connection", "Content-Type",   "Idempotency-Key",
        "X-Wf-Case",  "X-Wf-Step",      "X-Wf-Attempt"};
    for (const auto& [name, value] : it->items()) {
      std::string at = where + ": headers." + name;
      if (name.empty() || !std::all_of(name.begin(), name.end(), IsTokenChar)) {
        return Status::Invalid(at + ": not a valid header name");
      }
      for (std::string_view reserved : kReserved) {
        if (IEquals(name, reserved)) {
          return Status::Invalid(at + ": the http adapter sets this header itself");
        }
      }
      std::string text;
      if (value.is_string()) {
        text = value.get<std::string>();
      } else if (value.is_number() || value.is_boolean()) {
        text = value.dump();
      } else {
        return Status::Invalid(at + ": a header value must be text");
      }
      auto substituted = SubstituteEnv(text, at);
      if (!substituted) return substituted.error();
      if (substituted->find_first_of("\r\n") != std::string::npos ||
          substituted->find('\0') != std::string::npos) {
        return Status::Invalid(at + ": the value holds a line break");
      }
      impl->headers.emplace_back(name, std::move(substituted.value()));
    }
  }

  const nlohmann::json* tls_settings = nullptr;
  if (auto it = settings.find("tls"); it != settings.end() && !it->is_null()) {
    if (!it->is_object()) return Status::Invalid(where + ": `tls` must be a mapping");
    if (!impl->url.tls) {
      return Status::Invalid(where + ": `tls` is given but `url` is http://; use https://");
    }
    tls_settings = &*it;
  }
  if (impl->url.tls) {
    std::string ca_file, cert_file, key_file;
    if (tls_settings) {
      for (const auto& [key, value] : tls_settings->items()) {
        std::string at = where + ": tls." + key;
        if (key == "verify") {
          if (!value.is_boolean()) return Status::Invalid(at + ": must be true or false");
          impl->verify = value.get<bool>();
          continue;
        }
        std::string* file = key == "ca_file"     ? &ca_file
                            : key == "cert_file" ? &cert_file
                            : key == "key_file"  ? &key_file
                                                 : nullptr;
        if (!file) {
          return Status::Invalid(at +
                                 ": unknown TLS setting (known: ca_file, cert_file, "
                                 "key_file, verify)");
        }
        if (!value.is_string() || value.get<std::string>().empty()) {
          return Status::Invalid(at + ": must be a file name");
        }
        auto substituted = SubstituteEnv(value.get<std::string>(), at);
        if (!substituted) return substituted.error();
        *file = std::move(substituted.value());
      }
    }
    if (cert_file.empty() != key_file.empty()) {
      return Status::Invalid(where + ": tls.cert_file and tls.key_file go together");
    }
    auto context = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
    boost::system::error_code ec;
    if (!ca_file.empty()) {
      context->load_verify_file(ca_file, ec);
      if (ec) {
        return Status::Invalid(where + ": tls.ca_file '" + ca_file +
                               "' cannot be loaded: " + ec.message());
      }
    } else {
      context->set_default_verify_paths(ec);
    }
    if (!cert_file.empty()) {
      context->use_certificate_chain_file(cert_file, ec);
      if (ec) {
        return Status::Invalid(where + ": tls.cert_file '" + cert_file +
                               "' cannot be loaded: " + ec.message());
      }
      context->use_private_key_file(key_file, ssl::context::pem, ec);
      if (ec) {
        return Status::Invalid(where + ": tls.key_file '" + key_file +
                               "' cannot be loaded: " + ec.message());
      }
    }
    context->set_verify_mode(impl->verify ? ssl::verify_peer : ssl::verify_none, ec);
    impl->tls = std::move(context);
  }
  return std::make_unique<HttpAdapter>(std::move(impl));
}

Status HttpAdapter::Validate(const StepCall& call) const {
  const std::string where = "department '" + impl_->department + "'";
  if (!call.call.is_null() && !call.call.is_object()) {
    return Status::Invalid(where + ": the call must be a mapping of fields");
  }
  if (call.call.is_object()) {
    auto it = call.call.find("operation");
    if (it != call.call.end() && !it->is_string()) {
      return Status::Invalid(where + ": `operation` must be text (the path after the url)");
    }
  }
  return Status::Ok();
}

asio::awaitable<StepOutcome> HttpAdapter::Invoke(StepRequest request) {
  std::string label = CallLabel(impl_->department, request.operation);
  try {
    co_return co_await impl_->Call(std::move(request));
  } catch (const std::exception& e) {
    co_return StepOutcome::Retry(label + ": internal error in the http adapter: " + e.what());
  }
}

std::size_t HttpAdapter::IdleConnections() const { return impl_->pool->Size(); }

}  // namespace wf::adapters
