#pragma once

// The mock agency's request handling, apart from the network: routing, the idempotency
// ledger, the statistics and the fault switches. `Handle` decides what to answer and returns a
// plan; the server carries it out (waits, answers, hangs, runs the callback). Thread-safe: one
// mutex guards all the state; nothing blocks while it is held.

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "examples/mock-agency/departments.hpp"
#include "examples/mock-agency/faults.hpp"

namespace wf::mock {

// One HTTP request as the agency sees it.
struct Request {
  std::string method;  // "GET", "POST"
  std::string target;  // "/population-db/get_citizen", "/_stats"
  std::string body;
  std::string idempotency_key;  // header Idempotency-Key, "" when absent
  std::string case_id;          // header X-Wf-Case
  std::string step;             // header X-Wf-Step
};

// A command to run once the answer is out: the accept switch's late delivery of the result.
struct Callback {
  std::vector<std::string> argv;  // the template with its placeholders filled in
  std::string input;              // the result JSON, written to the command's stdin
  int64_t delay_ms = 0;
};

// What the server must do with a request.
struct Plan {
  int64_t delay_ms = 0;  // wait this long (on a timer) before answering
  bool hang = false;     // never answer; keep the connection until the client leaves
  int status = 200;
  std::string body;  // JSON text
  std::vector<std::pair<std::string, std::string>> headers;
  std::optional<Callback> callback;
};

struct AgencyOptions {
  uint64_t seed = 1;                          // for failure_rate's draws
  Faults faults;                              // global switches from the command line
  std::map<std::string, Faults> departments;  // per-department switches from the command line
  // The callback command, one word per element; a word may hold the placeholders {case},
  // {step}, {key}, {department}, {operation}. Empty: accepted calls get 202 and nothing more.
  std::vector<std::string> callback;
};

class Agency {
 public:
  explicit Agency(AgencyOptions options);

  // Decides the answer to `request`, applying its effect at most once per idempotency key.
  Plan Handle(const Request& request);

  // The result of a callback the server ran: exit status 0 or not.
  void RecordCallback(bool succeeded);

 private:
  struct Counts {
    int64_t requests = 0;
    int64_t applied = 0;
    int64_t replays = 0;
    int64_t faults = 0;
    nlohmann::json ToJson() const;
  };
  struct Entry {
    std::string key, department, operation, case_id, step;
    nlohmann::json request;
    int status = 200;
    std::string body;
    bool accepted = false;
    int64_t replays = 0;
  };

  Plan HandleCall(const Request& request, const std::string& department,
                  const std::string& operation);
  Plan Admin(const Request& request);
  nlohmann::json StatsJson() const;
  nlohmann::json LedgerJson() const;
  void ResetLocked();

  const AgencyOptions options_;
  mutable std::mutex mutex_;
  FaultTable faults_;
  Registry registry_;
  std::vector<Entry> ledger_;                   // in the order keys were applied
  std::map<std::string, size_t> ledger_index_;  // key -> position in ledger_
  std::map<std::string, int64_t> tries_;        // key -> tries seen, for fail_first
  int64_t unkeyed_ = 0;
  int64_t sequence_ = 0;  // every department call, for unkeyed draws
  Counts total_;
  int64_t conflicts_ = 0, rejected_ = 0, accepted_ = 0, hung_ = 0;
  int64_t callbacks_started_ = 0, callbacks_succeeded_ = 0, callbacks_failed_ = 0;
  std::map<std::string, Counts> by_department_;
  std::map<std::string, std::map<std::string, Counts>> by_operation_;
};

}  // namespace wf::mock
