#pragma once

// `wf serve`: the HTTP API (DESIGN.md, "Stage 2 contracts", `wf serve`) on Boost.Beast. One I/O
// thread carries every connection as an Asio coroutine; the store's blocking work runs on a small
// pool of its own (STYLE.md, "Async"). Request limits keep a slow or hostile client from holding
// the server: a bounded header and body, a deadline for the header and another for the body,
// and a cap on concurrent connections (beyond it: 503 and close).
//
// With the deployment config's `identity` it speaks TLS only, presents the identity's certificate
// and asks every client for one signed by the identity's CA; a client is named by its
// certificate's CN and may do what `clients:` lists for it (server/api.hpp). Without an identity
// it speaks plain HTTP and listens on loopback only.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "workflows/status.hpp"

namespace wf::engine {
class Runtime;
}

namespace wf::server {

// What one connection may take before it is answered with an error and closed.
struct Limits {
  std::size_t max_body_bytes = 1 << 20;     // larger: 413
  std::size_t max_header_bytes = 16 << 10;  // larger: 431
  // From the start of waiting for a request (also between kept-alive requests) until its whole
  // header has arrived; then 408 when some bytes came, a silent close when none did.
  std::chrono::milliseconds header_timeout{10000};
  // From the end of the header until the whole body has arrived: 408.
  std::chrono::milliseconds body_timeout{30000};
  // Connections served at once; one more is answered 503 and closed.
  int max_connections = 256;
  // Threads that run the store's blocking work.
  int workers = 2;
};

struct ServeOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0: a free port, see Server::port()
  Limits limits;
  // Receives one access-log line per request: a JSON object (time, remote address, client,
  // method, route template, status, bytes, milliseconds) that holds no personal value: no body,
  // no query, no path parameter. Default: standard error.
  std::function<void(const std::string&)> access_log;
};

// "HOST:PORT" (IPv6 as "[::1]:8443"). kUsage saying what is wrong.
Result<std::pair<std::string, std::uint16_t>> ParseListen(const std::string& text);

// True when `host` is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool IsLoopback(const std::string& host);

// The HTTP server. Create, Listen, then Run on one thread; Stop from any thread.
class Server {
 public:
  // `runtime` (and its store) must outlive the server.
  Server(engine::Runtime& runtime, ServeOptions options);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens. With the deployment's identity, over TLS with client certificates
  // (kInvalid when its files cannot be loaded or its certificate names another deployment);
  // without, plain HTTP on loopback only (kUsage for another host). kUnavailable when the
  // address cannot be bound.
  Status Listen();
  // The bound port once Listen succeeded.
  std::uint16_t port() const;
  // True when it speaks TLS (the deployment has an identity).
  bool tls() const;
  // Serves until Stop(). Blocks the calling thread.
  void Run();
  // Stops accepting and ends every connection; Run returns. Thread-safe, idempotent.
  void Stop();
  // Starts received and waiting for a free committer (engine::StartGroup::Waiting).
  std::size_t StartsWaiting() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace wf::server
