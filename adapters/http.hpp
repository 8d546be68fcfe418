#pragma once

// The `http` adapter (DESIGN.md, "Adapter wire protocols"): one department system reached over
// HTTP/1.1 or HTTPS with Boost.Beast.
//
// Department settings (engine::Department::settings):
//   url: http://127.0.0.1:8081/population   # required; http:// or https://, optional base path
//   timeout: 5s                # optional cap on every call's time (the step's timeout otherwise)
//   headers: {Authorization: "Bearer ${env.POPULATION_TOKEN}"}   # sent with every call
//   tls: {ca_file: ca.pem, cert_file: client.pem, key_file: client.key, verify: true}
//   max_response_bytes: 1048576  # an answer body over this is a permanent failure
//   pool_size: 16                # idle keep-alive connections kept for reuse
// Unknown keys are refused (a typo would otherwise be silently ignored). `${env.NAME}` in header
// values is replaced from the environment once, when the adapter is created.
//
// Each attempt is `POST {url}/{operation}` (just `{url}` for an empty operation; the operation
// is percent-encoded except for letters, digits, `-._~/`) with the step's fields as a JSON
// object body, `Content-Type: application/json`, `Idempotency-Key`, `X-Wf-Case`, `X-Wf-Step`,
// `X-Wf-Attempt` and the configured headers. The outcome:
//   200/201 with a JSON object body  -> kDone, the body is the result
//   200/201 with anything else       -> kFailed ("answered 200 with a body that is not JSON")
//   202                              -> kAccepted (a signal delivers the result later)
//   408, 429, 5xx                    -> kRetry, with the status and the start of the body
//   other 4xx, 1xx, 204, 3xx         -> kFailed, with the status and the first 500 bytes
//   a timeout, a refused or reset connection, a DNS failure, a TLS handshake that breaks
//                                    -> kRetry
//   a certificate that does not verify or does not name the host -> kFailed
//   a body over max_response_bytes   -> kFailed ("answer larger than N bytes")
// Every message starts with "<department> <operation>: ".
//
// Connections: kept alive and pooled per adapter (so per department): at most `pool_size` idle
// connections are kept; calls beyond that open more and close them afterwards (the pool does not
// limit concurrency). A pooled connection that the server has closed meanwhile is noticed before
// reuse when the close has arrived, and otherwise by failing before any answer byte: the request
// is then sent once more on a fresh connection (same idempotency key, so safe).
//
// TLS (https://): OpenSSL through Asio, with SNI and host name verification against the URL's
// host; `tls.ca_file` (PEM) replaces the system's trusted roots; `tls.cert_file` and
// `tls.key_file` (PEM, both or neither) present a client certificate; `verify: false` turns
// verification off (for tests; never in production).
//
// Executors: the adapter does its I/O on the executor of the coroutine that awaits Invoke (the
// engine's I/O thread), so it needs none at creation; idle connections are reused only by calls
// on the executor that opened them. Invoke may be called concurrently from several coroutines;
// the pool is guarded by a mutex. The per-call I/O objects are not shared, but one call's objects
// are only touched from its own executor: run that executor on one thread (as the engine does) or
// make it a strand.

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "workflows/status.hpp"

namespace wf::adapters {

class HttpAdapter final : public Adapter {
 public:
  // Reads `settings` of department `department`. kInvalid naming the department and the key for
  // a missing or malformed url, a bad timeout, header, TLS setting or size, an unset environment
  // variable in a header, or a CA/certificate/key file OpenSSL cannot load. Never throws.
  static Result<std::unique_ptr<HttpAdapter>> Create(std::string department,
                                                     const nlohmann::json& settings);
  ~HttpAdapter() override;
  HttpAdapter(const HttpAdapter&) = delete;
  HttpAdapter& operator=(const HttpAdapter&) = delete;

  // Checks that the call is an object whose `operation`, if present, is a string (it may be an
  // expression). No I/O.
  Status Validate(const StepCall& call) const override;
  // One attempt as described above. Never throws.
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;

  // Idle connections currently pooled (for tests and diagnostics).
  std::size_t IdleConnections() const;

  struct Impl;
  // Use Create; public only so that it can make the adapter without a raw `new`.
  explicit HttpAdapter(std::unique_ptr<Impl> impl);

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace wf::adapters
