#include "adapters/noop.hpp"

namespace wf::adapters {

Status NoopAdapter::Validate(const StepCall&) const { return Status::Ok(); }

asio::awaitable<StepOutcome> NoopAdapter::Invoke(StepRequest request) {
  nlohmann::json result = std::move(request.fields);
  if (!request.operation.empty()) result["operation"] = request.operation;
  co_return StepOutcome::Done(std::move(result));
}

}  // namespace wf::adapters
