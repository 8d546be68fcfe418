#include "examples/mock-agency/agency.hpp"

#include <string_view>

namespace wf::mock {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultCallbackDelayMs = 100;

Plan JsonPlan(int status, const json& body) {
  Plan plan;
  plan.status = status;
  plan.body = body.dump();
  return plan;
}

Plan Error(int status, const std::string& message) {
  return JsonPlan(status, {{"error", message}});
}

// Splits "/a/b?x" into {"a", "b"}.
std::vector<std::string> PathSegments(const std::string& target) {
  std::string path = target.substr(0, target.find('?'));
  std::vector<std::string> segments;
  size_t start = 0;
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string::npos) slash = path.size();
    if (slash > start) segments.push_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return segments;
}

// Grows `body` (a JSON object) with a "_padding" string until its text is `bytes` long.
std::string Padded(const json& body, int64_t bytes) {
  std::string text = body.dump();
  if (!body.is_object() || static_cast<int64_t>(text.size()) >= bytes) return text;
  json padded = body;
  padded["_padding"] = "";
  const int64_t missing = bytes - static_cast<int64_t>(padded.dump().size());
  padded["_padding"] = std::string(static_cast<size_t>(std::max<int64_t>(missing, 0)), 'x');
  return padded.dump();
}

std::string Substitute(std::string word, const std::map<std::string, std::string>& values) {
  for (const auto& [name, value] : values) {
    const std::string placeholder = "{" + name + "}";
    for (size_t at = word.find(placeholder); at != std::string::npos;
         at = word.find(placeholder, at + value.size())) {
      word.replace(at, placeholder.size(), value);
    }
  }
  return word;
}

}  // namespace

json Agency::Counts::ToJson() const {
  return {{"requests", requests}, {"applied", applied}, {"replays", replays}, {"faults", faults}};
}

Agency::Agency(AgencyOptions options) : options_(std::move(options)) {
  std::lock_guard lock(mutex_);
  ResetLocked();
}

void Agency::ResetLocked() {
  faults_ = FaultTable();
  faults_.Apply(options_.faults.ToJson());
  for (const auto& [department, faults] : options_.departments) {
    json patch = faults.ToJson();
    patch["department"] = department;
    faults_.Apply(patch);
  }
  registry_.Clear();
  ledger_.clear();
  ledger_index_.clear();
  tries_.clear();
  unkeyed_ = sequence_ = 0;
  total_ = Counts();
  conflicts_ = rejected_ = accepted_ = hung_ = 0;
  callbacks_started_ = callbacks_succeeded_ = callbacks_failed_ = 0;
  by_department_.clear();
  by_operation_.clear();
}

Plan Agency::Handle(const Request& request) {
  std::lock_guard lock(mutex_);
  const std::vector<std::string> segments = PathSegments(request.target);
  if (segments.empty() || segments[0].starts_with("_")) return Admin(request);
  if (!IsKnownDepartment(segments[0])) {
    ++rejected_;
    return Error(404, "no department '" + segments[0] + "'");
  }
  if (segments.size() != 2 || !IsKnownOperation(segments[0], segments[1])) {
    ++rejected_;
    return Error(404, "department " + segments[0] + " has no operation '" +
                          (segments.size() > 1 ? segments[1] : "") + "'");
  }
  if (request.method != "POST") {
    ++rejected_;
    Plan plan = Error(405, "department operations take POST");
    plan.headers.emplace_back("Allow", "POST");
    return plan;
  }
  return HandleCall(request, segments[0], segments[1]);
}

Plan Agency::HandleCall(const Request& request, const std::string& department,
                        const std::string& operation) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    ++rejected_;
    return Error(400, "the body must be a JSON object");
  }
  Counts& of_department = by_department_[department];
  Counts& of_operation = by_operation_[department][operation];
  auto count = [&](int64_t Counts::*field) {
    ++(total_.*field);
    ++(of_department.*field);
    ++(of_operation.*field);
  };
  count(&Counts::requests);
  ++sequence_;

  const Faults faults = faults_.For(department);
  const std::string& key = request.idempotency_key;
  int64_t attempt = 0;
  if (!key.empty()) attempt = ++tries_[key];

  if (faults.hang.value_or(false)) {
    ++hung_;
    Plan plan;
    plan.hang = true;
    plan.delay_ms = faults.latency_ms.value_or(0);
    return plan;
  }
  auto with_latency = [&](Plan plan) {
    plan.delay_ms = faults.latency_ms.value_or(0);
    return plan;
  };
  if (faults.status) {
    count(&Counts::faults);
    return with_latency(
        Error(*faults.status, "fault switch: status " + std::to_string(*faults.status)));
  }
  if (faults.fail_first && !key.empty() && attempt <= *faults.fail_first) {
    count(&Counts::faults);
    Plan plan = Error(503, "fault switch: fail_first, try " + std::to_string(attempt));
    plan.headers.emplace_back("Retry-After", "1");
    return with_latency(std::move(plan));
  }
  if (faults.failure_rate) {
    const std::string draw_key = key.empty() ? "#" + std::to_string(sequence_) : key;
    if (UnitDraw(options_.seed, draw_key, static_cast<uint64_t>(attempt)) < *faults.failure_rate) {
      count(&Counts::faults);
      return with_latency(Error(503, "fault switch: failure_rate"));
    }
  }

  if (!key.empty()) {
    if (auto found = ledger_index_.find(key); found != ledger_index_.end()) {
      Entry& entry = ledger_[found->second];
      ++entry.replays;
      count(&Counts::replays);
      if (entry.department != department || entry.operation != operation || entry.request != body) {
        ++conflicts_;
      }
      Plan plan;
      plan.status = entry.status;
      plan.body = entry.body;
      plan.headers.emplace_back("Idempotent-Replayed", "true");
      return with_latency(std::move(plan));
    }
  }

  Answer answer = AnswerCall(department, operation, body, registry_);
  count(&Counts::applied);
  Plan plan;
  const int64_t max_body = faults.max_body_bytes.value_or(0);
  if (answer.status / 100 == 2 && faults.accept.value_or(false)) {
    ++accepted_;
    const std::string reference = key.empty() ? "REQ-" + std::to_string(sequence_) : key;
    plan.status = 202;
    plan.body = Padded({{"status", "accepted"},
                        {"reference", reference},
                        {"callback", !options_.callback.empty()}},
                       max_body);
    if (!options_.callback.empty()) {
      const std::map<std::string, std::string> values = {{"case", request.case_id},
                                                         {"step", request.step},
                                                         {"key", key},
                                                         {"department", department},
                                                         {"operation", operation}};
      Callback callback;
      for (const std::string& word : options_.callback) {
        callback.argv.push_back(Substitute(word, values));
      }
      callback.input = answer.body.dump();
      callback.delay_ms = faults.callback_delay_ms.value_or(kDefaultCallbackDelayMs);
      plan.callback = std::move(callback);
      ++callbacks_started_;
    }
  } else {
    plan.status = answer.status;
    plan.body = Padded(answer.body, max_body);
  }
  if (key.empty()) {
    ++unkeyed_;
  } else {
    ledger_index_[key] = ledger_.size();
    ledger_.push_back(Entry{key, department, operation, request.case_id, request.step, body,
                            plan.status, plan.body, plan.status == 202, 0});
  }
  return with_latency(std::move(plan));
}

Plan Agency::Admin(const Request& request) {
  const std::string path = request.target.substr(0, request.target.find('?'));
  const bool get = request.method == "GET";
  const bool post = request.method == "POST";
  if (path == "/" && get) {
    return JsonPlan(200, {{"service", "wf-mock-agency"}, {"departments", Catalogue()}});
  }
  if (path == "/_health" && get) return JsonPlan(200, {{"status", "ok"}});
  if (path == "/_stats" && get) return JsonPlan(200, StatsJson());
  if (path == "/_ledger" && get) return JsonPlan(200, LedgerJson());
  if (path == "/_faults" && get) return JsonPlan(200, faults_.ToJson());
  if (path == "/_faults" && post) {
    json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return Error(400, "the body must be a JSON object");
    if (auto error = faults_.Apply(body)) return Error(400, *error);
    return JsonPlan(200, faults_.ToJson());
  }
  if (path == "/_reset" && post) {
    ResetLocked();
    return JsonPlan(200, {{"reset", true}});
  }
  for (const char* known : {"/", "/_health", "/_stats", "/_ledger", "/_faults", "/_reset"}) {
    if (path == known) return Error(405, "method " + request.method + " not allowed on " + path);
  }
  ++rejected_;
  return Error(404, "no such path " + path);
}

void Agency::RecordCallback(bool succeeded) {
  std::lock_guard lock(mutex_);
  ++(succeeded ? callbacks_succeeded_ : callbacks_failed_);
}

json Agency::StatsJson() const {
  json departments = json::object();
  for (const auto& [department, counts] : by_department_) {
    json entry = counts.ToJson();
    json operations = json::object();
    for (const auto& [operation, op_counts] : by_operation_.at(department)) {
      operations[operation] = op_counts.ToJson();
    }
    entry["operations"] = operations;
    departments[department] = entry;
  }
  json stats = total_.ToJson();
  stats["keys"] = ledger_.size();
  stats["unkeyed"] = unkeyed_;
  stats["conflicts"] = conflicts_;
  stats["rejected"] = rejected_;
  stats["accepted"] = accepted_;
  stats["hung"] = hung_;
  stats["callbacks"] = {{"started", callbacks_started_},
                        {"succeeded", callbacks_succeeded_},
                        {"failed", callbacks_failed_}};
  stats["departments"] = departments;
  return stats;
}

json Agency::LedgerJson() const {
  json entries = json::array();
  for (const Entry& entry : ledger_) {
    entries.push_back({{"key", entry.key},
                       {"department", entry.department},
                       {"operation", entry.operation},
                       {"case", entry.case_id},
                       {"step", entry.step},
                       {"status", entry.status},
                       {"accepted", entry.accepted},
                       {"replays", entry.replays}});
  }
  return entries;
}

}  // namespace wf::mock
