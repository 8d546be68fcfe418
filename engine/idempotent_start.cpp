// Starting a case under an Idempotency-Key (`wf serve`): the key is recorded in the case's own
// transaction (table idempotency_keys, migration 7), so a repeated request finds the case whichever
// process of the deployment answers it, after any crash, and two racing requests start one case.
// On PostgreSQL the key's row goes with the start's other deferred writes, in the commit's
// pipeline (one multi-row INSERT for a group); a key taken meanwhile fails the commit there.
#include <string>

#include "engine/anchor.hpp"
#include "engine/federation.hpp"
#include "engine/runtime.hpp"

namespace wf::engine {

namespace {

std::string RequestHash(const std::string& procedure, const nlohmann::json& data) {
  Sha256Stream hash;
  hash.Update(procedure);
  hash.Update(std::string_view("\0", 1));
  hash.Update(data.dump());  // objects are key-ordered: the same data, the same text
  return hash.HexDigest();
}

// The earlier request's case when it matches this one; kInvalid when the key was used otherwise.
Result<Runtime::StartedOnce> Earlier(const IdempotencyRecord& earlier, const std::string& procedure,
                                     const std::string& hash) {
  if (earlier.procedure != procedure || earlier.request_hash != hash) {
    return Status::Invalid("Idempotency-Key already used for another request (case " +
                           earlier.case_id + " of " + earlier.procedure +
                           "); use a new key for new data");
  }
  Runtime::StartedOnce once;
  once.started.id = earlier.case_id;
  once.started.procedure = earlier.procedure;
  once.created = false;
  return once;
}

// The key was taken by a transaction that committed first, as this one's commit found it (the
// key's insert is deferred to the commit with the start's other writes: StoreTx::DeferWrites).
bool KeyTakenAtCommit(const Status& status) {
  return status.code() == ErrorCode::kUnavailable &&
         status.message().find("record idempotency keys:") != std::string::npos;
}

}  // namespace

Status Runtime::UsableKey(const std::string& key) {
  if (key.empty() || key.size() > 255) {
    return Status::Usage("Idempotency-Key must be 1 to 255 characters");
  }
  return Status::Ok();
}

Status Runtime::RecordKey(StoreTx& tx, const IdempotencyRecord& row, const std::string& actor,
                          const FederatedCaller* caller, bool* taken) {
  auto inserted = tx.InsertIdempotencyKey(row);
  if (!inserted) return inserted.error();
  if (!*inserted) {
    if (taken != nullptr) *taken = true;
    return Status::Conflict("Idempotency-Key taken meanwhile");
  }
  if (caller != nullptr) return RecordFederatedCaller(tx, row.case_id, *caller, actor, Now());
  return Status::Ok();
}

Result<Runtime::StartedOnce> Runtime::StartCaseOnce(
    const std::string& procedure, const nlohmann::json& data, const std::string& actor,
    const std::string& client, const std::string& key, const FederatedCaller* caller) {
  if (Status usable = UsableKey(key); !usable.ok()) return usable;
  const std::string hash = RequestHash(procedure, data);
  auto find = [&]() -> Result<std::optional<IdempotencyRecord>> {
    std::optional<IdempotencyRecord> found;
    Status read = store_.Read([&](StoreTx& tx) {
      auto row = tx.FindIdempotencyKey(client, key);
      if (!row) return row.error();
      found = std::move(*row);
      return Status::Ok();
    });
    if (!read.ok()) return read;
    return found;
  };
  // No read before the attempt: a new key, the usual request, costs one transaction. A repeated
  // request fails its attempt (the key is taken, its case collides on the dedupe key or the
  // open-case index, or a newer version or a rule now refuses its data), and so does the loser
  // of two racing ones: the recorded key then answers for it.
  bool taken = false;  // a concurrent or earlier request with the key committed first
  std::vector<std::optional<Started>> started;
  Status status = StartTransaction(
      {{&procedure, &data, &actor,
        [&](StoreTx& tx, const Started& case_started) {
          return RecordKey(tx, {client, key, procedure, hash, case_started.id, Now()}, actor,
                           caller, &taken);
        }}},
      &started);
  if (!status.ok()) {
    auto earlier = find();
    if (!earlier) return status;  // the database is away: the attempt's own error says so
    if (*earlier) return Earlier(**earlier, procedure, hash);
    if (taken || KeyTakenAtCommit(status)) {
      return Status::Unavailable("Idempotency-Key was taken and then not found; retry");
    }
    if (status.code() == ErrorCode::kConflict) return WithRefusal(status, procedure, data, actor);
    return status;
  }
  StartedOnce once;
  once.started = *started.front();
  once.created = true;
  return once;
}

std::vector<Result<Runtime::StartedOnce>> Runtime::StartCasesOnce(
    const std::vector<OnceRequest>& requests) {
  std::vector<Result<StartedOnce>> out(requests.size(), Status::Internal("not started"));
  std::vector<std::size_t> members;
  for (std::size_t i = 0; i < requests.size(); ++i) {
    if (Status usable = UsableKey(requests[i].key); !usable.ok()) {
      out[i] = usable;
    } else {
      members.push_back(i);
    }
  }
  if (!members.empty()) StartGroupOnce(requests, members, out);
  return out;
}

void Runtime::StartGroupOnce(const std::vector<OnceRequest>& requests,
                             const std::vector<std::size_t>& members,
                             std::vector<Result<StartedOnce>>& out) {
  auto alone = [&](std::size_t i) {
    const OnceRequest& r = requests[i];
    out[i] = StartCaseOnce(r.procedure, r.data, r.actor, r.client, r.key, r.caller);
  };
  if (members.size() == 1) return alone(members.front());
  std::vector<std::string> hashes;
  for (std::size_t i : members)
    hashes.push_back(RequestHash(requests[i].procedure, requests[i].data));
  std::vector<StartSpec> specs;
  for (std::size_t k = 0; k < members.size(); ++k) {
    const OnceRequest& r = requests[members[k]];
    const std::string& hash = hashes[k];
    specs.push_back({&r.procedure, &r.data, &r.actor, [&](StoreTx& tx, const Started& started) {
                       return RecordKey(tx, {r.client, r.key, r.procedure, hash, started.id, Now()},
                                        r.actor, r.caller, nullptr);
                     }});
  }
  std::vector<std::optional<Started>> started;
  std::optional<std::size_t> failed_at;
  Status status = StartTransaction(specs, &started, &failed_at);
  if (status.ok()) {
    for (std::size_t k = 0; k < members.size(); ++k) {
      StartedOnce once;
      once.started = *started[k];
      once.created = true;
      out[members[k]] = std::move(once);
    }
    return;
  }
  if (!failed_at) {  // the commit failed, or the store: each on its own says what happened
    for (std::size_t i : members) alone(i);
    return;
  }
  // The one that failed answers on its own; the others are not to blame and go on in groups.
  const auto at = members.begin() + static_cast<std::ptrdiff_t>(*failed_at);
  if (at != members.begin()) StartGroupOnce(requests, {members.begin(), at}, out);
  alone(*at);
  if (at + 1 != members.end()) StartGroupOnce(requests, {at + 1, members.end()}, out);
}

}  // namespace wf::engine
