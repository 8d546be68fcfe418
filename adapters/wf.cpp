#include "adapters/wf.hpp"

#include <utility>

#include "adapters/http.hpp"
#include "adapters/settings.hpp"

namespace wf::adapters {

namespace {

// A url setting with `${env.NAME}` substituted, without a trailing '/'.
Result<std::string> UrlSetting(const nlohmann::json& settings, const std::string& key,
                               const std::string& where) {
  auto it = settings.find(key);
  if (it == settings.end() || !it->is_string() || it->get<std::string>().empty()) {
    return Status::Invalid(where + ": `" + key + "` is required: the " +
                           (key == "url" ? std::string("other deployment's") : std::string("own")) +
                           " wf serve, e.g. https://wf.example.gov.vn:8443");
  }
  auto url = SubstituteEnv(it->get<std::string>(), where + ": " + key);
  if (!url) return url.error();
  std::string text = *url;
  while (!text.empty() && text.back() == '/') text.pop_back();
  if (text.rfind("http://", 0) != 0 && text.rfind("https://", 0) != 0) {
    return Status::Invalid(where + ": " + key + " '" + text +
                           "' must start with https:// (or http:// on loopback)");
  }
  return text;
}

}  // namespace

Result<std::unique_ptr<WfAdapter>> WfAdapter::Create(
    std::string department, const nlohmann::json& settings,
    const std::optional<ClientIdentity>& identity) {
  const std::string where = "department '" + department + "'";
  if (!settings.is_object()) return Status::Invalid(where + ": settings must be a mapping");
  for (const auto& [key, value] : settings.items()) {
    if (key != "url" && key != "callback_url" && key != "timeout") {
      return Status::Invalid(where + ": unknown setting `" + key +
                             "` for adapter wf (known: url, callback_url, timeout)");
    }
  }
  auto url = UrlSetting(settings, "url", where);
  if (!url) return url.error();
  auto callback = UrlSetting(settings, "callback_url", where);
  if (!callback) return callback.error();
  nlohmann::json http = {{"url", *url + "/v1/procedures"},
                         {"headers", {{"Wf-Callback", *callback}}}};
  if (auto it = settings.find("timeout"); it != settings.end()) http["timeout"] = *it;
  if (url->rfind("https://", 0) == 0) {
    if (!identity) {
      return Status::Invalid(where + ": url " + *url +
                             " is https:// but the deployment config has no `identity` (the "
                             "certificate this deployment presents to the other)");
    }
    http["tls"] = {
        {"ca_file", identity->ca}, {"cert_file", identity->cert}, {"key_file", identity->key}};
  }
  auto adapter = HttpAdapter::Create(department, http);
  if (!adapter) return adapter.error();
  return std::make_unique<WfAdapter>(std::move(department), std::move(*adapter));
}

WfAdapter::WfAdapter(std::string department, std::unique_ptr<HttpAdapter> http)
    : department_(std::move(department)), http_(std::move(http)) {}

WfAdapter::~WfAdapter() = default;

Status WfAdapter::Validate(const StepCall& call) const {
  const std::string where = "department '" + department_ + "' (adapter wf)";
  if (!call.call.is_object()) {
    return Status::Invalid(where +
                           ": the call must be a mapping: {operation: start, procedure: "
                           "NAME, ...the input's fields}");
  }
  auto operation = call.call.find("operation");
  if (operation == call.call.end() || *operation != "start") {
    return Status::Invalid(where + ": `operation` must be start (a case of a procedure there)");
  }
  auto procedure = call.call.find("procedure");
  if (procedure == call.call.end() || !procedure->is_string() ||
      procedure->get<std::string>().empty()) {
    return Status::Invalid(where + ": `procedure` names the procedure to start there");
  }
  return Status::Ok();
}

asio::awaitable<StepOutcome> WfAdapter::Invoke(StepRequest request) {
  const std::string label = CallLabel(department_, request.operation);
  auto procedure = request.fields.find("procedure");
  if (request.operation != "start" || procedure == request.fields.end() ||
      !procedure->is_string()) {
    co_return StepOutcome::Failed(label + ": the call needs operation start and a procedure");
  }
  const std::string name = procedure->get<std::string>();
  request.fields.erase("procedure");
  request.operation = name + "/cases";
  StepOutcome outcome = co_await http_->Invoke(std::move(request));
  if (outcome.kind != StepOutcome::Kind::kDone) co_return outcome;
  auto id = outcome.result.find("id");
  if (id == outcome.result.end() || !id->is_string()) {
    co_return StepOutcome::Failed(label + ": the other side started no case (no `id` in " +
                                  Excerpt(outcome.result.dump(), 200) + ")");
  }
  co_return StepOutcome::Accepted(
      {{"deployment", department_}, {"procedure", name}, {"case", id->get<std::string>()}});
}

}  // namespace wf::adapters
