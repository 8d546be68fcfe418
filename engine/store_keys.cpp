// The store's case_keys table (migration 11): the wrapped data keys of cases with personal data.
#include <algorithm>
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
                              const DataKey& key, KeySource& keys, Timestamp now) {
  return Guard(context_, "record the data key of case " + case_id, [&]() -> Status {
    Query q(context_.sql,
            "INSERT INTO case_keys (case_id, wrapped, created_at) VALUES (:id, :wrapped, :at)");
    q.Bind("id", case_id).Bind("wrapped", wrapped).Bind("at", now);
    q.Execute();
    context_.fresh_keys[case_id] = key;
    AfterCommit([&keys, case_id, key] { keys.Remember(case_id, key); });
    return Status::Ok();
  });
}

std::optional<DataKey> StoreTx::FreshCaseKey(const std::string& case_id) const {
  auto it = context_.fresh_keys.find(case_id);
  if (it == context_.fresh_keys.end()) return std::nullopt;
  return it->second;
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

Result<std::vector<std::pair<std::string, std::string>>> StoreTx::GetCaseKeys(
    const std::vector<std::string>& case_ids) {
  using Keys = std::vector<std::pair<std::string, std::string>>;
  return Guard(context_, "read the data keys of claimed work", [&]() -> Result<Keys> {
    Keys out;
    // In slices, to keep the statement's parameters well under either database's limit.
    constexpr size_t kSlice = 200;
    for (size_t from = 0; from < case_ids.size(); from += kSlice) {
      const size_t to = std::min(case_ids.size(), from + kSlice);
      std::string sql = "SELECT case_id, wrapped FROM case_keys WHERE case_id IN (";
      for (size_t i = from; i < to; ++i) sql += (i == from ? ":c" : ", :c") + std::to_string(i);
      sql += ")";
      Query q(context_.sql, sql);
      for (size_t i = from; i < to; ++i) q.Bind("c" + std::to_string(i), case_ids[i]);
      q.Columns("tt");
      if (!q.Execute()) continue;
      do {
        out.emplace_back(q.Text(0), q.Text(1));
      } while (q.Next());
    }
    return out;
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

namespace {

// `wrapped` opened with the key file; the engine keeps it (a row that existed before this
// transaction, so no rollback can take it back).
Result<std::optional<DataKey>> Unwrapped(KeySource& keys, const std::string& case_id,
                                         const std::string& wrapped, KeyUse use) {
  auto ring = keys.Ring(false);
  if (!ring) return ring.error();
  auto key = (*ring)->Unwrap(wrapped);
  if (!key) return key.error();
  if (use == KeyUse::kEngine) keys.Remember(case_id, *key);
  return std::optional<DataKey>(*key);
}

}  // namespace

Result<std::optional<DataKey>> ReadCaseKey(StoreTx& tx, KeySource& keys, const std::string& case_id,
                                           KeyUse use) {
  if (auto fresh = tx.FreshCaseKey(case_id)) return fresh;
  if (use == KeyUse::kEngine) {
    if (auto cached = keys.Cached(case_id)) return cached;
  }
  auto wrapped = tx.GetCaseKey(case_id);
  if (!wrapped) return wrapped.error();
  if (!*wrapped) return std::optional<DataKey>();
  return Unwrapped(keys, case_id, **wrapped, use);
}

Revealer RevealerFor(StoreTx& tx, KeySource& keys, KeyUse use) {
  return Revealer([&tx, &keys, use](const std::string& case_id) {
    return ReadCaseKey(tx, keys, case_id, use);
  });
}

Status PrefetchCaseKeys(StoreTx& tx, KeySource& keys, const std::vector<WorkItem>& items) {
  std::vector<std::string> wanted;
  for (const WorkItem& item : items) {
    if (MaySeal(item.payload) && !tx.FreshCaseKey(item.case_id) && !keys.Cached(item.case_id)) {
      wanted.push_back(item.case_id);
    }
  }
  if (wanted.empty()) return Status::Ok();
  std::sort(wanted.begin(), wanted.end());
  wanted.erase(std::unique(wanted.begin(), wanted.end()), wanted.end());
  auto wrapped = tx.GetCaseKeys(wanted);
  if (!wrapped) return wrapped.error();
  for (const auto& [case_id, text] : *wrapped) {
    // A key that does not open (no key file, another KEK) is Runtime::RevealJsonText's to
    // report when the payload is opened; the claim goes on.
    (void)Unwrapped(keys, case_id, text, KeyUse::kEngine);
  }
  return Status::Ok();
}

}  // namespace wf::engine
