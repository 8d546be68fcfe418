// Clerks' acts in the store (engine/store.hpp, "clerks' acts"): submitted through the database
// function wf_act, which decides who may (engine/dialect_acts.cpp), and applied by an engine in
// one transaction with the act's row (engine/acts.hpp). PostgreSQL only: an SQLite database has
// one operator, who changes cases directly.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

#define WF_ACT_COLUMNS                                                                      \
  "SELECT id, kind, case_id, task_id, procedure, actor, login, payload, status, exit_code," \
  " message, result FROM acts"
constexpr const char* kGetActSql = WF_ACT_COLUMNS " WHERE id = :id";
constexpr const char* kPendingActsSql =
    WF_ACT_COLUMNS " WHERE status = 'pending' ORDER BY id LIMIT :limit";
#undef WF_ACT_COLUMNS

ActRecord ReadAct(const Query& q) {
  ActRecord act;
  act.id = q.Int(0);
  act.kind = q.Text(1);
  act.case_id = q.Text(2);
  act.task_id = q.OptInt(3);
  act.procedure = q.Text(4);
  act.actor = q.Text(5);
  act.login = q.Text(6);
  act.payload = q.Text(7);
  act.status = q.Text(8);
  act.exit_code = static_cast<int>(q.Int(9));
  act.message = q.Text(10);
  act.result = q.Text(11);
  return act;
}

// "act 42", built without operator+ on a literal (g++ 12 warns falsely of array bounds there).
std::string ActName(std::int64_t id) {
  std::string name = "act ";
  name.append(std::to_string(id));
  return name;
}

Status OnlyPostgres(const TxContext& ctx) {
  if (ctx.dialect.is_postgres()) return Status::Ok();
  return Status::Usage(Tr("acts through the database exist on PostgreSQL only"));
}

std::optional<std::string> NonEmpty(const std::string& text) {
  return text.empty() ? std::nullopt : std::optional<std::string>(text);
}

}  // namespace

Result<std::int64_t> StoreTx::SubmitAct(const ActRecord& act) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, act.kind, [&]() -> Result<std::int64_t> {
    Query q(context_.sql, "SELECT wf_act(:kind, :case_id, :task_id, :procedure, :actor, :payload)");
    q.Bind("kind", act.kind)
        .Bind("case_id", NonEmpty(act.case_id))
        .Bind("task_id", act.task_id)
        .Bind("procedure", NonEmpty(act.procedure))
        .Bind("actor", act.actor)
        .Bind("payload", act.payload)
        .Columns("i");
    q.Execute();
    // An engine applies the act: wake the engines once this transaction has committed.
    context_.work_changed = true;
    return q.Int(0);
  });
}

Result<ActRecord> StoreTx::GetAct(std::int64_t id) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "read " + ActName(id), [&]() -> Result<ActRecord> {
    Query q(context_.sql, kGetActSql);
    q.Bind("id", id).Columns("ittitttttitt");
    if (!q.Execute()) return Status::NotFound(TrFormat("no act {0}", std::to_string(id)));
    return ReadAct(q);
  });
}

Result<std::string> StoreTx::WithdrawAct(std::int64_t id) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "withdraw " + ActName(id), [&]() -> Result<std::string> {
    Query q(context_.sql, "SELECT wf_act_withdraw(:id)");
    q.Bind("id", id).Columns("t");
    q.Execute();
    return q.Text(0);
  });
}

Result<std::vector<ActRecord>> StoreTx::PendingActs(int limit) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "read pending acts", [&]() -> Result<std::vector<ActRecord>> {
    Query q(context_.sql, kPendingActsSql);
    q.Bind("limit", std::int64_t{limit}).Columns("ittitttttitt");
    std::vector<ActRecord> acts;
    for (bool row = q.Execute(); row; row = q.Next()) acts.push_back(ReadAct(q));
    return acts;
  });
}

Status StoreTx::BeginAct(std::int64_t id, const std::string& login) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "apply " + ActName(id), [&]() -> Status {
    Query q(context_.sql, "SELECT status FROM acts WHERE id = :id FOR UPDATE");
    q.Bind("id", id).Columns("t");
    if (!q.Execute()) return Status::NotFound("no " + ActName(id));
    if (q.Text(0) != "pending") {
      return Status::Conflict(ActName(id) + " is " + q.Text(0) + " already");
    }
    Query acting(context_.sql, "SELECT set_config('wf.acting_login', :login, true)");
    acting.Bind("login", login).Columns("t");
    acting.Execute();
    return Status::Ok();
  });
}

Status StoreTx::MarkActApplied(std::int64_t id, Timestamp now) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "apply " + ActName(id), [&]() -> Status {
    Query q(context_.sql,
            "UPDATE acts SET status = 'applied', finished_at = :now, payload = '{}'"
            " WHERE id = :id");
    q.Bind("now", now).Bind("id", id);
    q.Execute();
    return Status::Ok();
  });
}

Result<int> StoreTx::FinishStaleActs(Timestamp applied_before, Timestamp now) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "finish stale acts", [&]() -> Result<int> {
    Query q(context_.sql,
            "UPDATE acts SET status = 'done', exit_code = 0, finished_at = :now,"
            " message = 'applied; the engine that applied it stopped before recording more'"
            " WHERE status = 'applied' AND finished_at < :before");
    q.Bind("now", now).Bind("before", applied_before);
    q.Execute();
    return static_cast<int>(q.AffectedRows());
  });
}

Status StoreTx::FinishAct(const ActRecord& outcome, Timestamp now) {
  if (Status s = OnlyPostgres(context_); !s.ok()) return s;
  return Guard(context_, "finish " + ActName(outcome.id), [&]() -> Status {
    Query q(context_.sql,
            "UPDATE acts SET status = :status, exit_code = :exit_code, message = :message,"
            " result = :result, finished_at = :now, payload = '{}'"
            " WHERE id = :id AND status IN ('pending', 'applied')");
    q.Bind("status", outcome.status)
        .Bind("exit_code", std::int64_t{outcome.exit_code})
        .Bind("message", outcome.message)
        .Bind("result", outcome.result)
        .Bind("now", now)
        .Bind("id", outcome.id);
    q.Execute();
    return Status::Ok();
  });
}

}  // namespace wf::engine
