#include "cli/session.hpp"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>

#include "cli/output.hpp"
#include "engine/calendar.hpp"
#include "engine/case_detail.hpp"
#include "engine/case_view.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_limits.hpp"

namespace wf::cli {

namespace {
engine::TimePoint ToTimePoint(engine::Timestamp t) {
  return engine::TimePoint(
      std::chrono::duration_cast<engine::TimePoint::duration>(t.time_since_epoch()));
}
}  // namespace

Result<engine::Deployment> LoadDeploymentFor(const GlobalOptions& globals) {
  return engine::LoadDeployment(globals.config);
}

namespace {

// What a command reads before it starts, in one transaction (Store::Open's first read).
struct OpeningReads {
  engine::StoreTx::LoginIdentity identity;
  std::optional<engine::StoredConfig> config;
};

// Replaces the agencies, members and calendars of `deployment` with those of the newest
// configuration stored in the database, if there is one.
Status UseStoredConfig(Session& session, std::optional<engine::StoredConfig> stored) {
  if (!stored) return Status::Ok();
  auto parsed = engine::LoadDeploymentText(stored->source,
                                           TrFormat("stored configuration v{0}", stored->version));
  if (!parsed) return Status::Internal(parsed.error().message());
  session.deployment.agencies = std::move(parsed->agencies);
  session.deployment.calendars = std::move(parsed->calendars);
  session.config_version = stored->version;
  return Status::Ok();
}

// Who acts: the login on PostgreSQL (--as only for a wf_delegate), --as on SQLite.
Status ResolveActor(Session& session, const GlobalOptions& globals,
                    const engine::StoreTx::LoginIdentity& identity) {
  if (session.store->backend() != engine::Backend::kPostgres) {
    session.actor = globals.actor;
    return Status::Ok();
  }
  session.login = identity.login;
  session.acts_through_database = !identity.engine;
  if (globals.actor.empty() || globals.actor == session.login) {
    session.actor = session.login;
    return Status::Ok();
  }
  if (!identity.delegate) {
    return Status::NotPermitted(
        TrFormat("--as {0}: on PostgreSQL the actor is the login ({1}); only a login holding "
                 "wf_delegate may act for someone else",
                 globals.actor, session.login));
  }
  session.actor = globals.actor;
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Session>> OpenSession(const GlobalOptions& globals, int pool_size) {
  auto session = std::make_unique<Session>();
  auto deployment = LoadDeploymentFor(globals);
  if (!deployment) return deployment.error();
  session->deployment = std::move(*deployment);
  OpeningReads opening;
  auto store = engine::Store::Open(globals.db, pool_size, [&](engine::StoreTx& tx) {
    auto identity = tx.SessionIdentity();
    if (!identity) return identity.error();
    opening.identity = std::move(*identity);
    auto latest = tx.LatestConfig();
    if (!latest) return latest.error();
    opening.config = std::move(*latest);
    return Status::Ok();
  });
  if (!store) {
    const Status& error = store.error();
    if (error.code() == ErrorCode::kUsage) {
      return Status::Usage(TrFormat(
          "{0}; give --db sqlite:PATH or --db postgresql://... (or set WF_DB)", error.message()));
    }
    return error;
  }
  session->store = std::move(*store);
  if (Status actor = ResolveActor(*session, globals, opening.identity); !actor.ok()) return actor;
  if (Status stored = UseStoredConfig(*session, std::move(opening.config)); !stored.ok()) {
    return stored;
  }
  session->runtime =
      std::make_unique<engine::Runtime>(*session->store, session->deployment, session->expressions);
  return session;
}

namespace {
std::chrono::seconds ActTimeout() {
  const char* text = std::getenv("WF_ACT_TIMEOUT");
  if (text != nullptr) {
    char* end = nullptr;
    long seconds = std::strtol(text, &end, 10);
    if (end != text && *end == '\0' && seconds > 0) return std::chrono::seconds(seconds);
  }
  return std::chrono::seconds(60);
}

// What an act that an engine finished says: its result, or its refusal.
Result<nlohmann::json> OutcomeOf(const engine::ActRecord& act) {
  if (act.status == "refused") {
    int code = act.exit_code >= 1 && act.exit_code <= 7 ? act.exit_code : 1;
    return Status(static_cast<ErrorCode>(code), act.message);
  }
  nlohmann::json result = nlohmann::json::parse(act.result, nullptr, false);
  return result.is_discarded() ? nlohmann::json::object() : result;
}
}  // namespace

Result<nlohmann::json> ActThroughDatabase(Session& session, engine::ActRecord act) {
  act.actor = session.actor;
  std::int64_t id = 0;
  Status submitted = session.store->Transact([&](engine::StoreTx& tx) {
    auto got = tx.SubmitAct(act);
    if (!got) return got.error();
    id = *got;
    return Status::Ok();
  });
  if (!submitted.ok()) return submitted;
  const auto timeout = ActTimeout();
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  auto pause = std::chrono::milliseconds(10);
  for (;;) {
    engine::ActRecord seen;
    Status read = session.store->Read([&](engine::StoreTx& tx) {
      auto got = tx.GetAct(id);
      if (!got) return got.error();
      seen = std::move(*got);
      return Status::Ok();
    });
    if (!read.ok()) return read;
    if (seen.status == "done" || seen.status == "refused") return OutcomeOf(seen);
    if (std::chrono::steady_clock::now() >= deadline) {
      if (seen.status == "applied") return nlohmann::json::object();
      std::string after;
      Status withdrawn = session.store->Transact([&](engine::StoreTx& tx) {
        auto got = tx.WithdrawAct(id);
        if (!got) return got.error();
        after = *got;
        return Status::Ok();
      });
      if (!withdrawn.ok()) return withdrawn;
      if (after != "withdrawn") continue;  // an engine finished it meanwhile: read it again
      return Status::Unavailable(
          TrFormat("no engine applied act {0} ({1}) within {2} s, so it was withdrawn and nothing "
                   "changed; a clerk's act on PostgreSQL is applied by a running `wf engine` (an "
                   "operator's): start one and try again (WF_ACT_TIMEOUT sets the wait)",
                   id, act.kind, i18n::Number(timeout.count())));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

Result<std::string> RequireActor(const Session& session, const std::string& command) {
  if (session.actor.empty()) {
    return Status::Usage(
        TrFormat("`wf {0}` needs to know who is acting: give --as NAME or set WF_ACTOR", command));
  }
  return session.actor;
}

std::string ActorOrAnonymous(const Session& session) {
  return session.actor.empty() ? std::string("anonymous") : session.actor;
}

Result<nlohmann::json> ReadJsonInput(const std::string& path, const std::string& what) {
  std::string text;
  std::string error;
  if (!ReadInput(path, &text, &error)) {
    return Status::NotFound(
        TrFormat("{0}: {1}; give an existing file or - for stdin", what, error));
  }
  // Within the bounds before any DOM exists (workflows/json_limits.hpp).
  auto parsed = workflows::ParseJsonWithin(text);
  if (!parsed) {
    return Status(parsed.error().code(),
                  (path == "-" ? std::string("stdin") : path) + ": " + parsed.error().message());
  }
  return std::move(*parsed);
}

std::string JsonTime(engine::Timestamp t) { return engine::FormatRfc3339(t); }

nlohmann::json JsonTime(const std::optional<engine::Timestamp>& t) {
  return t ? nlohmann::json(JsonTime(*t)) : nlohmann::json(nullptr);
}

std::string LocalTime(const engine::Deployment& deployment, const std::string& agency,
                      engine::Timestamp t) {
  // "2026-01-07T23:59:59+07:00" -> "2026-01-07 23:59": minutes are enough for people, and the
  // offset is the agency's, the same for every row of a table.
  std::string text = deployment.CalendarOf(agency).FormatLocal(ToTimePoint(t));
  if (text.size() >= 16) {
    text = text.substr(0, 16);
    text[10] = ' ';
  }
  return i18n::DateTime(text);
}

std::string DescribeDeadline(const engine::Deployment& deployment, const std::string& agency,
                             engine::Timestamp deadline, engine::Timestamp now) {
  engine::Calendar calendar = deployment.CalendarOf(agency);
  return LocalTime(deployment, agency, deadline) + " (" +
         calendar.DescribeTimeLeft(ToTimePoint(now), ToTimePoint(deadline)) + ")";
}

std::string JoinComma(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

void PrintJson(const nlohmann::json& value) { std::cout << value.dump(2) << '\n'; }

nlohmann::json IncidentJson(const engine::IncidentRecord& i) { return engine::IncidentJson(i); }

nlohmann::json CaseAfter(Session& session, const std::string& case_id) {
  nlohmann::json out = {{"case", case_id}};
  (void)session.store->Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) return record.error();
    out["status"] = record->status;
    out["steps"] = engine::CurrentSteps(record->state);
    return Status::Ok();
  });
  return out;
}

void PrintAfter(const nlohmann::json& after) {
  const std::string id = after["case"].get<std::string>();
  const std::string status = engine::StatusText(after.value("status", std::string("?")));
  if (after.contains("steps") && !after["steps"].empty()) {
    std::cout << TrFormat("case {0} is {1} at {2}\n", id, status,
                          JoinComma(after["steps"].get<std::vector<std::string>>()));
  } else {
    std::cout << TrFormat("case {0} is {1}\n", id, status);
  }
}

}  // namespace wf::cli
