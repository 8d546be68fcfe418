#pragma once

// The `wf` adapter (DESIGN.md, "Federation"): a department that is another wf deployment. A step
//
//   adapter: hcmc-dost
//   call: {operation: start, procedure: technology-transfer-records, company: "${ .company }"}
//
// starts a case of `procedure` there with the other fields as its data, through the other side's
// `wf serve`: `POST {url}/v1/procedures/{procedure}/cases` with the step's idempotency key as
// `Idempotency-Key` (a retry, or a restarted engine, finds the same case there), the http wire's
// `X-Wf-Case` and `X-Wf-Step`, and `Wf-Callback: {callback_url}`, our own `wf serve`. Its answer
// `{"id"}` parks the step (as an HTTP 202 does) with the receipt `{"deployment", "case"}` in our
// history; when that case ends, the other side posts `{case, status, data, hash}` to
// `{callback_url}/v1/cases/{our case}/events/{step}` with its own certificate, and that object
// becomes the step's result (`save_as`).
//
// Department settings:
//   url: https://wf.hcmc.example:8443           # required: the other side's wf serve
//   callback_url: https://wf.tayninh.example:8443   # required: our own wf serve
//   timeout: 10s                                # optional cap on each call
// `${env.NAME}` in url and callback_url is taken from the environment when the adapter starts.
// Over https:// the deployment's identity is the client certificate and its CA the only one
// trusted for the other side (one identity per deployment); plain http:// is for loopback tests.
// Outcomes are the http adapter's: 422 (invalid data), 403 (not permitted there), 404 (no such
// procedure), 409 (a duplicate application open there) are permanent failures; 5xx, 408, 429 and
// broken connections are retried under the same key.

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "workflows/status.hpp"

namespace wf::adapters {

class HttpAdapter;

// The deployment's certificate, key and CA (PEM files), as the `wf` adapter presents them.
struct ClientIdentity {
  std::string cert;
  std::string key;
  std::string ca;
};

class WfAdapter final : public Adapter {
 public:
  // kInvalid naming the department and the setting: a missing or malformed url or callback_url,
  // an unknown key, an https:// url without an identity, files OpenSSL cannot load.
  static Result<std::unique_ptr<WfAdapter>> Create(std::string department,
                                                   const nlohmann::json& settings,
                                                   const std::optional<ClientIdentity>& identity);
  ~WfAdapter() override;

  // The call must be a mapping with `operation: start` and a `procedure` (text).
  Status Validate(const StepCall& call) const override;
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;

  WfAdapter(std::string department, std::unique_ptr<HttpAdapter> http);

 private:
  std::string department_;
  std::unique_ptr<HttpAdapter> http_;
};

}  // namespace wf::adapters
