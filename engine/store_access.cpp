// Who may act, in the store (engine/store.hpp, "who may act"): the login of a connection and the
// groups it holds, stored configurations and their members, and the logins `wf users` manages.
// The rules themselves live in the database (migration 8, engine/dialect_access.cpp).
#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/hash.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

constexpr const char* kGroups[] = {"wf_admin", "wf_engine", "wf_clerk", "wf_auditor",
                                   "wf_delegate"};

bool IsLoginName(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  if (!std::islower(static_cast<unsigned char>(name[0])) &&
      !std::isdigit(static_cast<unsigned char>(name[0]))) {
    return false;
  }
  for (char c : name) {
    if (!std::islower(static_cast<unsigned char>(c)) &&
        !std::isdigit(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string GroupRoleOf(std::string_view role) {
  for (const char* group : kGroups) {
    if (std::string_view(group).substr(3) == role) return group;
  }
  return std::string();
}

Result<bool> StoreTx::LoginHolds(const std::string& group) {
  if (!context_.dialect.is_postgres()) return false;
  return Guard(context_, "read the login's roles", [&]() -> Result<bool> {
    Query q(context_.sql, "SELECT CASE WHEN wf_holds(:group) THEN 1 ELSE 0 END");
    q.Bind("group", group).Columns("i");
    q.Execute();
    return q.Int(0) == 1;
  });
}

Result<StoreTx::LoginIdentity> StoreTx::SessionIdentity() {
  if (!context_.dialect.is_postgres()) return LoginIdentity{};
  return Guard(context_, "read the login and its roles", [&]() -> Result<LoginIdentity> {
    Query q(context_.sql,
            "SELECT session_user, CASE WHEN wf_holds('wf_engine') THEN 1 ELSE 0 END,"
            " CASE WHEN wf_holds('wf_delegate') THEN 1 ELSE 0 END");
    q.Columns("tii");
    q.Execute();
    return LoginIdentity{q.Text(0), q.Int(1) == 1, q.Int(2) == 1};
  });
}

Result<int> StoreTx::StoreConfig(const std::string& source,
                                 const std::vector<ConfigMember>& members,
                                 const std::vector<ConfigRule>& rules,
                                 const std::string& applied_by, Timestamp now) {
  const bool pg = context_.dialect.is_postgres();
  return Guard(context_, "store the configuration", [&]() -> Result<int> {
    Query last(context_.sql, "SELECT COALESCE(MAX(version), 0) FROM config_versions");
    last.Columns("i");
    last.Execute();
    const int version = static_cast<int>(last.Int(0)) + 1;
    Query insert(context_.sql,
                 std::string("INSERT INTO config_versions (version, source, sha256, applied_by,"
                             " applied_at) VALUES (:version, :source, :sha256, ") +
                     (pg ? "session_user" : ":applied_by") + ", :applied_at)");
    insert.Bind("version", std::int64_t{version})
        .Bind("source", source)
        .Bind("sha256", Sha256Hex(source))
        .Bind("applied_at", now);
    if (!pg) insert.Bind("applied_by", applied_by);
    insert.Execute();
    Exec(context_.sql, "DELETE FROM config_members");
    for (const ConfigMember& m : members) {
      Query row(context_.sql,
                "INSERT INTO config_members (login, agency, role) VALUES (:login, :agency, :role)");
      row.Bind("login", m.login).Bind("agency", m.agency).Bind("role", m.role);
      row.Execute();
    }
    Exec(context_.sql, "DELETE FROM config_rules");
    for (const ConfigRule& r : rules) {
      Query row(context_.sql,
                "INSERT INTO config_rules (agency, action, procedure, role)"
                " VALUES (:agency, :action, :procedure, :role)");
      row.Bind("agency", r.agency)
          .Bind("action", r.action)
          .Bind("procedure", r.procedure)
          .Bind("role", r.role);
      row.Execute();
    }
    return version;
  });
}

Result<std::optional<StoredConfig>> StoreTx::LatestConfig() {
  return Guard(context_, "read the configuration", [&]() -> Result<std::optional<StoredConfig>> {
    Query q(context_.sql,
            "SELECT version, source, sha256, applied_by, applied_at FROM config_versions"
            " ORDER BY version DESC LIMIT 1");
    q.Columns("ittti");
    if (!q.Execute()) return std::optional<StoredConfig>();
    StoredConfig config;
    config.version = static_cast<int>(q.Int(0));
    config.source = q.Text(1);
    config.sha256 = q.Text(2);
    config.applied_by = q.Text(3);
    config.applied_at = q.Time(4);
    return std::optional<StoredConfig>(std::move(config));
  });
}

Status StoreTx::AddLogin(const std::string& name, const std::string& group,
                         const std::optional<std::string>& password) {
  if (!context_.dialect.is_postgres()) {
    return Status::Usage(
        Tr("an SQLite database has one operator and no logins; `wf users` "
           "manages PostgreSQL logins"));
  }
  if (!IsLoginName(name)) {
    return Status::Invalid(TrFormat(
        "invalid login name '{0}': use lowercase letters, digits, '.', '_' and '-' (at most 63)",
        name));
  }
  return Guard(context_, "add login " + name, [&]() -> Status {
    Query exists(context_.sql, "SELECT COUNT(*) FROM pg_roles WHERE rolname = :name");
    exists.Bind("name", name).Columns("i");
    exists.Execute();
    const std::string quoted = "\"" + name + "\"";  // IsLoginName: no quote inside
    if (exists.Int(0) == 0) {
      std::string create = "CREATE ROLE " + quoted + " LOGIN";
      if (group == "wf_admin") create += " CREATEROLE";
      if (password) {
        Query literal(context_.sql, "SELECT quote_literal(:password)");
        literal.Bind("password", *password).Columns("t");
        literal.Execute();
        create += " PASSWORD " + literal.Text(0);
      }
      Exec(context_.sql, create);
    }
    Exec(context_.sql, "GRANT " + group + " TO " + quoted);
    return Status::Ok();
  });
}

Result<std::vector<LoginRecord>> StoreTx::ListLogins() {
  if (!context_.dialect.is_postgres()) return std::vector<LoginRecord>();
  return Guard(context_, "list logins", [&]() -> Result<std::vector<LoginRecord>> {
    Query q(context_.sql,
            "SELECT r.rolname, CASE WHEN r.rolcanlogin THEN 1 ELSE 0 END,"
            " string_agg(g.rolname, ',' ORDER BY g.rolname) FROM pg_roles r"
            " JOIN pg_auth_members a ON a.member = r.oid JOIN pg_roles g ON g.oid = a.roleid"
            " WHERE g.rolname IN ('wf_admin', 'wf_engine', 'wf_clerk', 'wf_auditor',"
            " 'wf_delegate') GROUP BY r.rolname, r.rolcanlogin ORDER BY r.rolname");
    q.Columns("tit");
    std::vector<LoginRecord> out;
    for (bool row = q.Execute(); row; row = q.Next()) {
      LoginRecord record;
      record.name = q.Text(0);
      record.can_login = q.Int(1) == 1;
      std::string groups = q.Text(2);
      for (size_t start = 0; start <= groups.size();) {
        size_t comma = groups.find(',', start);
        if (comma == std::string::npos) comma = groups.size();
        if (comma > start) record.groups.push_back(groups.substr(start, comma - start));
        start = comma + 1;
      }
      out.push_back(std::move(record));
    }
    return out;
  });
}

Result<std::map<std::int64_t, std::string>> StoreTx::HistoryLogins(const std::string& case_id) {
  return Guard(
      context_, "read history logins", [&]() -> Result<std::map<std::int64_t, std::string>> {
        Query q(
            context_.sql,
            "SELECT seq, login FROM history WHERE case_id = :case_id AND login <> '' ORDER BY seq");
        q.Bind("case_id", case_id).Columns("it");
        std::map<std::int64_t, std::string> out;
        for (bool row = q.Execute(); row; row = q.Next()) out.emplace(q.Int(0), q.Text(1));
        return out;
      });
}

}  // namespace wf::engine
