#pragma once
// Where a procedure's personal data lies (DESIGN.md "Personal data", Decree 13/2023/ND-CP): the
// properties of its input schema and forms marked `personal: true`, and the whole result of an
// adapter, wait or call_procedure step marked `personal: true`. The engine seals every value
// found there, and every string that repeats one, before anything reaches the database
// (engine/personal.hpp); this file only says where the values are. Pure functions.
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "workflows/diagnostic.hpp"
#include "workflows/procedure.hpp"

namespace wf::workflows {

struct PersonalMap {
  // Paths into the case data whose values are personal; "*" stands for every item of an array.
  std::vector<std::vector<std::string>> data_paths;
  // Task steps' personal form fields, by step id.
  std::map<std::string, std::vector<std::string>> form_fields;
  // Steps whose whole result (StepSucceeded, a signal's data, a sub-case's end) is personal.
  std::set<std::string> result_steps;

  bool empty() const { return data_paths.empty() && form_fields.empty() && result_steps.empty(); }
};

// Where `procedure` keeps personal data.
PersonalMap PersonalMapOf(const Procedure& procedure);

// The personal values in `data`: the scalars (strings, and numbers as their JSON text) under
// the personal paths. Booleans and nulls identify no one and are left out.
void CollectPersonalValues(const nlohmann::json& data, const PersonalMap& map,
                           std::set<std::string>& values);
// Every string and number of `value`, however deep.
void CollectScalars(const nlohmann::json& value, std::set<std::string>& values);

// Warnings for `wf validate` (not errors: the procedure still loads): a task title that prints
// a personal field (the inbox would show it to everyone with the role). A personal field in
// `dedupe` or a `reuse` call is fine: the engine keeps only keyed hashes of those.
std::vector<Diagnostic> PersonalWarnings(const Procedure& procedure);

}  // namespace wf::workflows
