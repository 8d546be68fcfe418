#include "engine/config.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <system_error>
#include <utility>

#include "workflows/i18n.hpp"
#include "workflows/yaml_tree.hpp"

namespace wf::engine {

namespace {

using workflows::DiagnosticSink;
using workflows::NearestMatch;
using workflows::SourceLocation;
using workflows::YamlNode;

// Big enough for a province's clerks, small enough to refuse a wrong file quickly.
constexpr size_t kMaxConfigBytes = 4 * 1024 * 1024;
// A holiday range longer than this is surely a typo in a year.
constexpr int kMaxHolidayRangeDays = 366;

const std::vector<std::string> kTopLevelKeys = {"departments", "agencies", "calendars", "identity",
                                                "clients"};
const std::vector<std::string> kIdentityKeys = {"name", "cert", "key", "ca"};
const std::vector<std::string> kClientKeys = {"may", "procedures"};
const std::vector<std::string> kClientVerbs = {"start", "show", "events"};

// [a-z0-9-]+, the shape of deployment, client and procedure names.
bool IsPlainName(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

// `path` read against the folder of config file `file` when relative.
std::string AgainstConfigFolder(const std::string& path, const std::string& file) {
  if (path.empty() || path.front() == '/') return path;
  auto slash = file.rfind('/');
  if (slash == std::string::npos) return path;
  return file.substr(0, slash + 1) + path;
}
const std::vector<std::string> kAgencyKeys = {"title", "calendar", "members", "may"};
const std::vector<std::string> kMayKeys = {"cancel", "start"};
const std::vector<std::string> kCalendarKeys = {"weekend", "holidays", "working_days", "cutoff",
                                                "utc_offset"};
const std::vector<std::string> kWeekdayNames = {"monday", "tuesday",  "wednesday", "thursday",
                                                "friday", "saturday", "sunday"};

std::string Quote(const std::string& s) { return "'" + s + "'"; }

// "a, b or c".
std::string JoinNames(const std::vector<std::string>& names) {
  if (names.size() < 2) return names.empty() ? std::string() : names.front();
  std::string head;
  for (size_t i = 0; i + 1 < names.size(); ++i) {
    if (i > 0) head += ", ";
    head += names[i];
  }
  return TrFormat("{0} or {1}", head, names.back());
}

// "; did you mean 'x'?" when a candidate is close, else "; expected a, b or c" (or nothing).
std::string Suggestion(const std::string& word, const std::vector<std::string>& candidates,
                       bool list_when_far) {
  std::string near = NearestMatch(word, candidates);
  if (!near.empty()) return TrFormat("; did you mean {0}?", Quote(near));
  if (list_when_far && !candidates.empty()) {
    return TrFormat("; expected {0}", JoinNames(candidates));
  }
  return "";
}

// What is said about one kind of date list: whole sentences, translated when said.
struct DateListWords {
  const char* list;        // the list as a whole: "{0}: 'holidays'"
  const char* not_a_date;  // an item that is no scalar
  const char* not_real;    // a scalar that is no date
};

const DateListWords kHolidayWords = {
    TrNoop("{0}: 'holidays'"), TrNoop("{0}: a holiday must be a date (YYYY-MM-DD), not {1}"),
    TrNoop("{0}: holiday {1} is not a real date written YYYY-MM-DD")};
const DateListWords kWorkingDayWords = {
    TrNoop("{0}: 'working days'"),
    TrNoop("{0}: a working day must be a date (YYYY-MM-DD), not {1}"),
    TrNoop("{0}: working day {1} is not a real date written YYYY-MM-DD")};

// Walks the parsed tree once, filling a Deployment and reporting every problem to the sink.
class ConfigReader {
 public:
  ConfigReader(DiagnosticSink& sink, const DeploymentOptions& options)
      : sink_(sink), options_(options) {}

  Deployment Read(const YamlNode& root) {
    Deployment out;
    out.file = sink_.file();
    if (!root.IsNull() && !root.IsMapping()) {
      Error(root.where, TrFormat("a deployment config is a mapping with departments, agencies "
                                 "and calendars, not {0}",
                                 root.KindName()));
    }
    for (const auto& [key, value] : root.entries) {
      if (key.scalar == "departments") {
        ReadDepartments(value, out);
      } else if (key.scalar == "agencies") {
        ReadAgencies(value, out);
      } else if (key.scalar == "calendars") {
        ReadCalendars(value, out);
      } else if (key.scalar == "identity") {
        ReadIdentity(key, value, out);
      } else if (key.scalar == "clients") {
        ReadClients(value, out);
      } else {
        Error(key.where, TrFormat("unknown key {0}{1}", Quote(key.scalar),
                                  Suggestion(key.scalar, kTopLevelKeys, /*list_when_far=*/true)));
      }
    }
    if (!out.calendars.count(kDefaultCalendarName)) {
      out.calendars[kDefaultCalendarName] = CalendarSpec{};
    }
    CheckAgencyCalendars(out);
    return out;
  }

 private:
  void Error(SourceLocation where, std::string message) { sink_.Error(where, std::move(message)); }

  // True for a mapping; null is an empty section and false without a diagnostic.
  bool IsSection(const YamlNode& node, const std::string& what) {
    if (node.IsMapping()) return true;
    if (!node.IsNull()) {
      Error(node.where, TrFormat("{0} must be a mapping, not {1}", what, node.KindName()));
    }
    return false;
  }

  // The text of a scalar that names something, or nullopt with a diagnostic.
  std::optional<std::string> Name(const YamlNode& node, const std::string& what) {
    if (node.IsScalar() && !node.scalar.empty()) return node.scalar;
    Error(node.where, node.IsScalar()
                          ? TrFormat("{0} must be a name, not empty", what)
                          : TrFormat("{0} must be a name, not {1}", what, node.KindName()));
    return std::nullopt;
  }

  // Items of a list; a single scalar counts as a list of one. Null is empty.
  std::vector<const YamlNode*> ListItems(const YamlNode& node, const std::string& what) {
    std::vector<const YamlNode*> out;
    if (node.IsSequence()) {
      for (const auto& item : node.items) out.push_back(&item);
    } else if (node.IsScalar()) {
      out.push_back(&node);
    } else if (node.IsMapping()) {
      Error(node.where, TrFormat("{0} must be a list, not a mapping", what));
    }
    return out;
  }

  void ReadDepartments(const YamlNode& section, Deployment& out) {
    if (!IsSection(section, "'departments'")) return;
    for (const auto& [key, value] : section.entries) {
      const std::string context = TrFormat("department {0}", Quote(key.scalar));
      Department department;
      department.name = key.scalar;
      department.where = key.where;
      if (!value.IsMapping()) {
        Error(value.IsNull() ? key.where : value.where,
              TrFormat("{0} must be a mapping with at least 'adapter', not {1}", context,
                       value.KindName()));
        continue;
      }
      bool has_adapter = false;
      for (const auto& [setting, setting_value] : value.entries) {
        if (setting.scalar == "adapter") {
          has_adapter = true;
          if (auto kind = Name(setting_value, context + ": 'adapter'")) {
            department.adapter = *kind;
            CheckAdapterKind(setting_value, context, *kind);
          }
        } else {
          department.settings[setting.scalar] = workflows::YamlToJson(setting_value);
        }
      }
      if (!has_adapter) {
        Error(key.where, TrFormat("{0} has no 'adapter' (the kind of system: http, command, "
                                  "sql, notify, noop, ...)",
                                  context));
      }
      out.departments[department.name] = std::move(department);
    }
  }

  void ReadIdentity(const YamlNode& key, const YamlNode& value, Deployment& out) {
    if (!value.IsMapping()) {
      Error(value.IsNull() ? key.where : value.where,
            TrFormat("'identity' must be a mapping with name, cert, key and ca, not {0}",
                     value.KindName()));
      return;
    }
    Identity identity;
    identity.where = key.where;
    bool complete = true;
    std::map<std::string, std::string*> fields = {{"name", &identity.name},
                                                  {"cert", &identity.cert},
                                                  {"key", &identity.key},
                                                  {"ca", &identity.ca}};
    for (const auto& [field, field_value] : value.entries) {
      auto it = fields.find(field.scalar);
      if (it == fields.end()) {
        Error(field.where, TrFormat("unknown key {0} in 'identity'{1}", Quote(field.scalar),
                                    Suggestion(field.scalar, kIdentityKeys, true)));
        complete = false;
        continue;
      }
      auto text = Name(field_value, TrFormat("'identity': {0}", Quote(field.scalar)));
      if (!text) {
        complete = false;
        continue;
      }
      *it->second = *text;
    }
    for (const auto& [name, target] : fields) {
      if (target->empty()) {
        if (complete) {
          Error(key.where, TrFormat("'identity' needs {0} (name, cert, key and ca)", Quote(name)));
        }
        complete = false;
      }
    }
    if (!identity.name.empty() && !IsPlainName(identity.name)) {
      Error(value.where, TrFormat("'identity': name {0} must be lowercase letters, digits and "
                                  "'-' (the certificate's CN)",
                                  Quote(identity.name)));
      complete = false;
    }
    if (!complete) return;
    const std::string& file = sink_.file();
    identity.cert = AgainstConfigFolder(identity.cert, file);
    identity.key = AgainstConfigFolder(identity.key, file);
    identity.ca = AgainstConfigFolder(identity.ca, file);
    out.identity = std::move(identity);
  }

  void ReadClients(const YamlNode& section, Deployment& out) {
    if (!IsSection(section, "'clients'")) return;
    for (const auto& [key, value] : section.entries) {
      const std::string context = TrFormat("client {0}", Quote(key.scalar));
      Client client;
      client.name = key.scalar;
      client.where = key.where;
      if (!IsPlainName(key.scalar)) {
        Error(key.where, TrFormat("{0}: a client is named by its certificate's CN: lowercase "
                                  "letters, digits and '-'",
                                  context));
        continue;
      }
      if (!value.IsMapping()) {
        Error(value.IsNull() ? key.where : value.where,
              TrFormat("{0} must be a mapping with 'may' (start, show, events), not {1}", context,
                       value.KindName()));
        continue;
      }
      bool has_may = false;
      for (const auto& [field, field_value] : value.entries) {
        if (field.scalar == "may") {
          has_may = true;
          for (const YamlNode* item : ListItems(field_value, context + ": 'may'")) {
            auto verb = Name(*item, context + ": 'may'");
            if (!verb) continue;
            if (std::find(kClientVerbs.begin(), kClientVerbs.end(), *verb) == kClientVerbs.end()) {
              Error(item->where, TrFormat("{0}: unknown permission {1}{2}", context, Quote(*verb),
                                          Suggestion(*verb, kClientVerbs, true)));
              continue;
            }
            client.may.push_back(*verb);
          }
        } else if (field.scalar == "procedures") {
          if (!field_value.IsSequence()) {
            Error(field_value.where,
                  TrFormat("{0}: 'procedures' must be a list of procedure names, not {1}", context,
                           field_value.KindName()));
            continue;
          }
          for (const YamlNode* item : ListItems(field_value, context + ": 'procedures'")) {
            auto name = Name(*item, context + ": 'procedures'");
            if (!name) continue;
            if (!IsPlainName(*name)) {
              Error(item->where, TrFormat("{0}: {1} is not a procedure name ([a-z0-9-]+)", context,
                                          Quote(*name)));
              continue;
            }
            client.procedures.push_back(*name);
          }
        } else {
          Error(field.where, TrFormat("unknown key {0} in {1}{2}", Quote(field.scalar), context,
                                      Suggestion(field.scalar, kClientKeys, true)));
        }
      }
      if (!has_may) {
        Error(key.where,
              TrFormat("{0} has no 'may' (what it may do: start, show, events)", context));
      }
      std::sort(client.may.begin(), client.may.end());
      client.may.erase(std::unique(client.may.begin(), client.may.end()), client.may.end());
      out.clients[client.name] = std::move(client);
    }
  }

  void CheckAdapterKind(const YamlNode& node, const std::string& context, const std::string& kind) {
    const auto& kinds = options_.adapter_kinds;
    if (kinds.empty() || std::find(kinds.begin(), kinds.end(), kind) != kinds.end()) return;
    std::vector<std::string> sorted = kinds;
    std::sort(sorted.begin(), sorted.end());
    Error(node.where, TrFormat("{0}: unknown adapter {1}{2}", context, Quote(kind),
                               Suggestion(kind, sorted, /*list_when_far=*/true)));
  }

  void ReadAgencies(const YamlNode& section, Deployment& out) {
    if (!IsSection(section, "'agencies'")) return;
    for (const auto& [key, value] : section.entries) {
      const std::string context = TrFormat("agency {0}", Quote(key.scalar));
      Agency agency;
      agency.name = key.scalar;
      agency.where = key.where;
      if (!value.IsNull() && !value.IsMapping()) {
        Error(value.where, TrFormat("{0} must be a mapping, not {1}", context, value.KindName()));
        continue;
      }
      for (const auto& [field, field_value] : value.entries) {
        if (field.scalar == "title") {
          if (field_value.IsScalar()) {
            agency.title = field_value.scalar;
          } else if (!field_value.IsNull()) {
            Error(field_value.where,
                  TrFormat("{0}: 'title' must be text, not {1}", context, field_value.KindName()));
          }
        } else if (field.scalar == "calendar") {
          if (auto name = Name(field_value, context + ": 'calendar'")) {
            agency.calendar = *name;
            calendar_refs_.push_back({agency.name, *name, field_value.where});
          }
        } else if (field.scalar == "members") {
          ReadMembers(field_value, context, agency);
        } else if (field.scalar == "may") {
          ReadMay(field_value, context, agency);
        } else {
          Error(field.where,
                TrFormat("unknown key {0} in {1}{2}", Quote(field.scalar), context,
                         Suggestion(field.scalar, kAgencyKeys, /*list_when_far=*/true)));
        }
      }
      out.agencies[agency.name] = std::move(agency);
    }
  }

  // Roles named by a list, without duplicates, appended to `out`.
  void ReadRoles(const YamlNode& node, const std::string& what, std::vector<std::string>& out) {
    for (const YamlNode* role : ListItems(node, what)) {
      auto name = Name(*role, TrFormat("a role of {0}", what));
      if (name && std::find(out.begin(), out.end(), *name) == out.end()) out.push_back(*name);
    }
  }

  void ReadMay(const YamlNode& node, const std::string& context, Agency& agency) {
    if (node.IsNull()) return;
    if (!node.IsMapping()) {
      Error(node.where, TrFormat("{0}: 'may' must be a mapping ({{cancel: [ROLE], start: "
                                 "{{PROCEDURE: [ROLE]}}}}), not {1}",
                                 context, node.KindName()));
      return;
    }
    for (const auto& [key, value] : node.entries) {
      if (key.scalar == "cancel") {
        ReadRoles(value, context + ": 'may.cancel'", agency.may_cancel);
      } else if (key.scalar == "start") {
        if (value.IsNull()) continue;
        if (!value.IsMapping()) {
          Error(value.where, TrFormat("{0}: 'may.start' must map each procedure (or \"*\") to "
                                      "the roles that may start it, not {1}",
                                      context, value.KindName()));
          continue;
        }
        for (const auto& [procedure, roles] : value.entries) {
          ReadRoles(roles, context + ": 'may.start." + procedure.scalar + "'",
                    agency.may_start[procedure.scalar]);
        }
      } else {
        Error(key.where, TrFormat("unknown key {0} in {1}: 'may'{2}", Quote(key.scalar), context,
                                  Suggestion(key.scalar, kMayKeys, /*list_when_far=*/true)));
      }
    }
  }

  void ReadMembers(const YamlNode& node, const std::string& context, Agency& agency) {
    if (node.IsNull()) return;
    if (!node.IsMapping()) {
      Error(node.where, TrFormat("{0}: 'members' must map each actor to a list of roles, not {1}",
                                 context, node.KindName()));
      return;
    }
    for (const auto& [actor, roles] : node.entries) {
      std::vector<std::string>& held = agency.members[actor.scalar];
      const std::string what = TrFormat("{0}: the roles of {1}", context, Quote(actor.scalar));
      for (const YamlNode* role : ListItems(roles, what)) {
        auto name = Name(*role, TrFormat("{0}: a role of {1}", context, Quote(actor.scalar)));
        if (name && std::find(held.begin(), held.end(), *name) == held.end()) {
          held.push_back(*name);
        }
      }
    }
  }

  void ReadCalendars(const YamlNode& section, Deployment& out) {
    if (!IsSection(section, "'calendars'")) return;
    for (const auto& [key, value] : section.entries) {
      const std::string context = TrFormat("calendar {0}", Quote(key.scalar));
      CalendarSpec spec;
      spec.name = key.scalar;
      spec.where = key.where;
      if (!value.IsNull() && !value.IsMapping()) {
        Error(value.where, TrFormat("{0} must be a mapping, not {1}", context, value.KindName()));
        continue;
      }
      for (const auto& [field, field_value] : value.entries) {
        if (field.scalar == "weekend") {
          ReadWeekend(field_value, context, spec);
        } else if (field.scalar == "holidays") {
          spec.holidays = ReadDates(field_value, context, kHolidayWords, /*ranges=*/true);
        } else if (field.scalar == "working_days") {
          spec.working_days = ReadDates(field_value, context, kWorkingDayWords, /*ranges=*/false);
        } else if (field.scalar == "cutoff") {
          ReadCutoff(field_value, context, spec);
        } else if (field.scalar == "utc_offset") {
          ReadUtcOffset(field_value, context, spec);
        } else {
          Error(field.where,
                TrFormat("unknown key {0} in {1}{2}", Quote(field.scalar), context,
                         Suggestion(field.scalar, kCalendarKeys, /*list_when_far=*/true)));
        }
      }
      out.calendars[spec.name] = std::move(spec);
    }
  }

  void ReadWeekend(const YamlNode& node, const std::string& context, CalendarSpec& spec) {
    if (node.IsNull()) return;  // `weekend:` with nothing keeps the default; [] means none
    spec.weekend.clear();
    for (const YamlNode* item : ListItems(node, context + ": 'weekend'")) {
      if (!item->IsScalar()) {
        Error(item->where, TrFormat("{0}: a weekend day must be a day name, not {1}", context,
                                    item->KindName()));
        continue;
      }
      auto day = ParseWeekday(item->scalar);
      if (!day) {
        Error(item->where,
              TrFormat("{0}: unknown weekday {1}{2}", context, Quote(item->scalar),
                       Suggestion(item->scalar, kWeekdayNames, /*list_when_far=*/true)));
        continue;
      }
      if (std::find(spec.weekend.begin(), spec.weekend.end(), *day) == spec.weekend.end()) {
        spec.weekend.push_back(*day);
      }
    }
    std::sort(spec.weekend.begin(), spec.weekend.end(),
              [](std::chrono::weekday a, std::chrono::weekday b) {
                return a.c_encoding() < b.c_encoding();
              });
    if (spec.weekend.size() == 7) {
      Error(node.where,
            TrFormat("{0}: every day of the week is a weekend day; nothing is worked", context));
    }
  }

  // A list of dates; with `ranges`, items may also be `first..last`, inclusive (holidays only).
  std::vector<Date> ReadDates(const YamlNode& node, const std::string& context,
                              const DateListWords& words, bool ranges) {
    std::vector<Date> dates;
    for (const YamlNode* item : ListItems(node, TrFormat(words.list, context))) {
      if (!item->IsScalar()) {
        Error(item->where, TrFormat(words.not_a_date, context, item->KindName()));
        continue;
      }
      const std::string& text = item->scalar;
      size_t dots = ranges ? text.find("..") : std::string::npos;
      if (dots == std::string::npos) {
        if (auto date = DateAt(*item, text, context, words)) dates.push_back(*date);
        continue;
      }
      auto first = DateAt(*item, text.substr(0, dots), context, words);
      auto last = DateAt(*item, text.substr(dots + 2), context, words);
      if (!first || !last) continue;
      if (*last < *first) {
        Error(item->where,
              TrFormat("{0}: holiday range {1} ends before it starts", context, Quote(text)));
      } else if ((*last - *first).count() >= kMaxHolidayRangeDays) {
        Error(item->where,
              TrFormat("{0}: holiday range {1} is longer than a year", context, Quote(text)));
      } else {
        for (Date d = *first; d <= *last; d += std::chrono::days{1}) dates.push_back(d);
      }
    }
    std::sort(dates.begin(), dates.end());
    dates.erase(std::unique(dates.begin(), dates.end()), dates.end());
    return dates;
  }

  std::optional<Date> DateAt(const YamlNode& item, const std::string& text,
                             const std::string& context, const DateListWords& words) {
    auto date = ParseDate(text);
    if (!date) Error(item.where, TrFormat(words.not_real, context, Quote(text)));
    return date;
  }

  void ReadCutoff(const YamlNode& node, const std::string& context, CalendarSpec& spec) {
    if (node.IsNull()) return;
    std::optional<int> minutes;
    if (node.IsScalar()) minutes = ParseClockTime(node.scalar);
    if (!minutes) {
      Error(node.where,
            TrFormat("{0}: cutoff {1} is not a time of day; write it as \"HH:MM\", e.g. \"15:00\"",
                     context, node.IsScalar() ? Quote(node.scalar) : std::string(node.KindName())));
      return;
    }
    spec.cutoff_minutes = minutes;
  }

  void ReadUtcOffset(const YamlNode& node, const std::string& context, CalendarSpec& spec) {
    std::optional<int> offset;
    if (node.IsScalar()) offset = ParseUtcOffset(node.scalar);
    if (!offset) {
      Error(node.where,
            TrFormat("{0}: utc_offset {1} is not an offset from UTC; write it as "
                     "\"+HH:MM\", e.g. \"+07:00\"",
                     context, node.IsScalar() ? Quote(node.scalar) : std::string(node.KindName())));
      return;
    }
    spec.utc_offset_minutes = *offset;
  }

  void CheckAgencyCalendars(const Deployment& out) {
    std::vector<std::string> names;
    for (const auto& [name, spec] : out.calendars) names.push_back(name);
    for (const auto& ref : calendar_refs_) {
      if (out.calendars.count(ref.calendar)) continue;
      Error(ref.where, TrFormat("agency {0} uses calendar {1}, which is not defined under "
                                "'calendars'{2}",
                                Quote(ref.agency), Quote(ref.calendar),
                                Suggestion(ref.calendar, names, /*list_when_far=*/false)));
    }
  }

  struct CalendarRef {
    std::string agency;
    std::string calendar;
    SourceLocation where;
  };

  DiagnosticSink& sink_;
  const DeploymentOptions& options_;
  std::vector<CalendarRef> calendar_refs_;
};

std::string JoinDiagnostics(const DiagnosticSink& sink) {
  std::string out;
  for (const auto& diagnostic : sink.Sorted()) {
    if (!out.empty()) out += '\n';
    out += diagnostic.ToString();
  }
  return out;
}

}  // namespace

// --- Deployment -------------------------------------------------------------------------------

Deployment Deployment::Empty() {
  Deployment out;
  out.calendars[kDefaultCalendarName] = CalendarSpec{};
  return out;
}

bool Client::May(std::string_view what) const {
  return std::find(may.begin(), may.end(), what) != may.end();
}

bool Client::MayStart(const std::string& procedure) const {
  return May("start") && (procedures.empty() || std::find(procedures.begin(), procedures.end(),
                                                          procedure) != procedures.end());
}

const Client* Deployment::FindClient(const std::string& name) const {
  auto it = clients.find(name);
  return it == clients.end() ? nullptr : &it->second;
}

std::vector<std::string> Deployment::RolesOf(const std::string& actor,
                                             const std::string& agency) const {
  auto found = agencies.find(agency);
  if (found == agencies.end()) return {};
  auto member = found->second.members.find(actor);
  if (member == found->second.members.end()) return {};
  return member->second;
}

std::vector<std::string> Deployment::AgenciesOf(const std::string& actor) const {
  std::vector<std::string> out;
  for (const auto& [name, agency] : agencies) {
    if (agency.members.count(actor)) out.push_back(name);
  }
  return out;
}

bool Deployment::HasRole(const std::string& actor, const std::string& role,
                         const std::string& agency) const {
  for (const auto& [name, entry] : agencies) {
    if (!agency.empty() && name != agency) continue;
    auto member = entry.members.find(actor);
    if (member == entry.members.end()) continue;
    const auto& roles = member->second;
    if (std::find(roles.begin(), roles.end(), role) != roles.end()) return true;
  }
  return false;
}

const CalendarSpec& Deployment::CalendarSpecOf(const std::string& agency) const {
  static const CalendarSpec kBuiltIn{};
  auto found = agencies.find(agency);
  const std::string& name =
      found == agencies.end() ? std::string(kDefaultCalendarName) : found->second.calendar;
  auto spec = calendars.find(name);
  if (spec != calendars.end()) return spec->second;
  auto fallback = calendars.find(kDefaultCalendarName);
  return fallback != calendars.end() ? fallback->second : kBuiltIn;
}

workflows::DeploymentNames Deployment::Names() const {
  workflows::DeploymentNames names;
  for (const auto& [name, department] : departments) names.departments.push_back(name);
  std::set<std::string> roles;
  for (const auto& [name, agency] : agencies) {
    names.agencies.push_back(name);
    for (const auto& [actor, held] : agency.members) roles.insert(held.begin(), held.end());
  }
  names.roles.assign(roles.begin(), roles.end());
  return names;
}

// --- Loading ----------------------------------------------------------------------------------

Result<Deployment> LoadDeploymentText(std::string_view text, const std::string& file,
                                      const DeploymentOptions& options) {
  DiagnosticSink sink(file);
  workflows::YamlLimits limits;
  limits.max_bytes = kMaxConfigBytes;
  limits.max_events = 4 * 1000 * 1000;
  YamlNode root = workflows::ParseYaml(text, sink, limits);
  // A tree cut short by a syntax error would only add misleading complaints (a calendar
  // defined after the error looks undefined), so stop at the YAML errors.
  if (!sink.empty()) return Status::Invalid(JoinDiagnostics(sink));
  ConfigReader reader(sink, options);
  Deployment deployment = reader.Read(root);
  if (!sink.empty()) return Status::Invalid(JoinDiagnostics(sink));
  return deployment;
}

Result<Deployment> LoadDeployment(const std::string& path, const DeploymentOptions& options) {
  if (path.empty()) return Deployment::Empty();
  auto unreadable = [&path] {
    return Status::NotFound(TrFormat(
        "config file '{0}' cannot be read; give the deployment config with --config FILE or "
        "WF_CONFIG",
        path));
  };
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return Status::NotFound(TrFormat(
        "config file '{0}' not found; give the deployment config with --config FILE or WF_CONFIG",
        path));
  }
  if (std::filesystem::is_directory(status)) {
    return Status::NotFound(TrFormat(
        "config file '{0}' is a directory; give the deployment config with --config FILE or "
        "WF_CONFIG",
        path));
  }
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes) {
    // Shaped like a diagnostic (file:line:col), as the config's other errors are.
    return Status::Invalid(
        TrFormat("{0}:{1}:{2}: error: {3}", path, "1", "1",
                 TrFormat("the config is {0} bytes, more than the limit of {1} bytes",
                          i18n::Number(static_cast<long long>(size)),
                          i18n::Number(static_cast<long long>(kMaxConfigBytes)))));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return unreadable();
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return unreadable();
  return LoadDeploymentText(content.str(), path, options);
}

}  // namespace wf::engine
