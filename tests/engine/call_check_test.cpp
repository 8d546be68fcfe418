#include "engine/call_check.hpp"

#include <catch2/catch.hpp>
#include <memory>
#include <string>
#include <vector>

#include "workflows/loader.hpp"

namespace wf::engine {
namespace {

// Refuses a call whose `operation` is not text, as the http and command adapters do.
class StrictAdapter final : public adapters::Adapter {
 public:
  Status Validate(const adapters::StepCall& call) const override {
    auto it = call.call.find("operation");
    if (it != call.call.end() && !it->is_string()) {
      return Status::Invalid("department '" + call.department + "': `operation` must be text");
    }
    return Status::Ok();
  }
  asio::awaitable<adapters::StepOutcome> Invoke(adapters::StepRequest) override {
    co_return adapters::StepOutcome::Failed("not called in this test");
  }
};

workflows::Procedure LoadOrFail(const std::string& text) {
  workflows::LoadResult loaded = workflows::LoadProcedure(text, "calls.yaml", nullptr);
  REQUIRE(loaded.ok());
  return std::move(*loaded.procedure);
}

TEST_CASE("a department call its adapter refuses is reported at the step's call",
          "[engine][call_check]") {
  const workflows::Procedure procedure = LoadOrFail(R"(procedure: calls
agency: commune-justice
steps:
  good:
    adapter: population-db
    call: {operation: get_citizen}
    next: bad
  bad:
    adapter: population-db
    call:
      operation: 42
    next: elsewhere
  elsewhere:
    adapter: unknown-here
    call: {operation: 7}
    next: done
  done: {end: completed}
)");
  adapters::Registry registry;
  registry.Add("population-db", std::make_unique<StrictAdapter>());
  std::vector<workflows::Diagnostic> found = CheckCalls(procedure, registry);
  REQUIRE(found.size() == 1);  // a department the registry lacks is the loader's to report
  CHECK(found[0].ToString() ==
        "calls.yaml:11:7: error: in step 'bad': department 'population-db': `operation` must be "
        "text");
}

TEST_CASE("an empty registry checks no call", "[engine][call_check]") {
  const workflows::Procedure procedure = LoadOrFail(
      "procedure: calls\nagency: a\nsteps:\n  one: {adapter: x, call: {operation: 1}, next: "
      "done}\n  done: {end: completed}\n");
  CHECK(CheckCalls(procedure, adapters::Registry{}).empty());
}

}  // namespace
}  // namespace wf::engine
