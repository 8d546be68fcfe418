// The store's history chains inside a transaction (engine/store.hpp, "history"): appending a
// sealed event after the chain's head (directly, or deferred into the pipeline) and reading one
// case's chain. Whole-store reads of history are in store_audit.cpp.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {
using namespace detail;  // NOLINT: the store's shared internals

// An event of `case_id` not yet chained: what AppendEvent seals.
HistoryEvent UnsealedEvent(const std::string& case_id, const std::string& actor,
                           const std::string& action, const std::string& step, Timestamp at,
                           std::string details) {
  HistoryEvent event;
  event.case_id = case_id;
  event.at = FormatRfc3339(at);
  event.actor = actor;
  event.action = action;
  event.step = step;
  event.details = std::move(details);
  return event;
}

}  // namespace

Result<HistoryEvent> StoreTx::AppendHistory(const std::string& case_id, const std::string& actor,
                                            const std::string& action, const std::string& step,
                                            const std::string& details_json, Timestamp at) {
  const std::string& details = details_json.empty() ? std::string("{}") : details_json;
  if (!nlohmann::json::accept(details)) {
    return Status::Invalid("history details of case " + case_id + " are not JSON");
  }
  return AppendEvent(UnsealedEvent(case_id, actor, action, step, at, details), /*canonical=*/false);
}

Result<HistoryEvent> StoreTx::AppendHistoryJson(const std::string& case_id,
                                                const std::string& actor, const std::string& action,
                                                const std::string& step, nlohmann::json details,
                                                Timestamp at) {
  // The compact dump is the canonical form of the details, so it is hashed as written. Invalid
  // UTF-8 (in a message from a department, say) is replaced, as the chain's hash does.
  std::string text =
      workflows::DumpJson(details, nlohmann::json::error_handler_t::replace);
  return AppendEvent(UnsealedEvent(case_id, actor, action, step, at, std::move(text)),
                     /*canonical=*/true);
}

std::optional<std::pair<std::int64_t, std::string>> StoreTx::ChainHead(
    const std::string& case_id) const {
  auto head = context_.heads.find(case_id);
  if (head == context_.heads.end()) return std::nullopt;
  return head->second;
}

void StoreTx::KnowChainHead(const std::string& case_id, std::int64_t seq, std::string hash) {
  context_.heads[case_id] = {seq, std::move(hash)};
}

Result<HistoryEvent> StoreTx::AppendEvent(HistoryEvent event, bool canonical) {
  const std::string& case_id = event.case_id;
  auto head = context_.heads.find(case_id);
  if (head == context_.heads.end()) {
    auto last = Guard(context_, "append history of case " + case_id,
                      [&]() -> Result<std::pair<std::int64_t, std::string>> {
                        Query q(context_.sql,
                                "SELECT seq, hash FROM history WHERE case_id = :case_id"
                                " ORDER BY seq DESC LIMIT 1");
                        q.Bind("case_id", case_id).Columns("it");
                        if (!q.Execute()) return std::make_pair(std::int64_t{0}, std::string());
                        return std::make_pair(q.Int(0), q.Text(1));
                      });
    if (!last) return last.error();
    head = context_.heads.emplace(case_id, std::move(*last)).first;
  }
  HistoryEvent previous;
  previous.seq = head->second.first;
  previous.hash = head->second.second;
  if (canonical) {
    SealCanonicalEvent(event, previous.seq > 0 ? &previous : nullptr);
  } else {
    SealEvent(event, previous.seq > 0 ? &previous : nullptr);
  }
  if (context_.defer_writes) {
    if (!context_.failure.ok()) return context_.failure;
    context_.pending.history.push_back(Row{event.case_id, std::to_string(event.seq), event.at,
                                           event.actor, event.action, event.step, event.details,
                                           event.prev_hash, event.hash});
    head->second = {event.seq, event.hash};
    return event;
  }
  auto appended =
      Guard(context_, "append history of case " + case_id, [&]() -> Result<HistoryEvent> {
        Query insert(context_.sql, "INSERT INTO history (" + ColumnNames(kHistoryColumns) +
                                       ") VALUES (:case_id, :seq, :at, :actor, :action, :step,"
                                       " :details, :prev_hash, :hash)");
        insert.Bind("case_id", event.case_id)
            .Bind("seq", event.seq)
            .Bind("at", event.at)
            .Bind("actor", event.actor)
            .Bind("action", event.action)
            .Bind("step", event.step)
            .Bind("details", event.details)
            .Bind("prev_hash", event.prev_hash)
            .Bind("hash", event.hash)
            .Execute();
        return event;
      });
  if (appended) head->second = {event.seq, event.hash};
  return appended;
}

Result<std::vector<HistoryEvent>> StoreTx::ListHistory(const std::string& case_id) {
  return Guard(context_, "read history", [&]() -> Result<std::vector<HistoryEvent>> {
    Query q(context_.sql, "SELECT " + SelectList(kHistoryColumns, context_.dialect) +
                              " FROM history WHERE case_id = :case_id ORDER BY seq");
    q.Bind("case_id", case_id).Columns(kHistoryColumns);
    return ReadAll(q, kHistoryColumns);
  });
}

}  // namespace wf::engine
