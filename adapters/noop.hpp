#pragma once

#include "adapters/adapter.hpp"

namespace wf::adapters {

// The built-in `noop` adapter (DESIGN.md): answers at once with the call's fields as its result.
// For tests and benchmarks of the engine alone. A procedure may name `adapter: noop` without a
// department of that name in the deployment config.
class NoopAdapter final : public Adapter {
 public:
  Status Validate(const StepCall& call) const override;
  asio::awaitable<StepOutcome> Invoke(StepRequest request) override;
};

}  // namespace wf::adapters
