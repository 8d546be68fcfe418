#pragma once

// The department systems themselves: what each operation answers. Deterministic: the answer
// is a function of the request and of the department's records (serial counters, registered
// deaths), so a run can be replayed. No I/O, no locking (the Agency locks).

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace wf::mock {

// What a department answers: an HTTP status and a JSON body.
struct Answer {
  int status = 200;
  nlohmann::json body;
};

// The records the departments keep between calls. Not thread-safe.
class Registry {
 public:
  // The next number of `series` (a certificate book, an id block): 1, 2, 3...
  int64_t Next(const std::string& series) { return ++serials_[series]; }
  void RecordDeath(const std::string& citizen_id) { deceased_.insert(citizen_id); }
  bool IsDeceased(const std::string& citizen_id) const { return deceased_.count(citizen_id) > 0; }
  void Clear() {
    serials_.clear();
    deceased_.clear();
  }

 private:
  std::map<std::string, int64_t> serials_;
  std::set<std::string> deceased_;
};

// Every department and its operations, in a stable order.
const std::map<std::string, std::vector<std::string>>& Catalogue();

bool IsKnownDepartment(const std::string& department);
bool IsKnownOperation(const std::string& department, const std::string& operation);

// Carries out `operation` of `department` (both known) on `request` (a JSON object): 200 with
// the department's answer, or 422 naming the field when a field the department needs is
// missing or malformed. Changes `registry` only when it answers 200.
Answer AnswerCall(const std::string& department, const std::string& operation,
                  const nlohmann::json& request, Registry& registry);

}  // namespace wf::mock
