#pragma once

// Federation, the serving side (DESIGN.md, "Federation"): a case that another deployment's `wf`
// adapter started here through `wf serve` owes it an answer. The start records where the answer
// goes (table federation_callbacks) and a `federation.requested` event naming the other side's
// case and step, in the case's own transaction; when the case has ended, an engine posts
// `{case, procedure, status, data, hash}` (`hash`: our last event about it) to
// `{url}/v1/cases/{their case}/events/{their step}` with this deployment's certificate, and
// records `federation.answered` with the hash of the event the other side recorded it under.
//
// Delivery is at least once: a delivery is leased (next_at) so that engines sharing a database
// do not post it twice at once, a transient failure is retried with a growing pause (up to 5
// minutes), and an engine killed after posting and before recording posts again, which the other
// side answers with the event it recorded the first time (server/api.cpp). A permanent refusal
// (403, 404, 409, 422) is recorded as `federation.answer_refused` and not retried.

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adapters/adapter.hpp"
#include "engine/config.hpp"
#include "engine/store.hpp"

namespace wf::engine {

// Who started a case from another deployment, as wf serve read it from the request.
struct FederatedCaller {
  std::string client;  // the other deployment: its certificate's CN ("" on plain loopback HTTP)
  std::string url;     // its wf serve (the Wf-Callback header)
  std::string caller_case;
  std::string caller_step;
};

// Inside the start transaction of `case_id`: the callback row and `federation.requested`.
Status RecordFederatedCaller(StoreTx& tx, const std::string& case_id, const FederatedCaller& caller,
                             const std::string& actor, Timestamp now);

// One answer being delivered.
struct CallbackDelivery {
  CallbackRecord record;
  nlohmann::json body;  // {case, procedure, status, data, hash}
};

// Posts the answers owed. TakeDue and Record block (run them on a database thread); Post runs on
// the caller's executor. Thread-safe.
class CallbackCourier {
 public:
  CallbackCourier(Store& store, const Deployment& deployment);
  ~CallbackCourier();

  // Leases up to `limit` callbacks due at `now` (for a minute) and builds their bodies.
  Result<std::vector<CallbackDelivery>> TakeDue(Timestamp now, int limit);
  // One attempt to post `delivery`.
  asio::awaitable<adapters::StepOutcome> Post(const CallbackDelivery& delivery);
  // Records the attempt's outcome (and, when answered, the history event).
  Status Record(const CallbackDelivery& delivery, const adapters::StepOutcome& outcome,
                Timestamp now);

 private:
  Result<adapters::Adapter*> AdapterFor(const CallbackRecord& record);

  Store& store_;
  const Deployment& deployment_;
  std::mutex mutex_;
  std::map<std::string, std::unique_ptr<adapters::Adapter>> adapters_;  // by url
};

}  // namespace wf::engine
