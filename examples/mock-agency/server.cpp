#include "examples/mock-agency/server.hpp"

#include <fcntl.h>

#include <chrono>
#include <cstdio>
#include <exception>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace wf::mock {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using asio::ip::tcp;
using boost::system::error_code;

constexpr auto kIdleTimeout = std::chrono::seconds(60);
constexpr auto kWriteTimeout = std::chrono::seconds(30);
constexpr uint64_t kMaxRequestBytes = 16 * 1024 * 1024;

void CloseOnExec(int fd) { fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC); }

void LogException(std::exception_ptr error) {
  if (!error) return;
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wf-mock-agency: connection failed: %s\n", e.what());
  }
}

std::string Header(const http::request<http::string_body>& request, const char* name) {
  auto found = request.find(name);
  return found == request.end() ? std::string() : std::string(found->value());
}

// Answers a request that could not be read (bad HTTP, too large) and closes.
asio::awaitable<void> RefuseUnreadable(beast::tcp_stream& stream, const error_code& read_error) {
  const bool too_large = read_error == http::error::body_limit;
  http::response<http::string_body> response{
      too_large ? http::status::payload_too_large : http::status::bad_request, 11};
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = std::string(R"({"error":")") +
                    (too_large ? "request body too large" : "malformed HTTP request") + "\"}";
  response.prepare_payload();
  error_code ec;
  stream.expires_after(kWriteTimeout);
  co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

asio::awaitable<void> Serve(beast::tcp_stream stream, Agency* agency, CallbackRunner* callbacks,
                            bool quiet) {
  beast::flat_buffer buffer;
  error_code ec;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.body_limit(kMaxRequestBytes);
    stream.expires_after(kIdleTimeout);
    co_await http::async_read(stream, buffer, parser,
                              asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec.category() == http::make_error_code(http::error::bad_target).category() &&
          ec != http::error::end_of_stream && ec != http::error::partial_message) {
        co_await RefuseUnreadable(stream, ec);
      }
      co_return;
    }
    const http::request<http::string_body>& request = parser.get();
    Request call{std::string(request.method_string()),
                 std::string(request.target()),
                 request.body(),
                 Header(request, "Idempotency-Key"),
                 Header(request, "X-Wf-Case"),
                 Header(request, "X-Wf-Step")};
    Plan plan = agency->Handle(call);
    if (!quiet) {
      std::fprintf(
          stderr, "%s %s key=%s -> %s%s\n", call.method.c_str(), call.target.c_str(),
          call.idempotency_key.empty() ? "-" : call.idempotency_key.c_str(),
          plan.hang ? "hang" : std::to_string(plan.status).c_str(),
          plan.delay_ms > 0 ? (" after " + std::to_string(plan.delay_ms) + "ms").c_str() : "");
    }
    if (plan.delay_ms > 0) {
      stream.expires_never();
      asio::steady_timer timer(stream.get_executor());
      timer.expires_after(std::chrono::milliseconds(plan.delay_ms));
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (plan.hang) {
      // Hold the connection, reading and dropping whatever comes, until the client leaves.
      stream.expires_never();
      char sink[1024];
      do {
        co_await stream.async_read_some(asio::buffer(sink),
                                        asio::redirect_error(asio::use_awaitable, ec));
      } while (!ec);
      co_return;
    }
    http::response<http::string_body> response;
    response.version(request.version());
    response.result(static_cast<unsigned>(plan.status));
    response.set(http::field::server, "wf-mock-agency");
    response.set(http::field::content_type, "application/json");
    for (const auto& [name, value] : plan.headers) response.set(name, value);
    response.keep_alive(request.keep_alive());
    response.body() = std::move(plan.body);
    response.prepare_payload();
    stream.expires_after(kWriteTimeout);
    co_await http::async_write(stream, response, asio::redirect_error(asio::use_awaitable, ec));
    // The department accepted the call whether or not the 202 reached the client.
    if (plan.callback) callbacks->Run(std::move(*plan.callback));
    if (ec) co_return;
    if (!response.keep_alive()) {
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      co_return;
    }
  }
}

asio::awaitable<void> Accept(asio::io_context& io, tcp::acceptor& acceptor, Agency* agency,
                             CallbackRunner* callbacks, bool quiet) {
  for (;;) {
    error_code ec;
    tcp::socket socket = co_await acceptor.async_accept(
        asio::make_strand(io), asio::redirect_error(asio::use_awaitable, ec));
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;  // e.g. out of file descriptors: keep serving the open connections
    CloseOnExec(socket.native_handle());
    socket.set_option(tcp::no_delay(true), ec);
    auto executor = socket.get_executor();
    asio::co_spawn(executor, Serve(beast::tcp_stream(std::move(socket)), agency, callbacks, quiet),
                   LogException);
  }
}

}  // namespace

Server::Server(asio::io_context& io, Agency& agency, CallbackRunner& callbacks, bool quiet)
    : io_(io), agency_(agency), callbacks_(callbacks), quiet_(quiet), acceptor_(io) {}

std::optional<std::string> Server::Listen(const std::string& host, uint16_t port) {
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  if (ec) return "bad host '" + host + "': " + ec.message();
  const tcp::endpoint endpoint(address, port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return "cannot listen on " + host + ":" + std::to_string(port) + ": " + ec.message();
  CloseOnExec(acceptor_.native_handle());
  return std::nullopt;
}

uint16_t Server::port() const {
  error_code ec;
  return acceptor_.local_endpoint(ec).port();
}

void Server::Start() {
  asio::co_spawn(io_, Accept(io_, acceptor_, &agency_, &callbacks_, quiet_), LogException);
}

void Server::Stop() {
  error_code ignored;
  acceptor_.close(ignored);
}

}  // namespace wf::mock
