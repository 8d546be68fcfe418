// wf start: one case from a JSON file, or a backlog of cases from a JSON Lines file.
#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "workflows/json_limits.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

struct StartOptions {
  std::string procedure;
  std::string data;
  std::string batch;
  int batch_size = 500;
};

int StartOne(const GlobalOptions& globals, const StartOptions& options) {
  auto data = ReadJsonInput(options.data, "--data");
  if (!data) return Fail(data.error());
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  json out;
  if ((*session)->acts_through_database) {
    engine::ActRecord act;
    act.kind = "start";
    act.procedure = options.procedure;
    act.payload = json{{"data", *data}}.dump();
    auto done = ActThroughDatabase(**session, std::move(act));
    if (!done) return Fail(done.error());
    out = std::move(*done);
  } else {
    auto started =
        (*session)->runtime->StartCase(options.procedure, *data, ActorOrAnonymous(**session));
    if (!started) return Fail(started.error());
    out = {{"id", started->id}, {"procedure", started->procedure}, {"version", started->version}};
  }
  if (globals.json) {
    PrintJson(out);
  } else {
    std::cout << out.value("id", std::string()) << '\n';
  }
  return 0;
}

// Moves a backlog in: one JSON object a line. Lines that are not JSON are refused here; the
// runtime refuses bad data and duplicates line by line and starts the rest.
int StartBatch(const GlobalOptions& globals, const StartOptions& options) {
  std::string text;
  std::string error;
  if (!ReadInput(options.batch, &text, &error)) {
    return Fail(Status::NotFound("--batch: " + error + "; give an existing .jsonl file"));
  }
  std::vector<json> cases;
  std::vector<int> line_of;                         // the file line of each element of `cases`
  std::vector<std::pair<int, std::string>> errors;  // (file line, message)
  bool invalid = false;
  bool duplicate = false;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    auto parsed = workflows::ParseJsonWithin(line);  // bounded before any DOM exists
    if (parsed) {
      cases.push_back(std::move(*parsed));
      line_of.push_back(number);
    } else {
      errors.emplace_back(number,
                          "line " + std::to_string(number) + ": " + parsed.error().message());
      invalid = true;
    }
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if ((*session)->acts_through_database) {
    return Fail(Status::NotPermitted(
        "--batch: moving a backlog in is an operator's task, for a login holding wf_engine; "
        "login " +
        (*session)->login + " starts one case at a time (`wf start " + options.procedure +
        " --data FILE`)"));
  }
  auto outcomes = (*session)->runtime->StartBatch(options.procedure, cases,
                                                  ActorOrAnonymous(**session), options.batch_size);
  if (!outcomes) return Fail(outcomes.error());
  std::vector<std::string> ids;
  for (size_t i = 0; i < outcomes->size(); ++i) {
    const engine::BatchLine& one = (*outcomes)[i];
    if (one.outcome == engine::BatchLine::Outcome::kStarted) {
      ids.push_back(one.started.id);
      continue;
    }
    errors.emplace_back(line_of[i],
                        "line " + std::to_string(line_of[i]) + ": " + one.refusal.message());
    if (one.refusal.code() == ErrorCode::kConflict) {
      duplicate = true;
    } else {
      invalid = true;
    }
  }
  std::stable_sort(errors.begin(), errors.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  json messages = json::array();
  for (const auto& [line_number, message] : errors) {
    std::cerr << message << '\n';
    messages.push_back(message);
  }
  if (globals.json) {
    PrintJson({{"started", ids.size()}, {"ids", ids}, {"errors", messages}});
  } else {
    std::cout << "started " << ids.size() << " cases of " << options.procedure;
    if (!errors.empty()) std::cout << "; " << errors.size() << " lines refused (see above)";
    std::cout << '\n';
  }
  if (invalid) return ExitCodeOf(ErrorCode::kInvalid);
  if (duplicate) return ExitCodeOf(ErrorCode::kConflict);
  return 0;
}

int Start(const GlobalOptions& globals, const StartOptions& options) {
  if (options.data.empty() == options.batch.empty()) {
    return Fail(Status::Usage("`wf start " + options.procedure +
                              "` needs --data FILE (- for stdin) or --batch FILE.jsonl"));
  }
  return options.batch.empty() ? StartOne(globals, options) : StartBatch(globals, options);
}

}  // namespace

void AddStartCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand("start", "start a case (prints its id), or many with --batch");
    auto options = std::make_shared<StartOptions>();
    cmd->add_option("procedure", options->procedure, "the procedure's name")->required();
    auto* data = cmd->add_option("--data", options->data, "case data: a JSON file, - for stdin");
    auto* batch = cmd->add_option("--batch", options->batch,
                                  "one case a line: a JSON Lines file, - for stdin");
    data->excludes(batch);
    cmd->add_option("--batch-size", options->batch_size, "cases committed together (--batch)")
        ->check(CLI::Range(1, 100000));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Start(globals, *options); };
    });
  }
}

}  // namespace wf::cli
