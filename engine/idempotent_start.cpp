// Starting a case under an Idempotency-Key (`wf serve`): the key is recorded in the case's own
// transaction (table idempotency_keys, migration 7), so a repeated request finds the case whichever
// process of the deployment answers it, after any crash, and two racing requests start one case.
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

}  // namespace

Result<Runtime::StartedOnce> Runtime::StartCaseOnce(
    const std::string& procedure, const nlohmann::json& data, const std::string& actor,
    const std::string& client, const std::string& key, const FederatedCaller* caller) {
  if (key.empty() || key.size() > 255) {
    return Status::Usage("Idempotency-Key must be 1 to 255 characters");
  }
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
  auto record_key = [&](StoreTx& tx, const Started& started) -> Status {
    IdempotencyRecord row{client, key, procedure, hash, started.id, Now()};
    auto inserted = tx.InsertIdempotencyKey(row);
    if (!inserted) return inserted.error();
    if (!*inserted) {
      taken = true;
      return Status::Conflict("Idempotency-Key taken meanwhile");
    }
    if (caller != nullptr) return RecordFederatedCaller(tx, started.id, *caller, actor, Now());
    return Status::Ok();
  };
  std::optional<Started> started;
  Status status = StartTransaction(procedure, data, actor, record_key, &started);
  if (!status.ok()) {
    auto earlier = find();
    if (!earlier) return status;  // the database is away: the attempt's own error says so
    if (*earlier) return Earlier(**earlier, procedure, hash);
    if (taken) return Status::Unavailable("Idempotency-Key was taken and then not found; retry");
    if (status.code() == ErrorCode::kConflict) return WithRefusal(status, procedure, data, actor);
    return status;
  }
  StartedOnce once;
  once.started = *started;
  once.created = true;
  return once;
}

}  // namespace wf::engine
