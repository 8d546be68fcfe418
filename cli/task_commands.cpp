// wf inbox, claim, release, complete: a clerk's work on the tasks of their roles.
#include <algorithm>
#include <charconv>
#include <iostream>
#include <map>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/calendar.hpp"
#include "engine/case_detail.hpp"
#include "engine/case_view.hpp"
#include "engine/titles.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

// --- inbox -----------------------------------------------------------------------------------

int Inbox(const GlobalOptions& globals, const std::string& role) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto actor = RequireActor(**session, "inbox");
  if (!actor) return Fail(actor.error());
  const engine::Deployment& deployment = (*session)->deployment;

  engine::Viewer viewer = engine::ViewerOf(deployment, *actor);
  if (!role.empty()) {
    std::erase_if(viewer.agency_roles, [&](const auto& pair) { return pair.second != role; });
    if (viewer.agency_roles.empty()) {
      return Fail(Status::NotPermitted(
          TrFormat("{0} does not hold role '{1}' in any agency; the deployment config's agency "
                   "members say who does",
                   *actor, role)));
    }
  }
  std::vector<engine::TaskRecord> tasks;
  std::map<std::string, engine::CaseRecord> cases;  // the tasks' cases, by id
  engine::TitleBook titles;
  if (viewer.agency_roles.empty()) {
    // An empty filter would mean every role of every agency: say why the inbox is empty instead.
    if ((*session)->config_version > 0) {
      std::cerr << TrFormat(
          "wf: {0} holds no role in the stored configuration v{1}; the inbox is empty\n", *actor,
          (*session)->config_version);
    } else if (globals.config.empty()) {
      std::cerr << TrFormat(
          "wf: {0} holds no role in the deployment (no --config given); the inbox is empty\n",
          *actor);
    } else {
      std::cerr << TrFormat("wf: {0} holds no role in {1}; the inbox is empty\n", *actor,
                            globals.config);
    }
  } else {
    Status status = (*session)->store->Read([&](engine::StoreTx& tx) {
      auto list = tx.ListTasks(engine::InboxFilter(viewer));
      if (!list) return list.error();
      engine::Revealer revealer = engine::RevealerFor(tx, (*session)->store->keys());
      for (auto& task : *list) {
        if (!engine::InInbox(viewer, task)) continue;
        engine::RevealTask(revealer, task);
        tasks.push_back(std::move(task));
      }
      std::vector<std::string> ids;
      for (const auto& task : tasks) {
        if (cases.emplace(task.case_id, engine::CaseRecord{}).second) ids.push_back(task.case_id);
      }
      constexpr size_t kPerQuery = 500;  // bound parameters per statement stay few
      for (size_t i = 0; i < ids.size(); i += kPerQuery) {
        engine::CaseFilter filter;
        filter.ids.assign(ids.begin() + i, ids.begin() + std::min(ids.size(), i + kPerQuery));
        filter.limit = 0;
        auto records = tx.ListCases(filter);
        if (!records) return records.error();
        for (auto& record : *records) cases[record.id] = std::move(record);
      }
      if (globals.json || tasks.empty()) return Status::Ok();
      // Titles in the reader's language; the stored ones when a procedure no longer loads.
      auto book = engine::TitleBook::Load(tx, (*session)->runtime->procedures());
      if (book) titles = std::move(*book);
      return Status::Ok();
    });
    if (!status.ok()) return Fail(status);
  }

  engine::Timestamp now = engine::Now();
  if (globals.json) {
    json out = json::array();
    for (const auto& t : tasks) {
      const engine::CaseRecord& c = cases[t.case_id];
      json form = json::parse(t.form, nullptr, false);
      out.push_back({{"id", t.id},
                     {"case", t.case_id},
                     {"step", t.step},
                     {"role", t.role},
                     {"status", engine::TaskStatusName(t.status)},
                     {"title", t.title},
                     {"agency", t.agency},
                     {"assignee", t.assignee ? json(*t.assignee) : json(nullptr)},
                     {"created_at", JsonTime(t.created_at)},
                     {"due", JsonTime(t.due_at)},
                     {"overdue", engine::IsTaskOverdue(t, now)},
                     {"case_status", c.status},
                     {"case_deadline", JsonTime(c.deadline_at)},
                     {"case_overdue", engine::IsOverdue(c, now)},
                     {"form", form.is_discarded() ? json(nullptr) : form}});
    }
    PrintJson(out);
    return 0;
  }
  if (tasks.empty()) {
    std::cout << TrFormat("no open tasks for {0}\n", *actor);
    return 0;
  }
  Table table({Tr("TASK"), Tr("CASE"), Tr("STEP"), Tr("TITLE"), Tr("ROLE"), Tr("AGENCY"),
               Tr("STATUS"), Tr("ASSIGNEE"), Tr("DUE")});
  for (const auto& t : tasks) {
    std::string due = t.due_at ? DescribeDeadline(deployment, t.agency, *t.due_at, now) : "-";
    if (engine::IsOverdue(cases[t.case_id], now)) due = TrFormat("{0}; case overdue", due);
    table.AddRow({std::to_string(t.id), t.case_id, t.step, titles.Task(t.step, t.title), t.role,
                  t.agency, engine::StatusText(engine::TaskStatusName(t.status)),
                  t.assignee.value_or("-"), due});
  }
  table.Print(std::cout);
  return 0;
}

// --- claim, release --------------------------------------------------------------------------

int ClaimOrRelease(const GlobalOptions& globals, int64_t task_id, bool claim) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto actor = RequireActor(**session, claim ? "claim" : "release");
  if (!actor) return Fail(actor.error());
  Status status;
  if ((*session)->acts_through_database) {
    engine::ActRecord act;
    act.kind = claim ? "claim" : "release";
    act.task_id = task_id;
    act.payload = "{}";
    status = ActedThroughDatabase(**session, std::move(act));
  } else {
    status = claim ? (*session)->runtime->ClaimTask(task_id, *actor)
                   : (*session)->runtime->ReleaseTask(task_id, *actor);
  }
  if (!status.ok()) return Fail(status);
  if (globals.json) {
    PrintJson({{"id", task_id},
               {"status", claim ? "claimed" : "open"},
               {"assignee", claim ? json(*actor) : json(nullptr)}});
  } else {
    std::cout << (claim ? TrFormat("task {0} claimed by {1}\n", task_id, *actor)
                        : TrFormat("task {0} released by {1}\n", task_id, *actor));
  }
  return 0;
}

// --- complete --------------------------------------------------------------------------------

struct CompleteOptions {
  int64_t task = 0;
  std::vector<std::string> sets;
  std::string data;
};

// The form's fields, for messages: "approved (boolean), note (string)".
std::string DescribeFields(const json& properties) {
  if (!properties.is_object() || properties.empty()) return Tr("it has no form fields");
  std::string out;
  bool first = true;
  for (const auto& [name, schema] : properties.items()) {
    if (!first) out += ", ";
    first = false;
    out += name;
    if (schema.is_object() && schema.contains("type") && schema["type"].is_string()) {
      std::string type = schema["type"].get<std::string>();
      if (type == "string" && schema.value("format", "") == "date") type = "date";
      out += " (" + type + ")";
    }
  }
  return TrFormat("its fields: {0}", out);
}

// Turns the text of `--set name=text` into the JSON value the form's schema asks for.
Result<json> TypedValue(const std::string& name, const std::string& text, const json& schema) {
  std::string type = schema.is_object() ? schema.value("type", std::string("string")) : "string";
  if (type == "string" && schema.value("format", "") == "date") type = "date";
  // `msgid`: "--set {0}={1}: '{0}' is ..." with the field's name and text.
  auto bad = [&](const char* msgid) {
    return Status::Invalid(TrFill(Tr(msgid), msgid, fmt::make_format_args(name, text)));
  };
  if (type == "boolean") {
    std::string lower;
    for (char c : text)
      lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    if (lower == "true" || lower == "yes") return json(true);
    if (lower == "false" || lower == "no") return json(false);
    return bad(TrNoop("--set {0}={1}: '{0}' is a boolean: write true or false"));
  }
  if (type == "integer") {
    int64_t value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
      return bad(TrNoop("--set {0}={1}: '{0}' is an integer: write e.g. 42"));
    }
    return json(value);
  }
  if (type == "number") {
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded() || !value.is_number()) {
      return bad(TrNoop("--set {0}={1}: '{0}' is a number: write e.g. 12.5"));
    }
    return value;
  }
  if (type == "date") {
    if (!engine::ParseDate(text)) {
      return bad(TrNoop("--set {0}={1}: '{0}' is a date: write YYYY-MM-DD, e.g. 2026-03-02"));
    }
    return json(text);
  }
  if (type == "object" || type == "array") {
    json value = json::parse(text, nullptr, false);
    if (value.is_discarded() || (type == "object" ? !value.is_object() : !value.is_array())) {
      return bad(type == "object" ? TrNoop("--set {0}={1}: '{0}' is an object: write it as JSON")
                                  : TrNoop("--set {0}={1}: '{0}' is an array: write it as JSON"));
    }
    return value;
  }
  return json(text);
}

int Complete(const GlobalOptions& globals, const CompleteOptions& options) {
  if (options.sets.empty() && options.data.empty()) {
    return Fail(Status::Usage(
        TrFormat("`wf complete {0}` needs the form's values: --set NAME=VALUE ... or --data FILE",
                 options.task)));
  }
  json values = json::object();
  if (!options.data.empty()) {
    auto data = ReadJsonInput(options.data, "--data");
    if (!data) return Fail(data.error());
    if (!data->is_object()) {
      return Fail(Status::Invalid(Tr("--data: the form's values must be a JSON object")));
    }
    values = std::move(*data);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto actor = RequireActor(**session, "complete");
  if (!actor) return Fail(actor.error());

  if (!options.sets.empty()) {
    engine::TaskRecord task;
    Status found = (*session)->store->Read([&](engine::StoreTx& tx) {
      auto got = tx.GetTask(options.task);
      if (!got) {
        if (got.error().code() == ErrorCode::kNotFound) {
          return Status::NotFound(TrFormat("no task {0}; `wf inbox` lists yours", options.task));
        }
        return got.error();
      }
      task = std::move(*got);
      return Status::Ok();
    });
    if (!found.ok()) return Fail(found);
    json form = json::parse(task.form, nullptr, false);
    json properties =
        form.is_object() && form.contains("properties") ? form["properties"] : json::object();
    for (const auto& set : options.sets) {
      size_t eq = set.find('=');
      if (eq == std::string::npos || eq == 0) {
        return Fail(
            Status::Usage(TrFormat("--set {0}: write NAME=VALUE, e.g. --set approved=true", set)));
      }
      std::string name = set.substr(0, eq);
      std::string text = set.substr(eq + 1);
      if (!properties.is_object() || !properties.contains(name)) {
        return Fail(
            Status::Invalid(TrFormat("the form of task {0} ({1}) has no field '{2}'; {3}",
                                     options.task, task.title, name, DescribeFields(properties))));
      }
      auto value = TypedValue(name, text, properties[name]);
      if (!value) return Fail(value.error());
      values[name] = std::move(*value);
    }
  }

  Status status;
  if ((*session)->acts_through_database) {
    engine::ActRecord act;
    act.kind = "complete";
    act.task_id = options.task;
    act.payload = json{{"values", values}}.dump();
    status = ActedThroughDatabase(**session, std::move(act));
  } else {
    status = (*session)->runtime->CompleteTask(options.task, *actor, values);
  }
  if (!status.ok()) return Fail(status);
  // Where the case went, for the clerk's confirmation.
  std::string case_id;
  (void)(*session)->store->Read([&](engine::StoreTx& tx) {
    auto task = tx.GetTask(options.task);
    if (!task) return task.error();
    case_id = task->case_id;
    return Status::Ok();
  });
  json after = case_id.empty() ? json::object() : CaseAfter(**session, case_id);
  if (globals.json) {
    PrintJson({{"id", options.task},
               {"status", "completed"},
               {"completed_by", *actor},
               {"values", values},
               {"case", case_id},
               {"case_status", after.value("status", json(nullptr))},
               {"case_steps", after.value("steps", json::array())}});
  } else {
    std::cout << TrFormat("task {0} completed by {1}", options.task, *actor);
    if (case_id.empty()) {
      std::cout << '\n';
    } else {
      std::cout << "; ";
      PrintAfter(after);
    }
  }
  return 0;
}

}  // namespace

void AddTaskCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("inbox", Tr("open tasks for your roles (--as / WF_ACTOR)"));
    auto role = std::make_shared<std::string>();
    cmd->add_option("--role", *role, Tr("only tasks of this role"));
    cmd->callback([&globals, role, selected] {
      *selected = [&globals, role] { return Inbox(globals, *role); };
    });
  }
  for (bool claim : {true, false}) {
    auto* cmd = app.add_subcommand(claim ? "claim" : "release",
                                   claim ? Tr("take a task so that others see you work on it")
                                         : Tr("give a claimed task back to its role's inbox"));
    auto task = std::make_shared<int64_t>(0);
    cmd->add_option("task", *task, Tr("the task id (`wf inbox`)"))->required();
    cmd->callback([&globals, task, claim, selected] {
      *selected = [&globals, task, claim] { return ClaimOrRelease(globals, *task, claim); };
    });
  }
  {
    auto* cmd = app.add_subcommand("complete", Tr("fill a task's form and complete it"));
    auto options = std::make_shared<CompleteOptions>();
    cmd->add_option("task", options->task, Tr("the task id (`wf inbox`)"))->required();
    cmd->add_option("--set", options->sets,
                    Tr("NAME=VALUE of a form field, typed by the form (repeat it)"))
        ->allow_extra_args(false);
    cmd->add_option("--data", options->data, Tr("the form's values: a JSON file, - for stdin"));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Complete(globals, *options); };
    });
  }
}

}  // namespace wf::cli
