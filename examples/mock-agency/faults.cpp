#include "examples/mock-agency/faults.hpp"

namespace wf::mock {
namespace {

using nlohmann::json;

template <typename T>
void Take(const std::optional<T>& over, std::optional<T>& field) {
  if (over.has_value()) field = over;
}

template <typename T>
void Put(json& out, const char* name, const std::optional<T>& field) {
  if (field.has_value()) out[name] = *field;
}

// Reads a non-negative integer field; null clears it.
std::optional<std::string> ReadCount(const json& value, const char* name,
                                     std::optional<int64_t>& field) {
  if (value.is_null()) {
    field.reset();
  } else if (value.is_number_integer() && value.get<int64_t>() >= 0) {
    field = value.get<int64_t>();
  } else {
    return std::string(name) + " must be a non-negative integer";
  }
  return std::nullopt;
}

std::optional<std::string> ReadFlag(const json& value, const char* name,
                                    std::optional<bool>& field) {
  if (value.is_null()) {
    field.reset();
  } else if (value.is_boolean()) {
    field = value.get<bool>();
  } else {
    return std::string(name) + " must be true or false";
  }
  return std::nullopt;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

Faults Faults::MergedWith(const Faults& over) const {
  Faults merged = *this;
  Take(over.latency_ms, merged.latency_ms);
  Take(over.failure_rate, merged.failure_rate);
  Take(over.fail_first, merged.fail_first);
  Take(over.accept, merged.accept);
  Take(over.callback_delay_ms, merged.callback_delay_ms);
  Take(over.hang, merged.hang);
  Take(over.status, merged.status);
  Take(over.max_body_bytes, merged.max_body_bytes);
  return merged;
}

json Faults::ToJson() const {
  json out = json::object();
  Put(out, "latency_ms", latency_ms);
  Put(out, "failure_rate", failure_rate);
  Put(out, "fail_first", fail_first);
  Put(out, "accept", accept);
  Put(out, "callback_delay_ms", callback_delay_ms);
  Put(out, "hang", hang);
  Put(out, "status", status);
  Put(out, "max_body_bytes", max_body_bytes);
  return out;
}

std::optional<std::string> ApplyFaultPatch(const json& patch, Faults& faults) {
  if (!patch.is_object()) return "fault switches must be a JSON object";
  Faults next = faults;
  for (const auto& [name, value] : patch.items()) {
    std::optional<std::string> error;
    if (name == "latency_ms") {
      error = ReadCount(value, "latency_ms", next.latency_ms);
    } else if (name == "fail_first") {
      error = ReadCount(value, "fail_first", next.fail_first);
    } else if (name == "callback_delay_ms") {
      error = ReadCount(value, "callback_delay_ms", next.callback_delay_ms);
    } else if (name == "max_body_bytes") {
      error = ReadCount(value, "max_body_bytes", next.max_body_bytes);
    } else if (name == "accept") {
      error = ReadFlag(value, "accept", next.accept);
    } else if (name == "hang") {
      error = ReadFlag(value, "hang", next.hang);
    } else if (name == "failure_rate") {
      if (value.is_null()) {
        next.failure_rate.reset();
      } else if (value.is_number() && value.get<double>() >= 0 && value.get<double>() <= 1) {
        next.failure_rate = value.get<double>();
      } else {
        error = "failure_rate must be a number from 0 to 1";
      }
    } else if (name == "status") {
      if (value.is_null()) {
        next.status.reset();
      } else if (value.is_number_integer() && value.get<int>() >= 100 && value.get<int>() <= 599) {
        next.status = value.get<int>();
      } else {
        error = "status must be an HTTP status code (100-599)";
      }
    } else {
      error = "unknown fault switch '" + name + "'";
    }
    if (error) return error;
  }
  faults = next;
  return std::nullopt;
}

Faults FaultTable::For(const std::string& department) const {
  auto found = departments_.find(department);
  return found == departments_.end() ? global_ : global_.MergedWith(found->second);
}

std::optional<std::string> FaultTable::Apply(const json& body) {
  if (!body.is_object()) return "fault switches must be a JSON object";
  json fields = body;
  std::optional<std::string> department;
  if (fields.contains("department")) {
    if (!fields["department"].is_string()) return "department must be a string";
    department = fields["department"].get<std::string>();
    fields.erase("department");
  }
  bool clear = false;
  if (fields.contains("clear")) {
    if (!fields["clear"].is_boolean()) return "clear must be true or false";
    clear = fields["clear"].get<bool>();
    fields.erase("clear");
  }
  FaultTable next = *this;
  if (clear) {
    if (department) {
      next.departments_.erase(*department);
    } else {
      next = FaultTable();
    }
  }
  Faults& target = department ? next.departments_[*department] : next.global_;
  if (auto error = ApplyFaultPatch(fields, target)) return error;
  if (department && target.empty()) next.departments_.erase(*department);
  *this = std::move(next);
  return std::nullopt;
}

json FaultTable::ToJson() const {
  json departments = json::object();
  for (const auto& [name, faults] : departments_) departments[name] = faults.ToJson();
  return {{"global", global_.ToJson()}, {"departments", departments}};
}

double UnitDraw(uint64_t seed, const std::string& key, uint64_t attempt) {
  uint64_t hash = 0xcbf29ce484222325ULL;  // FNV-1a over the key
  for (unsigned char c : key) {
    hash ^= c;
    hash *= 0x100000001b3ULL;
  }
  const uint64_t mixed = SplitMix64(SplitMix64(seed ^ hash) + attempt);
  return static_cast<double>(mixed >> 11) * 0x1.0p-53;
}

}  // namespace wf::mock
