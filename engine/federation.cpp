#include "engine/federation.hpp"

#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "adapters/http.hpp"
#include "engine/history_action.hpp"
#include "engine/timestamp.hpp"

namespace wf::engine {

namespace {

// How long a delivery is leased to the engine posting it.
constexpr std::chrono::seconds kLease{60};
// The pause before the next attempt after `attempts` failed ones: 2 s, 4 s, ... up to 5 minutes.
std::chrono::seconds Backoff(int attempts) {
  return std::chrono::seconds(
      std::min<std::int64_t>(300, std::int64_t{1} << std::min(attempts, 9)));
}

}  // namespace

Status RecordFederatedCaller(StoreTx& tx, const std::string& case_id, const FederatedCaller& caller,
                             const std::string& actor, Timestamp now) {
  CallbackRecord record;
  record.case_id = case_id;
  record.client = caller.client;
  record.url = caller.url;
  record.caller_case = caller.caller_case;
  record.caller_step = caller.caller_step;
  record.created_at = now;
  record.next_at = now;
  if (Status inserted = tx.InsertCallback(record); !inserted.ok()) return inserted;
  nlohmann::json details = {{"deployment", caller.client.empty() ? actor : caller.client},
                            {"case", caller.caller_case},
                            {"step", caller.caller_step}};
  auto event = tx.AppendHistory(case_id, actor, history_action::kFederationRequested, "",
                                details.dump(), now);
  return event ? Status::Ok() : event.error();
}

CallbackCourier::CallbackCourier(Store& store, const Deployment& deployment)
    : store_(store), deployment_(deployment) {}

CallbackCourier::~CallbackCourier() = default;

Result<std::vector<CallbackDelivery>> CallbackCourier::TakeDue(Timestamp now, int limit) {
  std::vector<CallbackDelivery> taken;
  Status status = store_.Transact([&](StoreTx& tx) {
    taken.clear();
    auto due = tx.DueCallbacks(now, limit);
    if (!due) return due.error();
    for (CallbackRecord& record : *due) {
      auto leased = tx.LeaseCallback(record.case_id, record.next_at, now + kLease);
      if (!leased) return leased.error();
      if (!*leased) continue;
      auto found = tx.GetCase(record.case_id);
      if (!found) return found.error();
      auto history = tx.ListHistory(record.case_id);
      if (!history) return history.error();
      CallbackDelivery delivery;
      delivery.body = {{"case", found->id},
                       {"procedure", found->procedure},
                       {"status", found->status},
                       {"data", nlohmann::json::parse(found->data, nullptr, false)},
                       {"hash", history->empty() ? std::string() : history->back().hash}};
      delivery.record = std::move(record);
      taken.push_back(std::move(delivery));
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  return taken;
}

Result<adapters::Adapter*> CallbackCourier::AdapterFor(const CallbackRecord& record) {
  std::lock_guard lock(mutex_);
  auto it = adapters_.find(record.url);
  if (it != adapters_.end()) return it->second.get();
  nlohmann::json settings = {{"url", record.url}, {"timeout", "30s"}};
  if (record.url.rfind("https://", 0) == 0) {
    if (!deployment_.identity) {
      return Status::Invalid("the answer goes to " + record.url +
                             " (https://) but the deployment config has no `identity` to present");
    }
    settings["tls"] = {{"ca_file", deployment_.identity->ca},
                       {"cert_file", deployment_.identity->cert},
                       {"key_file", deployment_.identity->key}};
  }
  auto adapter =
      adapters::HttpAdapter::Create(record.client.empty() ? "peer" : record.client, settings);
  if (!adapter) return adapter.error();
  adapters::Adapter* raw = adapter->get();
  adapters_[record.url] = std::move(*adapter);
  return raw;
}

asio::awaitable<adapters::StepOutcome> CallbackCourier::Post(const CallbackDelivery& delivery) {
  auto adapter = AdapterFor(delivery.record);
  if (!adapter) co_return adapters::StepOutcome::Failed(adapter.error().message());
  adapters::StepRequest request;
  request.case_id = delivery.record.case_id;
  request.step = "answer";
  request.attempt = delivery.record.attempts + 1;
  request.idempotency_key = "answer/" + delivery.record.case_id;
  request.operation =
      "v1/cases/" + delivery.record.caller_case + "/events/" + delivery.record.caller_step;
  request.fields = delivery.body;
  request.timeout = std::chrono::seconds(30);
  co_return co_await (*adapter)->Invoke(std::move(request));
}

Status CallbackCourier::Record(const CallbackDelivery& delivery,
                               const adapters::StepOutcome& outcome, Timestamp now) {
  const CallbackRecord& record = delivery.record;
  const int attempts = record.attempts + 1;
  using Kind = adapters::StepOutcome::Kind;
  if (outcome.kind == Kind::kRetry || outcome.kind == Kind::kAccepted) {
    spdlog::warn("answer of case {} to {} not delivered (attempt {}): {}", record.case_id,
                 record.client, attempts, outcome.message);
    return store_.Transact([&](StoreTx& tx) {
      return tx.CallbackFailed(record.case_id, attempts, now + Backoff(attempts), outcome.message);
    });
  }
  const bool answered = outcome.kind == Kind::kDone;
  std::string peer_hash;
  if (answered && outcome.result.is_object()) {
    peer_hash = outcome.result.value("hash", std::string());
  }
  if (!answered) {
    spdlog::warn("answer of case {} refused by {}: {}", record.case_id, record.client,
                 outcome.message);
  }
  return store_.Transact([&](StoreTx& tx) {
    auto locked = tx.GetCaseForUpdate(record.case_id);
    if (!locked) return locked.error();
    if (Status s = tx.CallbackDelivered(record.case_id, attempts, now, peer_hash,
                                        answered ? std::string() : outcome.message);
        !s.ok()) {
      return s;
    }
    nlohmann::json details = {{"deployment", record.client},
                              {"case", record.caller_case},
                              {"step", record.caller_step},
                              {"attempts", attempts}};
    if (answered) {
      details["hash"] = peer_hash;
    } else {
      details["message"] = outcome.message;
    }
    auto event = tx.AppendHistory(
        record.case_id, "engine",
        answered ? history_action::kFederationAnswered : history_action::kFederationRefused, "",
        details.dump(), now);
    return event ? Status::Ok() : event.error();
  });
}

}  // namespace wf::engine
