// The store's federation_callbacks table (migration 10): results owed to other deployments.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

constexpr const char* kCallbackColumns =
    "f.case_id, f.client, f.url, f.caller_case, f.caller_step, f.created_at, f.next_at,"
    " f.attempts, f.last_error, f.delivered_at, f.peer_hash";

CallbackRecord ReadCallback(const Query& q) {
  CallbackRecord r;
  r.case_id = q.Text(0);
  r.client = q.Text(1);
  r.url = q.Text(2);
  r.caller_case = q.Text(3);
  r.caller_step = q.Text(4);
  r.created_at = q.Time(5);
  r.next_at = q.Time(6);
  r.attempts = static_cast<int>(q.Int(7));
  r.last_error = q.Text(8);
  r.delivered_at = q.OptTime(9);
  r.peer_hash = q.Text(10);
  return r;
}

}  // namespace

Status StoreTx::InsertCallback(const CallbackRecord& r) {
  return Guard(context_, "record the callback of a federated case", [&]() -> Status {
    Query q(context_.sql,
            "INSERT INTO federation_callbacks (case_id, client, url, caller_case, caller_step,"
            " created_at, next_at) VALUES (:case_id, :client, :url, :caller_case, :caller_step,"
            " :created_at, :next_at)");
    q.Bind("case_id", r.case_id)
        .Bind("client", r.client)
        .Bind("url", r.url)
        .Bind("caller_case", r.caller_case)
        .Bind("caller_step", r.caller_step)
        .Bind("created_at", r.created_at)
        .Bind("next_at", r.next_at);
    q.Execute();
    return Status::Ok();
  });
}

Result<std::optional<CallbackRecord>> StoreTx::FindCallback(const std::string& case_id) {
  return Guard(context_, "read the callback of a federated case",
               [&]() -> Result<std::optional<CallbackRecord>> {
                 Query q(context_.sql, std::string("SELECT ") + kCallbackColumns +
                                           " FROM federation_callbacks f WHERE f.case_id = :id");
                 q.Bind("id", case_id).Columns("tttttiiitit");
                 if (!q.Execute()) return std::optional<CallbackRecord>();
                 return std::optional<CallbackRecord>(ReadCallback(q));
               });
}

Result<std::vector<CallbackRecord>> StoreTx::DueCallbacks(Timestamp now, int limit) {
  return Guard(context_, "list callbacks due", [&]() -> Result<std::vector<CallbackRecord>> {
    Query q(context_.sql,
            std::string("SELECT ") + kCallbackColumns +
                " FROM federation_callbacks f JOIN cases c ON c.id = f.case_id"
                " WHERE f.delivered_at IS NULL AND f.next_at <= :now AND c.ended_at IS NOT NULL"
                " ORDER BY f.next_at LIMIT :limit");
    q.Bind("now", now).Bind("limit", std::int64_t{limit}).Columns("tttttiiitit");
    std::vector<CallbackRecord> out;
    if (!q.Execute()) return out;
    do {
      out.push_back(ReadCallback(q));
    } while (q.Next());
    return out;
  });
}

Result<bool> StoreTx::LeaseCallback(const std::string& case_id, Timestamp seen, Timestamp until) {
  return Guard(context_, "take a callback for delivery", [&]() -> Result<bool> {
    Query q(context_.sql,
            "UPDATE federation_callbacks SET next_at = :until"
            " WHERE case_id = :id AND next_at = :seen AND delivered_at IS NULL");
    q.Bind("until", until).Bind("id", case_id).Bind("seen", seen);
    q.Execute();
    return q.AffectedRows() == 1;
  });
}

Status StoreTx::CallbackFailed(const std::string& case_id, int attempts, Timestamp next_at,
                               const std::string& error) {
  return Guard(context_, "record a failed callback", [&]() -> Status {
    Query q(context_.sql,
            "UPDATE federation_callbacks SET attempts = :attempts, next_at = :next_at,"
            " last_error = :error WHERE case_id = :id");
    q.Bind("attempts", std::int64_t{attempts})
        .Bind("next_at", next_at)
        .Bind("error", error)
        .Bind("id", case_id);
    q.Execute();
    return Status::Ok();
  });
}

Status StoreTx::CallbackDelivered(const std::string& case_id, int attempts, Timestamp at,
                                  const std::string& peer_hash, const std::string& note) {
  return Guard(context_, "record a delivered callback", [&]() -> Status {
    Query q(context_.sql,
            "UPDATE federation_callbacks SET attempts = :attempts, delivered_at = :at,"
            " peer_hash = :hash, last_error = :note WHERE case_id = :id");
    q.Bind("attempts", std::int64_t{attempts})
        .Bind("at", at)
        .Bind("hash", peer_hash)
        .Bind("note", note)
        .Bind("id", case_id);
    q.Execute();
    return Status::Ok();
  });
}

}  // namespace wf::engine
