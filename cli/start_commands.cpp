// wf start: one case from a JSON file, or a backlog of cases from a JSON Lines file.
#include <algorithm>
#include <iostream>
#include <memory>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "workflows/i18n.hpp"
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
    return Fail(Status::NotFound(TrFormat("--batch: {0}; give an existing .jsonl file", error)));
  }
  std::vector<json> cases;
  std::vector<int> line_of;                         // the file line of each element of `cases`
  std::vector<std::pair<int, std::string>> errors;  // (file line, why it was refused)
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
      errors.emplace_back(number, parsed.error().message());
      invalid = true;
    }
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if ((*session)->acts_through_database) {
    return Fail(Status::NotPermitted(
        TrFormat("--batch: moving a backlog in is an operator's task, for a login holding "
                 "wf_engine; login {0} starts one case at a time (`wf start {1} --data FILE`)",
                 (*session)->login, options.procedure)));
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
    errors.emplace_back(line_of[i], one.refusal.message());
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
    std::cerr << TrFormat("line {0}: {1}\n", line_number, message);
    messages.push_back(fmt::format("line {}: {}", line_number, message));  // JSON: English
  }
  if (globals.json) {
    PrintJson({{"started", ids.size()}, {"ids", ids}, {"errors", messages}});
  } else {
    // One sentence for any count, as the English has always said it ("1 cases").
    const std::string started =
        TrFormat("started {0} cases of {1}", i18n::Number(static_cast<long long>(ids.size())),
                 options.procedure);
    if (errors.empty()) {
      std::cout << started << '\n';
    } else {
      std::cout << TrFormat("{0}; {1} lines refused (see above)\n", started,
                            i18n::Number(static_cast<long long>(errors.size())));
    }
  }
  if (invalid) return ExitCodeOf(ErrorCode::kInvalid);
  if (duplicate) return ExitCodeOf(ErrorCode::kConflict);
  return 0;
}

int Start(const GlobalOptions& globals, const StartOptions& options) {
  if (options.data.empty() == options.batch.empty()) {
    return Fail(Status::Usage(
        TrFormat("`wf start {0}` needs --data FILE (- for stdin) or --batch FILE.jsonl",
                 options.procedure)));
  }
  return options.batch.empty() ? StartOne(globals, options) : StartBatch(globals, options);
}

}  // namespace

void AddStartCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd =
        app.add_subcommand("start", Tr("start a case (prints its id), or many with --batch"));
    auto options = std::make_shared<StartOptions>();
    cmd->add_option("procedure", options->procedure, Tr("the procedure's name"))->required();
    auto* data =
        cmd->add_option("--data", options->data, Tr("case data: a JSON file, - for stdin"));
    auto* batch = cmd->add_option("--batch", options->batch,
                                  Tr("one case a line: a JSON Lines file, - for stdin"));
    data->excludes(batch);
    cmd->add_option("--batch-size", options->batch_size, Tr("cases committed together (--batch)"))
        ->check(CLI::Range(1, 100000));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Start(globals, *options); };
    });
  }
}

}  // namespace wf::cli
