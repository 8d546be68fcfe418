#include "cli/adapters_wiring.hpp"

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "adapters/command.hpp"
#include "adapters/http.hpp"
#include "adapters/noop.hpp"
#include "adapters/notify.hpp"
#include "adapters/sql.hpp"
#include "adapters/wf.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

// Stands in for a department whose kind this program cannot call: every attempt fails
// permanently, so the step becomes an incident whose message says what is missing (rather than
// the engine's "no department" for a department the config does name).
class UnsupportedAdapter final : public adapters::Adapter {
 public:
  UnsupportedAdapter(std::string department, std::string kind)
      : message_("department '" + department + "': adapter kind '" + kind +
                 "' is not supported by this program; change its `adapter:` in the deployment "
                 "config, then `wf retry` the incident") {}

  Status Validate(const adapters::StepCall&) const override { return Status::Ok(); }
  asio::awaitable<adapters::StepOutcome> Invoke(adapters::StepRequest) override {
    co_return adapters::StepOutcome::Failed(message_);
  }

 private:
  std::string message_;
};

// A department whose settings its adapter refuses: exit 3 pointing at the config.
Status SettingsError(const engine::Deployment& deployment, const engine::Department& department,
                     const Status& why) {
  return Status::Invalid(TrFormat("{0}:{1}:{2}: error: {3}", deployment.file, department.where.line,
                                  department.where.column, why.message()));
}

}  // namespace

Status BuildRegistry(const engine::Deployment& deployment, adapters::Registry* registry) {
  for (const auto& [name, department] : deployment.departments) {
    if (department.adapter == "noop") {
      registry->Add(name, std::make_unique<adapters::NoopAdapter>());
      continue;
    }
    if (department.adapter == "http") {
      auto adapter = adapters::HttpAdapter::Create(name, department.settings);
      if (!adapter) return SettingsError(deployment, department, adapter.error());
      registry->Add(name, std::move(*adapter));
      continue;
    }
    if (department.adapter == "notify") {
      auto adapter = adapters::NotifyAdapter::Create(name, department.settings);
      if (!adapter) return SettingsError(deployment, department, adapter.error());
      registry->Add(name, std::move(*adapter));
      continue;
    }
    if (department.adapter == "sql") {
      auto adapter = adapters::SqlAdapter::Create(name, department.settings);
      if (!adapter) return SettingsError(deployment, department, adapter.error());
      registry->Add(name, std::move(*adapter));
      continue;
    }
    if (department.adapter == "wf") {
      std::optional<adapters::ClientIdentity> identity;
      if (deployment.identity) {
        identity = adapters::ClientIdentity{deployment.identity->cert, deployment.identity->key,
                                            deployment.identity->ca};
      }
      auto adapter = adapters::WfAdapter::Create(name, department.settings, identity);
      if (!adapter) return SettingsError(deployment, department, adapter.error());
      registry->Add(name, std::move(*adapter));
      continue;
    }
    if (department.adapter == "command") {
      auto adapter = adapters::CommandAdapter::Create(name, department.settings);
      if (!adapter) return SettingsError(deployment, department, adapter.error());
      registry->Add(name, std::move(*adapter));
      continue;
    }
    spdlog::warn(
        "department '{}' ({}:{}): adapter kind '{}' is not supported by this program yet; steps "
        "calling it will become incidents",
        name, deployment.file, department.where.line, department.adapter);
    registry->Add(name, std::make_unique<UnsupportedAdapter>(name, department.adapter));
  }
  return Status::Ok();
}

}  // namespace wf::cli
