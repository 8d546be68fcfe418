// The store's case_keys table (migration 11): the wrapped data keys of cases with personal data.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"

namespace wf::engine {

using namespace detail;  // NOLINT: the store's shared internals

Status StoreTx::InsertCaseKey(const std::string& case_id, const std::string& wrapped,
                              Timestamp now) {
  return Guard(context_, "record the data key of case " + case_id, [&]() -> Status {
    Query q(context_.sql,
            "INSERT INTO case_keys (case_id, wrapped, created_at) VALUES (:id, :wrapped, :at)");
    q.Bind("id", case_id).Bind("wrapped", wrapped).Bind("at", now);
    q.Execute();
    return Status::Ok();
  });
}

Result<std::optional<std::string>> StoreTx::GetCaseKey(const std::string& case_id) {
  return Guard(context_, "read the data key of case " + case_id,
               [&]() -> Result<std::optional<std::string>> {
                 Query q(context_.sql, "SELECT wrapped FROM case_keys WHERE case_id = :id");
                 q.Bind("id", case_id).Columns("t");
                 if (!q.Execute()) return std::optional<std::string>();
                 return std::optional<std::string>(q.Text(0));
               });
}

Status StoreTx::UpdateCaseKey(const std::string& case_id, const std::string& wrapped) {
  return Guard(context_, "re-wrap the data key of case " + case_id, [&]() -> Status {
    Query q(context_.sql, "UPDATE case_keys SET wrapped = :wrapped WHERE case_id = :id");
    q.Bind("wrapped", wrapped).Bind("id", case_id);
    q.Execute();
    return Status::Ok();
  });
}

Result<bool> StoreTx::DeleteCaseKey(const std::string& case_id) {
  return Guard(context_, "erase the data key of case " + case_id, [&]() -> Result<bool> {
    Query q(context_.sql, "DELETE FROM case_keys WHERE case_id = :id");
    q.Bind("id", case_id);
    q.Execute();
    return q.AffectedRows() > 0;
  });
}

Result<std::vector<std::pair<std::string, std::string>>> StoreTx::ListCaseKeys() {
  using Keys = std::vector<std::pair<std::string, std::string>>;
  return Guard(context_, "list the data keys", [&]() -> Result<Keys> {
    Query q(context_.sql, "SELECT case_id, wrapped FROM case_keys ORDER BY case_id");
    q.Columns("tt");
    Keys out;
    if (!q.Execute()) return out;
    do {
      out.emplace_back(q.Text(0), q.Text(1));
    } while (q.Next());
    return out;
  });
}

Result<std::vector<KeyedCase>> StoreTx::ListKeyedEndedCases(Timestamp ended_before) {
  return Guard(
      context_, "list ended cases with personal data", [&]() -> Result<std::vector<KeyedCase>> {
        Query q(context_.sql,
                "SELECT c.id, c.procedure, c.version, c.ended_at FROM cases c"
                " JOIN case_keys k ON k.case_id = c.id"
                " WHERE c.ended_at IS NOT NULL AND c.ended_at < :before ORDER BY c.id");
        q.Bind("before", ended_before).Columns("ttii");
        std::vector<KeyedCase> out;
        if (!q.Execute()) return out;
        do {
          out.push_back(KeyedCase{q.Text(0), q.Text(1), static_cast<int>(q.Int(2)), q.OptTime(3)});
        } while (q.Next());
        return out;
      });
}

Result<int> StoreTx::DeleteEvidenceOfCase(const std::string& case_id) {
  return Guard(context_, "erase the evidence of case " + case_id, [&]() -> Result<int> {
    Query q(context_.sql, "DELETE FROM evidence WHERE case_id = :id");
    q.Bind("id", case_id);
    q.Execute();
    return static_cast<int>(q.AffectedRows());
  });
}

Result<std::optional<DataKey>> ReadCaseKey(StoreTx& tx, KeySource& keys,
                                           const std::string& case_id) {
  if (auto cached = keys.Cached(case_id)) return cached;
  auto wrapped = tx.GetCaseKey(case_id);
  if (!wrapped) return wrapped.error();
  if (!*wrapped) return std::optional<DataKey>();
  auto ring = keys.Ring(false);
  if (!ring) return ring.error();
  auto key = (*ring)->Unwrap(**wrapped);
  if (!key) return key.error();
  keys.Remember(case_id, *key);
  return std::optional<DataKey>(*key);
}

Revealer RevealerFor(StoreTx& tx, KeySource& keys) {
  return Revealer(
      [&tx, &keys](const std::string& case_id) { return ReadCaseKey(tx, keys, case_id); });
}

}  // namespace wf::engine
