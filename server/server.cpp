#include "server/server.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <exception>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string_view>

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <nlohmann/json.hpp>

#include "adapters/asio.hpp"
#include "engine/runtime.hpp"
#include "engine/timestamp.hpp"
#include "server/api.hpp"
#include "server/tls.hpp"

namespace wf::server {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;

namespace {

// How long a closing connection gets to take its error answer, and how much of what it still
// sends is read and dropped first (so that closing does not reset the answer away).
constexpr std::chrono::seconds kLingerTime{1};
constexpr std::size_t kLingerBytes = 4 << 20;

// One connection: its stream (plain, or TLS when the deployment has an identity) and the
// watchdog that cuts a slow request short. Shared with the watchdog's handler, which may run
// after the coroutine ended.
struct Connection {
  Connection(tcp::socket socket, ssl::context* tls_context) : watchdog(socket.get_executor()) {
    if (tls_context != nullptr) {
      tls.emplace(std::move(socket), *tls_context);
    } else {
      plain.emplace(std::move(socket));
    }
  }
  beast::tcp_stream& Tcp() { return tls ? beast::get_lowest_layer(*tls) : *plain; }
  std::optional<beast::tcp_stream> plain;
  std::optional<beast::ssl_stream<beast::tcp_stream>> tls;
  asio::steady_timer watchdog;
  bool timed_out = false;
  std::string remote;
  // Who the client certificate names (TLS), and why the client is not authenticated when it is
  // not (no certificate, or one that does not verify against the identity's CA).
  std::string client;
  std::string unauthenticated;
};

// Arms the watchdog: after `limit` the pending read is cancelled (the socket stays open, so a
// 408 can still be written).
void Arm(const std::shared_ptr<Connection>& connection, std::chrono::milliseconds limit) {
  connection->timed_out = false;
  connection->watchdog.expires_after(limit);
  connection->watchdog.async_wait([connection](const boost::system::error_code& ec) {
    if (ec) return;  // disarmed
    connection->timed_out = true;
    boost::system::error_code ignored;
    connection->Tcp().socket().cancel(ignored);
  });
}

void Disarm(Connection& connection) { connection.watchdog.cancel(); }

std::string Remote(const tcp::socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return "?";
  return endpoint.address().to_string();
}

}  // namespace

struct Server::Impl {
  Impl(engine::Runtime& runtime, ServeOptions serve_options)
      : options(std::move(serve_options)),
        api(runtime, runtime.deployment().identity.has_value(), &starts),
        identity(runtime.deployment().identity),
        acceptor(io),
        starts(
            runtime, [this](std::function<void()> job) { asio::post(pool, std::move(job)); },
            options.limits.workers),
        // One thread more than committers: while every committer waits for its transaction,
        // that one still takes requests in, so the starts arriving meanwhile queue in `starts`
        // and the next free committer takes them as one group (and reads are not held up).
        pool(static_cast<std::size_t>(std::max(1, options.limits.workers) + 1)) {}

  // Runs the request on the pool (a start joins the next group the start group commits) and
  // resumes the calling coroutine on the I/O thread with the answer.
  template <class Token>
  auto Handle(ApiRequest request, Token&& token) {
    return asio::async_initiate<Token, void(ApiReply)>(
        [this](auto handler, ApiRequest queued) {
          using Handler = decltype(handler);
          auto waiting = std::make_shared<Handler>(std::move(handler));
          asio::post(pool, [this, waiting, queued = std::move(queued)] {
            api.Handle(queued, [this, waiting](ApiReply reply) {
              auto executor = asio::get_associated_executor(*waiting, io.get_executor());
              asio::post(executor, [waiting, reply = std::move(reply)]() mutable {
                (*waiting)(std::move(reply));
              });
            });
          });
        },
        token, std::move(request));
  }

  void Log(const ApiReply& reply, const std::string& method, const Connection& connection,
           std::size_t bytes_in, std::size_t bytes_out,
           std::chrono::steady_clock::time_point started) {
    auto elapsed = std::chrono::steady_clock::now() - started;
    nlohmann::json line = {{"at", engine::FormatRfc3339(engine::Now())},
                           {"remote", connection.remote},
                           {"client", connection.client},
                           {"method", method},
                           {"route", reply.route.empty() ? std::string("?") : reply.route},
                           {"status", reply.status},
                           {"bytes_in", bytes_in},
                           {"bytes_out", bytes_out},
                           {"ms", std::chrono::duration<double, std::milli>(elapsed).count()}};
    const std::string text = line.dump();
    if (options.access_log) {
      options.access_log(text);
    } else {
      std::cerr << text << '\n';
    }
  }

  asio::awaitable<void> Accept();
  // Shakes hands (TLS), then serves the connection, or only answers 503 when `refuse`.
  asio::awaitable<void> Start(std::shared_ptr<Connection> connection, bool refuse);
  template <class Stream>
  asio::awaitable<void> Serve(std::shared_ptr<Connection> connection, Stream& stream);
  template <class Stream>
  asio::awaitable<void> Refuse(std::shared_ptr<Connection> connection, Stream& stream);
  template <class Stream>
  asio::awaitable<void> Answer(std::shared_ptr<Connection> connection, Stream& stream,
                               ApiReply reply, unsigned version, bool keep_alive,
                               std::size_t* bytes_out, beast::error_code* ec);
  template <class Stream>
  asio::awaitable<void> Linger(std::shared_ptr<Connection> connection, Stream& stream);
  asio::awaitable<void> Close(std::shared_ptr<Connection> connection);

  ServeOptions options;
  Api api;
  std::optional<engine::Identity> identity;
  std::unique_ptr<ssl::context> tls;  // with an identity
  asio::io_context io{1};
  tcp::acceptor acceptor;
  // Before the pool: the pool's threads are joined first, while what they use is still there.
  engine::StartGroup starts;
  asio::thread_pool pool;
  int active = 0;  // connections being served; touched on the I/O thread only
  std::atomic<bool> stopped{false};
};

template <class Stream>
asio::awaitable<void> Server::Impl::Answer(std::shared_ptr<Connection> connection, Stream& stream,
                                           ApiReply reply, unsigned version, bool keep_alive,
                                           std::size_t* bytes_out, beast::error_code* ec) {
  http::response<http::string_body> response{static_cast<http::status>(reply.status), version};
  response.set(http::field::server, "wf");
  response.set(http::field::content_type, "application/json");
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(keep_alive);
  response.body() = reply.body.dump();
  response.prepare_payload();
  *bytes_out = response.body().size();
  connection->Tcp().expires_after(options.limits.body_timeout);
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, *ec));
  connection->Tcp().expires_never();
}

template <class Stream>
asio::awaitable<void> Server::Impl::Linger(std::shared_ptr<Connection> connection, Stream& stream) {
  beast::error_code ec;
  // Plain TCP: half-close, so the client reads the answer and an EOF. TLS keeps both directions
  // until its close_notify (Close).
  if (!connection->tls) connection->Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  connection->Tcp().expires_after(kLingerTime);
  std::size_t dropped = 0;
  std::array<char, 16384> sink;
  while (!ec && dropped < kLingerBytes) {
    dropped += co_await stream.async_read_some(asio::buffer(sink),
                                               asio::redirect_error(asio::use_awaitable, ec));
  }
  co_await Close(connection);
}

asio::awaitable<void> Server::Impl::Close(std::shared_ptr<Connection> connection) {
  beast::error_code ec;
  if (connection->tls) {
    connection->Tcp().expires_after(kLingerTime);
    co_await connection->tls->async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
  } else {
    connection->Tcp().socket().shutdown(tcp::socket::shutdown_send, ec);
  }
  connection->Tcp().close();
}

template <class Stream>
asio::awaitable<void> Server::Impl::Refuse(std::shared_ptr<Connection> connection, Stream& stream) {
  ApiReply reply = ErrorReply(503, "unavailable", "too many connections; try again shortly");
  reply.route = "?";
  beast::error_code ec;
  std::size_t bytes_out = 0;
  co_await Answer(connection, stream, reply, 11, false, &bytes_out, &ec);
  Log(reply, "?", *connection, 0, bytes_out, std::chrono::steady_clock::now());
  if (!ec) co_await Linger(connection, stream);
}

template <class Stream>
asio::awaitable<void> Server::Impl::Serve(std::shared_ptr<Connection> connection, Stream& stream) {
  beast::flat_buffer buffer;
  const Limits& limits = options.limits;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
    parser.body_limit(limits.max_body_bytes);
    beast::error_code ec;
    auto started = std::chrono::steady_clock::now();
    // Reading the header, then the body, each against its own deadline.
    Arm(connection, limits.header_timeout);
    co_await http::async_read_header(stream, buffer, parser,
                                     asio::redirect_error(asio::use_awaitable, ec));
    Disarm(*connection);
    std::optional<ApiReply> refusal;
    if (ec == http::error::end_of_stream || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == ssl::error::stream_truncated) {
      break;
    }
    if (ec && connection->timed_out) {
      // A kept-alive connection that went quiet is closed without a word.
      if (!parser.got_some() && buffer.size() == 0) break;
      refusal = ErrorReply(408, "timeout", "the request header did not arrive in time");
    } else if (ec == http::error::body_limit) {
      refusal =
          ErrorReply(413, "too_large",
                     "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    } else if (ec == http::error::header_limit) {
      refusal = ErrorReply(431, "too_large", "the request header is too large");
    } else if (ec) {
      refusal = ErrorReply(400, "usage", "malformed HTTP request: " + ec.message());
    }
    if (!refusal && !parser.is_done()) {
      // Beast 1.74's eager parsing skips the body limit when header and body arrive together:
      // Content-Length is checked here, before any of the body is read.
      if (auto length = parser.content_length(); length && *length > limits.max_body_bytes) {
        refusal = ErrorReply(
            413, "too_large",
            "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
      } else {
        Arm(connection, limits.body_timeout);
        co_await http::async_read(stream, buffer, parser,
                                  asio::redirect_error(asio::use_awaitable, ec));
        Disarm(*connection);
        if (ec && connection->timed_out) {
          refusal = ErrorReply(408, "timeout", "the request body did not arrive in time");
        } else if (ec == http::error::body_limit) {
          refusal = ErrorReply(
              413, "too_large",
              "the body is larger than " + std::to_string(limits.max_body_bytes) + " bytes");
        } else if (ec) {
          refusal = ErrorReply(400, "usage", "malformed HTTP request: " + ec.message());
        }
      }
    }
    std::string method = parser.get().method_string().to_string();
    if (method.empty() || method.size() > 16) method = "?";
    if (refusal) {
      refusal->route = "?";
      std::size_t bytes_out = 0;
      beast::error_code write_ec;
      co_await Answer(connection, stream, *refusal,
                      parser.get().version() ? parser.get().version() : 11, false, &bytes_out,
                      &write_ec);
      Log(*refusal, method, *connection, buffer.size(), bytes_out, started);
      if (!write_ec) co_await Linger(connection, stream);
      co_return;
    }
    http::request<http::string_body> request = parser.release();
    ApiRequest api_request;
    api_request.method = method;
    api_request.target = std::string(request.target());
    api_request.idempotency_key = std::string(request["Idempotency-Key"]);
    api_request.content_type = std::string(request[http::field::content_type]);
    api_request.callback = std::string(request[kCallbackHeader]);
    api_request.caller_case = std::string(request["X-Wf-Case"]);
    api_request.caller_step = std::string(request["X-Wf-Step"]);
    api_request.client = connection->client;
    api_request.unauthenticated = connection->unauthenticated;
    const std::size_t bytes_in = request.body().size();
    api_request.body = std::move(request.body());
    ApiReply reply = co_await Handle(std::move(api_request), asio::use_awaitable);
    const bool keep_alive = request.keep_alive() && !stopped;
    std::size_t bytes_out = 0;
    co_await Answer(connection, stream, reply, request.version(), keep_alive, &bytes_out, &ec);
    Log(reply, method, *connection, bytes_in, bytes_out, started);
    if (ec || !keep_alive) break;
  }
  co_await Close(connection);
}

asio::awaitable<void> Server::Impl::Start(std::shared_ptr<Connection> connection, bool refuse) {
  struct Count {
    int& active;
    bool counted;
    ~Count() {
      if (counted) --active;
    }
  } count{active, !refuse};
  if (!connection->tls) {
    if (refuse) {
      co_await Refuse(connection, *connection->plain);
    } else {
      co_await Serve(connection, *connection->plain);
    }
    co_return;
  }
  beast::error_code ec;
  Arm(connection, options.limits.header_timeout);
  co_await connection->tls->async_handshake(ssl::stream_base::server,
                                            asio::redirect_error(asio::use_awaitable, ec));
  Disarm(*connection);
  if (ec) {
    // Not TLS, or a handshake that broke or took too long: nothing can be answered.
    nlohmann::json line = {
        {"at", engine::FormatRfc3339(engine::Now())},
        {"remote", connection->remote},
        {"tls_handshake_failed", connection->timed_out ? std::string("timeout") : ec.message()}};
    if (options.access_log) {
      options.access_log(line.dump());
    } else {
      std::cerr << line.dump() << '\n';
    }
    connection->Tcp().close();
    co_return;
  }
  IdentifyClient(connection->tls->native_handle(), &connection->client,
                 &connection->unauthenticated);
  if (refuse) {
    co_await Refuse(connection, *connection->tls);
  } else {
    co_await Serve(connection, *connection->tls);
  }
}

asio::awaitable<void> Server::Impl::Accept() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (!acceptor.is_open() || stopped) co_return;
      continue;  // a connection that failed before it was accepted (reset, out of files)
    }
    std::string remote = Remote(socket);
    auto connection = std::make_shared<Connection>(std::move(socket), tls.get());
    connection->remote = std::move(remote);
    auto on_end = [](std::exception_ptr failure) {
      if (!failure) return;
      try {
        std::rethrow_exception(failure);
      } catch (const std::exception& e) {
        std::cerr << "wf serve: a connection failed: " << e.what() << '\n';
      }
    };
    const bool refuse = active >= options.limits.max_connections;
    if (!refuse) ++active;
    asio::co_spawn(io, Start(connection, refuse), on_end);
  }
}

Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& text) {
  auto colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Status::Usage("--listen " + text + ": give HOST:PORT, e.g. 127.0.0.1:8080");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  std::string port_text = text.substr(colon + 1);
  if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos) {
    return Status::Usage("--listen " + text + ": the port must be a number from 0 to 65535");
  }
  int port = std::stoi(port_text);
  if (port > 65535) {
    return Status::Usage("--listen " + text + ": the port must be a number from 0 to 65535");
  }
  return std::make_pair(host, static_cast<std::uint16_t>(port));
}

bool IsLoopback(const std::string& host) {
  if (host == "localhost") return true;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

Server::Server(engine::Runtime& runtime, ServeOptions options)
    : impl_(std::make_unique<Impl>(runtime, std::move(options))) {}

Server::~Server() {
  Stop();
  impl_->pool.join();
}

Status Server::Listen() {
  const std::string& host = impl_->options.host;
  if (impl_->identity) {
    auto context = ServerTlsContext(*impl_->identity);
    if (!context) return context.error();
    impl_->tls = std::move(*context);
  } else if (!IsLoopback(host)) {
    return Status::Usage("--listen " + host +
                         ": without an identity (the deployment config's `identity: {name, cert, "
                         "key, ca}`) wf serve speaks plain HTTP and listens on loopback only; "
                         "give 127.0.0.1 or ::1");
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host == "localhost" ? "127.0.0.1" : host, ec);
  if (ec) return Status::Usage("--listen " + host + ": not an address");
  tcp::endpoint endpoint(address, impl_->options.port);
  tcp::acceptor& acceptor = impl_->acceptor;
  if (acceptor.open(endpoint.protocol(), ec); !ec) {
    acceptor.set_option(asio::socket_base::reuse_address(true), ec);
    if (acceptor.bind(endpoint, ec); !ec)
      acceptor.listen(asio::socket_base::max_listen_connections, ec);
  }
  if (ec) {
    return Status::Unavailable("cannot listen on " + host + ":" +
                               std::to_string(impl_->options.port) + ": " + ec.message());
  }
  return Status::Ok();
}

std::uint16_t Server::port() const {
  boost::system::error_code ec;
  auto endpoint = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : endpoint.port();
}

bool Server::tls() const { return impl_->tls != nullptr; }

void Server::Run() {
  asio::co_spawn(impl_->io, impl_->Accept(), asio::detached);
  impl_->io.run();
}

void Server::Stop() {
  impl_->stopped = true;
  impl_->io.stop();
}

std::size_t Server::StartsWaiting() const { return impl_->starts.Waiting(); }

}  // namespace wf::server
