#pragma once

// Fault switches: how a department misbehaves on purpose, for retry, timeout and idempotency
// tests. Set globally or per department, at start (command-line flags) or at run time
// (`POST /_faults`). Plain values; no I/O, no locking (the Agency locks).

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace wf::mock {

// One set of switches. An unset field means "not switched here": a department's setting
// overrides the global one field by field.
struct Faults {
  std::optional<int64_t> latency_ms;         // wait this long before answering (a timer)
  std::optional<double> failure_rate;        // 0..1: share of tries answered 503
  std::optional<int64_t> fail_first;         // 503 for the first N tries of each key
  std::optional<bool> accept;                // answer 202, deliver the result by callback
  std::optional<int64_t> callback_delay_ms;  // wait before running the callback (default 100)
  std::optional<bool> hang;                  // never answer; keep the connection open
  std::optional<int> status;                 // always answer this status code, apply nothing
  std::optional<int64_t> max_body_bytes;     // pad every answer to this many bytes

  // These switches with every field set in `over` taking its place.
  Faults MergedWith(const Faults& over) const;
  // The set fields only, e.g. {"latency_ms": 20}.
  nlohmann::json ToJson() const;
  bool empty() const { return ToJson().empty(); }
};

// Applies `patch` (a JSON object of the fields above) to `faults`: a value sets a field, null
// clears it. Returns an error message naming the field on an unknown key or a bad value, and
// then leaves `faults` unchanged.
std::optional<std::string> ApplyFaultPatch(const nlohmann::json& patch, Faults& faults);

// The global switches and those of each department.
class FaultTable {
 public:
  // The switches in force for `department`.
  Faults For(const std::string& department) const;

  // Applies a `POST /_faults` body: {"department": D (optional), "clear": true (optional),
  // ...fields}. Without "department" the fields are global. "clear" first removes every
  // switch (of D only when D is given). Returns an error message and changes nothing when the
  // body is not valid.
  std::optional<std::string> Apply(const nlohmann::json& body);

  // {"global": {...}, "departments": {D: {...}}}.
  nlohmann::json ToJson() const;

 private:
  Faults global_;
  std::map<std::string, Faults> departments_;
};

// A deterministic number in [0, 1) for try `attempt` of `key` under `seed`: the same inputs give
// the same draw whatever the order in which concurrent requests arrive.
double UnitDraw(uint64_t seed, const std::string& key, uint64_t attempt);

}  // namespace wf::mock
