// Where a procedure keeps personal data (personal.hpp).
#include "workflows/personal.hpp"

#include <cctype>

#include "workflows/i18n.hpp"

namespace wf::workflows {

namespace {

using nlohmann::json;

// The paths of `schema`'s properties marked personal, below `prefix`.
void SchemaPaths(const json& schema, std::vector<std::string>& prefix,
                 std::vector<std::vector<std::string>>& out, int depth) {
  if (!schema.is_object() || depth > 64) return;
  if (schema.value("personal", false) && !prefix.empty()) {
    out.push_back(prefix);
    return;  // everything below is personal too
  }
  if (auto properties = schema.find("properties");
      properties != schema.end() && properties->is_object()) {
    for (const auto& [name, member] : properties->items()) {
      prefix.push_back(name);
      SchemaPaths(member, prefix, out, depth + 1);
      prefix.pop_back();
    }
  }
  if (auto items = schema.find("items"); items != schema.end()) {
    prefix.push_back("*");
    if (items->is_object() && items->value("personal", false)) {
      out.push_back(prefix);
    } else {
      SchemaPaths(*items, prefix, out, depth + 1);
    }
    prefix.pop_back();
  }
}

void CollectAt(const json& value, const std::vector<std::string>& path, size_t at,
               std::set<std::string>& values) {
  if (at == path.size()) {
    CollectScalars(value, values);
    return;
  }
  if (path[at] == "*") {
    if (!value.is_array()) return;
    for (const json& item : value) CollectAt(item, path, at + 1, values);
    return;
  }
  if (!value.is_object()) return;
  auto member = value.find(path[at]);
  if (member != value.end()) CollectAt(*member, path, at + 1, values);
}

// ".mother.citizen_id" for a path without array items; empty otherwise.
std::string JqPath(const std::vector<std::string>& path) {
  std::string text;
  for (const std::string& name : path) {
    if (name == "*") return {};
    text += "." + name;
  }
  return text;
}

}  // namespace

PersonalMap PersonalMapOf(const Procedure& procedure) {
  PersonalMap map;
  std::vector<std::string> prefix;
  SchemaPaths(procedure.input_schema, prefix, map.data_paths, 0);
  for (const Step& step : procedure.steps) {
    if (step.kind == StepKind::kTask) {
      std::vector<std::string> fields;
      for (const FormField& field : step.form) {
        if (field.personal) fields.push_back(field.name);
      }
      if (fields.empty()) continue;
      if (!step.save_as.empty()) {
        for (const std::string& field : fields) map.data_paths.push_back({step.save_as, field});
      }
      map.form_fields[step.id] = std::move(fields);
    } else if (step.personal) {
      map.result_steps.insert(step.id);
      if (!step.save_as.empty()) map.data_paths.push_back({step.save_as});
    }
  }
  return map;
}

void CollectPersonalValues(const json& data, const PersonalMap& map,
                           std::set<std::string>& values) {
  for (const auto& path : map.data_paths) CollectAt(data, path, 0, values);
}

void CollectScalars(const json& value, std::set<std::string>& values) {
  if (value.is_string()) {
    if (!value.get_ref<const std::string&>().empty()) values.insert(value.get<std::string>());
  } else if (value.is_number()) {
    values.insert(value.dump());
  } else if (value.is_structured()) {
    for (const json& item : value) CollectScalars(item, values);
  }
}

std::vector<Diagnostic> PersonalWarnings(const Procedure& procedure) {
  std::vector<Diagnostic> warnings;
  const PersonalMap map = PersonalMapOf(procedure);
  std::vector<std::string> paths;
  for (const auto& path : map.data_paths) {
    std::string jq = JqPath(path);
    if (!jq.empty()) paths.push_back(jq);
  }
  for (const Step& step : procedure.steps) {
    if (step.kind != StepKind::kTask) continue;
    std::vector<std::string> titles{step.task};
    for (const auto& [language, title] : step.task_titles) titles.push_back(title);
    for (const std::string& path : paths) {
      bool printed = false;
      for (const std::string& title : titles) {
        const size_t at = title.find(path);
        // `.mother.citizen_id` but not `.mother.citizen_ids`.
        if (at != std::string::npos && title.find("${") != std::string::npos &&
            (at + path.size() == title.size() ||
             !(std::isalnum(static_cast<unsigned char>(title[at + path.size()])) ||
               title[at + path.size()] == '_'))) {
          printed = true;
        }
      }
      if (!printed) continue;
      auto where = step.values.find("task");
      warnings.push_back(Diagnostic{
          procedure.file, where != step.values.end() ? where->second : step.where,
          TrFormat("task {0} prints the personal field {1} in its title: everyone holding the "
                   "role sees it in the inbox; name the case by something else",
                   "'" + step.id + "'", path)});
    }
  }
  return warnings;
}

}  // namespace wf::workflows
