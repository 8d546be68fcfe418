// wf users add/list, wf config apply/show: who may act (DESIGN.md "Who may act (PostgreSQL)").
// The rules are the database's (engine/dialect_access.cpp); these commands only fill it.
#include <iostream>
#include <memory>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/timestamp.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

// On PostgreSQL, kNotPermitted unless the login holds wf_admin (the grants would refuse anyway;
// this says so in words). Always ok on SQLite, whose one operator does everything.
Status RequireAdmin(Session& session, const std::string& command) {
  if (session.store->backend() != engine::Backend::kPostgres) return Status::Ok();
  bool admin = false;
  Status read = session.store->Read([&](engine::StoreTx& tx) {
    auto holds = tx.LoginHolds("wf_admin");
    if (!holds) return holds.error();
    admin = *holds;
    return Status::Ok();
  });
  if (!read.ok()) return read;
  if (admin) return Status::Ok();
  return Status::NotPermitted(
      TrFormat("`wf {0}` is for admins: login {1} does not hold wf_admin", command, session.login));
}

// `text` without its top-level `departments:` block (the key's line and every following line
// that is indented, blank or a comment, up to the next top-level key).
std::string WithoutDepartments(const std::string& text) {
  std::string out;
  bool skipping = false;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    end = end == std::string::npos ? text.size() : end + 1;
    std::string_view line(text.data() + start, end - start);
    const bool top_level = !line.empty() && line[0] != ' ' && line[0] != '\t' && line[0] != '#' &&
                           line[0] != '\n' && line[0] != '\r';
    if (top_level) skipping = line.substr(0, 12) == "departments:";
    if (!skipping) out.append(line);
    start = end;
  }
  return out;
}

int ConfigApply(const GlobalOptions& globals, const std::string& file) {
  std::string text, error;
  if (!ReadInput(file, &text, &error)) {
    return Fail(Status::NotFound(TrFormat("{0}: {1}; give the configuration's file", file, error)));
  }
  auto parsed = engine::LoadDeploymentText(text, file);
  if (!parsed) return Fail(parsed.error());
  if (!parsed->departments.empty()) {
    // Departments (URLs, secrets) stay in each engine host's --config: what clerks may read
    // holds agencies, members and calendars only.
    text = WithoutDepartments(text);
    parsed = engine::LoadDeploymentText(text, file);
    if (!parsed) return Fail(parsed.error());
    if (!parsed->departments.empty()) {
      return Fail(Status::Invalid(
          TrFormat("{0}: write `departments:` as a top-level block, or leave it out: a stored "
                   "configuration holds no departments",
                   file)));
    }
    std::cerr << TrFormat(
        "wf: {0}: departments are not stored; they stay in each engine host's --config\n", file);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if (Status admin = RequireAdmin(**session, "config apply"); !admin.ok()) return Fail(admin);
  std::vector<engine::ConfigMember> members;
  for (const auto& [agency_name, agency] : parsed->agencies) {
    for (const auto& [login, roles] : agency.members) {
      for (const auto& role : roles) members.push_back({login, agency_name, role});
    }
  }
  std::vector<engine::ConfigRule> rules;
  for (const auto& [agency_name, agency] : parsed->agencies) {
    for (const auto& role : agency.may_cancel) rules.push_back({agency_name, "cancel", "", role});
    for (const auto& [procedure, roles] : agency.may_start) {
      for (const auto& role : roles) rules.push_back({agency_name, "start", procedure, role});
    }
  }
  int version = 0;
  const std::string by = ActorOrAnonymous(**session);
  Status stored = (*session)->store->Transact([&](engine::StoreTx& tx) {
    auto applied = tx.StoreConfig(text, members, rules, by, engine::Now());
    if (!applied) return applied.error();
    version = *applied;
    return Status::Ok();
  });
  if (!stored.ok()) return Fail(stored);
  if (globals.json) {
    PrintJson({{"version", version},
               {"agencies", parsed->agencies.size()},
               {"members", members.size()},
               {"rules", rules.size()},
               {"calendars", parsed->calendars.size()}});
  } else {
    auto count = [](size_t n) { return i18n::Number(static_cast<long long>(n)); };
    std::cout << TrFormat(
        "configuration v{0} applied: {1} agencies, {2} memberships, {3} rules, {4} calendars\n",
        version, count(parsed->agencies.size()), count(members.size()), count(rules.size()),
        count(parsed->calendars.size()));
  }
  return 0;
}

int ConfigShow(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::optional<engine::StoredConfig> stored;
  Status read = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto latest = tx.LatestConfig();
    if (!latest) return latest.error();
    stored = std::move(*latest);
    return Status::Ok();
  });
  if (!read.ok()) return Fail(read);
  if (!stored) {
    return Fail(
        Status::NotFound(Tr("no configuration is stored yet; `wf config apply FILE` stores one")));
  }
  if (globals.json) {
    PrintJson({{"version", stored->version},
               {"sha256", stored->sha256},
               {"applied_by", stored->applied_by},
               {"applied_at", JsonTime(stored->applied_at)},
               {"source", stored->source}});
  } else {
    std::cout << TrFormat("# configuration v{0}, applied by {1} at {2}\n", stored->version,
                          stored->applied_by, JsonTime(stored->applied_at))
              << stored->source;
    if (!stored->source.empty() && stored->source.back() != '\n') std::cout << '\n';
  }
  return 0;
}

struct UsersAddOptions {
  std::string name;
  std::string role;
  std::string password_file;
};

int UsersAdd(const GlobalOptions& globals, const UsersAddOptions& options) {
  const std::string group = engine::GroupRoleOf(options.role);
  if (group.empty()) {
    return Fail(Status::Usage(
        TrFormat("--role {0}: write clerk, auditor, engine, admin or delegate", options.role)));
  }
  std::optional<std::string> password;
  if (!options.password_file.empty()) {
    std::string text, error;
    if (!ReadInput(options.password_file, &text, &error)) {
      return Fail(Status::NotFound(TrFormat("--password-file: {0}", error)));
    }
    text = text.substr(0, text.find('\n'));
    if (text.empty()) {
      return Fail(Status::Invalid(Tr("--password-file: the first line is empty")));
    }
    password = text;
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if (Status admin = RequireAdmin(**session, "users add"); !admin.ok()) return Fail(admin);
  Status added = (*session)->store->Transact(
      [&](engine::StoreTx& tx) { return tx.AddLogin(options.name, group, password); });
  if (!added.ok()) return Fail(added);
  if (globals.json) {
    PrintJson({{"login", options.name}, {"group", group}});
  } else {
    std::cout << TrFormat("login {0} holds {1}\n", options.name, group);
  }
  return 0;
}

int UsersList(const GlobalOptions& globals) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  std::vector<engine::LoginRecord> logins;
  Status read = (*session)->store->Read([&](engine::StoreTx& tx) {
    auto list = tx.ListLogins();
    if (!list) return list.error();
    logins = std::move(*list);
    return Status::Ok();
  });
  if (!read.ok()) return Fail(read);
  // Members of the stored configuration, with or without a login yet.
  std::set<std::string> names;
  for (const auto& login : logins) names.insert(login.name);
  for (const auto& [agency_name, agency] : (*session)->deployment.agencies) {
    for (const auto& [member, roles] : agency.members) names.insert(member);
  }
  auto memberships = [&](const std::string& name) {
    std::vector<std::string> out;
    for (const auto& [agency_name, agency] : (*session)->deployment.agencies) {
      auto it = agency.members.find(name);
      if (it == agency.members.end()) continue;
      for (const auto& role : it->second) out.push_back(role + "@" + agency_name);
    }
    return out;
  };
  json rows = json::array();
  Table table({Tr("LOGIN"), Tr("GROUPS"), Tr("MEMBER OF")});
  for (const auto& name : names) {
    std::vector<std::string> groups;
    for (const auto& login : logins) {
      if (login.name == name) groups = login.groups;
    }
    std::vector<std::string> member_of = memberships(name);
    rows.push_back({{"login", name}, {"groups", groups}, {"member_of", member_of}});
    table.AddRow({name, groups.empty() ? "-" : JoinComma(groups),
                  member_of.empty() ? "-" : JoinComma(member_of)});
  }
  if (globals.json) {
    PrintJson(rows);
  } else {
    table.Print(std::cout);
  }
  return 0;
}

}  // namespace

void AddAccessCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  auto* users = app.add_subcommand("users", Tr("database logins and their groups (PostgreSQL)"));
  users->require_subcommand(1);
  auto* add = users->add_subcommand("add", Tr("create a login and grant it a group (admins)"));
  auto add_options = std::make_shared<UsersAddOptions>();
  add->add_option("name", add_options->name, Tr("the login, e.g. an.nguyen"))->required();
  add->add_option("--role", add_options->role, Tr("clerk, auditor, engine, admin or delegate"))
      ->required();
  add->add_option("--password-file", add_options->password_file,
                  Tr("the login's password on the first line of FILE (- for stdin); without it "
                     "the login authenticates as pg_hba.conf says (certificates, peer)"));
  add->callback([&globals, add_options, selected] {
    *selected = [&globals, add_options] { return UsersAdd(globals, *add_options); };
  });
  auto* list =
      users->add_subcommand("list", Tr("logins holding a wf group, and their memberships"));
  list->callback([&globals, selected] { *selected = [&globals] { return UsersList(globals); }; });

  auto* config = app.add_subcommand(
      "config", Tr("the agencies, members and calendars stored in the database"));
  config->require_subcommand(1);
  auto* apply =
      config->add_subcommand("apply", Tr("store FILE as the next configuration (admins)"));
  auto file = std::make_shared<std::string>();
  apply->add_option("file", *file, Tr("a deployment config without departments"))->required();
  apply->callback([&globals, file, selected] {
    *selected = [&globals, file] { return ConfigApply(globals, *file); };
  });
  auto* show = config->add_subcommand("show", Tr("print the newest stored configuration"));
  show->callback([&globals, selected] { *selected = [&globals] { return ConfigShow(globals); }; });
}

}  // namespace wf::cli
