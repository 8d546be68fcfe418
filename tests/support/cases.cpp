#include "tests/support/cases.hpp"

#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include <catch2/catch.hpp>

#include "workflows/loader.hpp"

namespace wf::testing {
namespace {

// Runs `get` in a read transaction and returns what it gave; REQUIREs success.
template <typename T, typename Get>
T ReadOrFail(engine::Store& store, Get get) {
  T out{};
  Status status = store.Read([&](engine::StoreTx& tx) {
    auto got = get(tx);
    if (!got) return got.error();
    out = std::move(*got);
    return Status::Ok();
  });
  INFO(status.message());
  REQUIRE(status.ok());
  return out;
}

}  // namespace

const workflows::Procedure& ProcedureFromYaml(const char* yaml) {
  static std::map<std::string, std::unique_ptr<workflows::Procedure>> loaded;
  auto it = loaded.find(yaml);
  if (it == loaded.end()) {
    workflows::LoadResult result = workflows::LoadProcedure(yaml, "test.yaml");
    for (const auto& d : result.diagnostics) UNSCOPED_INFO(d.ToString());
    REQUIRE(result.ok());
    auto procedure = std::make_unique<workflows::Procedure>(std::move(*result.procedure));
    it = loaded.emplace(yaml, std::move(procedure)).first;
  }
  return *it->second;
}

std::string InsertBareCase(engine::Store& store, const std::string& procedure) {
  engine::CaseRecord record;
  record.procedure = procedure;
  record.version = 1;
  record.data = "{}";
  record.state = "{}";
  record.started_at = record.updated_at = engine::Now();
  std::string id;
  Status status = store.Transact([&](engine::StoreTx& tx) {
    auto inserted = tx.InsertCase(record);
    if (!inserted) return inserted.error();
    id = *inserted;
    return Status::Ok();
  });
  if (!status.ok()) FAIL("inserting a case: " << status.message());
  return id;
}

std::string CaseStatus(engine::Store& store, const std::string& case_id) {
  return ReadOrFail<engine::CaseRecord>(store,
                                        [&](engine::StoreTx& tx) { return tx.GetCase(case_id); })
      .status;
}

std::vector<engine::HistoryEvent> CaseHistory(engine::Store& store, const std::string& case_id) {
  return ReadOrFail<std::vector<engine::HistoryEvent>>(
      store, [&](engine::StoreTx& tx) { return tx.ListHistory(case_id); });
}

std::vector<engine::IncidentRecord> CaseIncidents(engine::Store& store,
                                                  const std::string& case_id) {
  return ReadOrFail<std::vector<engine::IncidentRecord>>(
      store, [&](engine::StoreTx& tx) { return tx.ListIncidents(case_id); });
}

std::vector<engine::WorkItem> CaseWork(engine::Store& store, const std::string& case_id) {
  return ReadOrFail<std::vector<engine::WorkItem>>(
      store, [&](engine::StoreTx& tx) { return tx.ListWork(case_id); });
}

std::vector<engine::TaskRecord> CaseTasks(engine::Store& store, const std::string& case_id) {
  return ReadOrFail<std::vector<engine::TaskRecord>>(store, [&](engine::StoreTx& tx) {
    engine::TaskFilter filter;
    filter.case_id = case_id;
    filter.open_only = false;
    return tx.ListTasks(filter);
  });
}

engine::CaseRecord CaseRow(engine::Store& store, const std::string& case_id) {
  return ReadOrFail<engine::CaseRecord>(store,
                                        [&](engine::StoreTx& tx) { return tx.GetCase(case_id); });
}

std::vector<engine::HistoryEvent> SealedChain(const std::string& case_id, int length) {
  std::vector<engine::HistoryEvent> events;
  for (int i = 0; i < length; ++i) {
    engine::HistoryEvent e;
    e.case_id = case_id;
    e.at = "2026-01-01T00:00:0" + std::to_string(i) + ".000000Z";
    e.actor = i == 0 ? "an.nguyen" : "engine";
    e.action = i == 0 ? "started" : "step_completed";
    e.step = "step" + std::to_string(i);
    e.details = R"({"b":1,"a":[)" + std::to_string(i) + "]}";
    engine::SealEvent(e, events.empty() ? nullptr : &events.back());
    events.push_back(e);
  }
  return events;
}

engine::EngineOptions UntilIdleOptions() {
  engine::EngineOptions options;
  options.until_idle = true;
  options.idle_wait = std::chrono::seconds(5);
  options.concurrency = 64;
  return options;
}

Status RunWithDeadline(engine::Engine& engine, std::chrono::seconds limit) {
  std::atomic<bool> done{false};
  Status status;
  std::thread runner([&] {
    status = engine.Run();
    done = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  const bool in_time = done;
  if (!in_time) engine.Stop();
  runner.join();
  CHECK(in_time);
  return status;
}

Result<HistorySummary> VerifyHistory(engine::Store& store,
                                     const std::optional<std::string>& case_id) {
  engine::ChainVerifier verifier;
  Status status = store.ForEachHistory(case_id, std::nullopt, [&](const engine::HistoryEvent& e) {
    if (std::optional<engine::ChainBreak> failure = verifier.Feed(e)) {
      return Status::HistoryBroken(failure->Describe());
    }
    return Status::Ok();
  });
  if (!status.ok()) return status;
  if (case_id && verifier.events() == 0) {
    return Status::NotFound("case " + *case_id + " has no history");
  }
  return HistorySummary{verifier.cases(), verifier.events()};
}

}  // namespace wf::testing
