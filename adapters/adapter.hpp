#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "adapters/asio.hpp"
#include "workflows/status.hpp"

namespace wf::adapters {

// A step's call settings as written in a procedure, for Adapter::Validate.
struct StepCall {
  std::string department;
  nlohmann::json call;  // the `call:` template, expressions not yet rendered
};

// One attempt of one step against one department, with everything the adapter may use.
struct StepRequest {
  std::string case_id;
  std::string step;
  int64_t activation = 0;
  int attempt = 1;
  // Stable across retries of the same activation: "<case>/<step>/<activation>". Department
  // systems use it to apply the call exactly once.
  std::string idempotency_key;
  // `operation` from the call (may be empty) and the other fields, rendered over the case data.
  std::string operation;
  nlohmann::json fields = nlohmann::json::object();
  std::chrono::milliseconds timeout{30000};
};

// What one attempt produced. Remote failures are values here, never exceptions.
struct StepOutcome {
  enum class Kind {
    kDone,      // the department answered; `result` is its answer
    kAccepted,  // the department took the call and will answer later (a signal wakes the step);
                // `result`, when not null, is its receipt, kept in the history
    kRetry,     // a transient failure: the engine retries under the same idempotency key
    kFailed,    // a permanent failure: on_error or an incident
  };
  Kind kind = Kind::kDone;
  nlohmann::json result;
  std::string message;  // why, for failures: names the department and the operation

  static StepOutcome Done(nlohmann::json result) { return {Kind::kDone, std::move(result), {}}; }
  static StepOutcome Accepted(nlohmann::json receipt = nullptr) {
    return {Kind::kAccepted, std::move(receipt), {}};
  }
  static StepOutcome Retry(std::string message) {
    return {Kind::kRetry, nullptr, std::move(message)};
  }
  static StepOutcome Failed(std::string message) {
    return {Kind::kFailed, nullptr, std::move(message)};
  }
};

// Carries out one step against one department's system. Safe for concurrent use.
class Adapter {
 public:
  virtual ~Adapter() = default;
  // Checks a step's call settings when a procedure loads. Never does I/O.
  virtual Status Validate(const StepCall& call) const = 0;
  // One attempt. Remote failures come back in the outcome, never as exceptions.
  virtual asio::awaitable<StepOutcome> Invoke(StepRequest request) = 0;
};

// The adapters of one deployment, by department name. Filled explicitly at start-up; read-only
// afterwards, so lookups are safe from any thread.
class Registry {
 public:
  void Add(std::string department, std::unique_ptr<Adapter> adapter) {
    adapters_[std::move(department)] = std::move(adapter);
  }
  // The department's adapter, or nullptr when the deployment does not name it.
  Adapter* Find(const std::string& department) const {
    auto it = adapters_.find(department);
    return it == adapters_.end() ? nullptr : it->second.get();
  }

 private:
  std::map<std::string, std::unique_ptr<Adapter>> adapters_;
};

}  // namespace wf::adapters
