#include "server/api.hpp"

#include <exception>
#include <functional>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "engine/case_detail.hpp"
#include "engine/federation.hpp"
#include "engine/history_action.hpp"
#include "engine/machine.hpp"
#include "engine/runtime.hpp"
#include "workflows/json_limits.hpp"

namespace wf::server {

namespace {

using nlohmann::json;

std::string ClassOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kUsage:
      return "usage";
    case ErrorCode::kInvalid:
      return "invalid";
    case ErrorCode::kNotFound:
      return "not_found";
    case ErrorCode::kConflict:
      return "conflict";
    case ErrorCode::kNotPermitted:
      return "not_permitted";
    case ErrorCode::kHistoryBroken:
      return "history_broken";
    case ErrorCode::kUnavailable:
      return "unavailable";
    case ErrorCode::kTimeout:
      return "timeout";
    default:
      return "internal";
  }
}

// The path split at '/', without the query; empty segments dropped.
std::vector<std::string> Segments(std::string_view target) {
  target = target.substr(0, target.find('?'));
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= target.size()) {
    size_t end = target.find('/', start);
    if (end == std::string_view::npos) end = target.size();
    if (end > start) out.emplace_back(target.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

// A path segment names a procedure, a case or an event: plain characters only, so that nothing
// percent-encoded or odd reaches the store or the logs.
bool PlainSegment(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

// The request body as a JSON object: 400 when it is not JSON, 422 when it breaks the bounds or
// is not an object. An empty body is {} when `empty_ok`.
Result<json> BodyObject(const ApiRequest& request, bool empty_ok) {
  if (request.body.find_first_not_of(" \t\r\n") == std::string::npos) {
    if (empty_ok) return json::object();
    return Status::Usage("the request needs a JSON object as its body");
  }
  auto parsed = workflows::ParseJsonWithin(request.body);
  if (!parsed) {
    // Not JSON at all is a malformed request (400); JSON past the bounds is invalid data (422).
    json probe = json::parse(request.body, nullptr, false);
    if (probe.is_discarded()) return Status::Usage("the body is not valid JSON");
    return Status::Invalid(parsed.error().message());
  }
  if (!parsed->is_object()) return Status::Invalid("the body must be a JSON object");
  return std::move(*parsed);
}

ApiReply Json(int status, json body) {
  ApiReply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

}  // namespace

int HttpStatusOf(ErrorCode code) {
  switch (code) {
    case ErrorCode::kOk:
      return 200;
    case ErrorCode::kUsage:
      return 400;
    case ErrorCode::kInvalid:
      return 422;
    case ErrorCode::kNotFound:
      return 404;
    case ErrorCode::kConflict:
      return 409;
    case ErrorCode::kNotPermitted:
      return 403;
    case ErrorCode::kUnavailable:
      return 503;
    case ErrorCode::kTimeout:
      return 504;
    default:
      return 500;
  }
}

ApiReply ErrorReply(int status, const std::string& error_class, const std::string& message) {
  json errors = json::array();
  std::istringstream lines(message);
  std::string line;
  // One error a line; invalid data lists its JSON paths joined by "; " ("$.a: ...; $.b: ...").
  while (std::getline(lines, line)) {
    size_t start = 0;
    for (size_t at = line.find("; $"); at != std::string::npos; at = line.find("; $", start)) {
      errors.push_back(line.substr(start, at - start));
      start = at + 2;
    }
    if (start < line.size()) errors.push_back(line.substr(start));
  }
  return Json(status, {{"error", error_class}, {"message", message}, {"errors", errors}});
}

ApiReply ErrorReply(const Status& status) {
  return ErrorReply(HttpStatusOf(status.code()), ClassOf(status.code()), status.message());
}

ApiReply Api::Handle(const ApiRequest& request) {
  try {
    std::optional<engine::StartGroup::Request> start;
    ApiReply reply = Route(request, &start);
    if (!start) return reply;
    const engine::Runtime::OnceRequest& once = start->once;
    ApiReply answer =
        StartReply(once.procedure,
                   runtime_.StartCaseOnce(once.procedure, once.data, once.actor, once.client,
                                          once.key, start->caller ? &*start->caller : nullptr));
    answer.route = reply.route;
    return answer;
  } catch (const std::exception& e) {
    return Internal(e);
  }
}

void Api::Handle(const ApiRequest& request, const std::function<void(ApiReply)>& done) {
  if (starts_ == nullptr) return done(Handle(request));
  std::optional<engine::StartGroup::Request> start;
  ApiReply reply;
  try {
    reply = Route(request, &start);
  } catch (const std::exception& e) {
    return done(Internal(e));
  }
  if (!start) return done(std::move(reply));
  std::string procedure = start->once.procedure;
  starts_->Submit(std::move(*start), [procedure = std::move(procedure), route = reply.route,
                                      done](Result<engine::Runtime::StartedOnce> once) {
    ApiReply answer;
    try {
      answer = StartReply(procedure, once);
      answer.route = route;
    } catch (const std::exception& e) {
      answer = Internal(e);
    }
    done(std::move(answer));
  });
}

ApiReply Api::Internal(const std::exception& e) {
  ApiReply reply = ErrorReply(500, "internal", std::string("internal error: ") + e.what());
  reply.route = "?";
  return reply;
}

ApiReply Api::Health() {
  // Healthy means the store answers: a server that cannot reach its database says so (503).
  Status status = runtime_.store().Read([](engine::StoreTx&) { return Status::Ok(); });
  if (!status.ok()) return ErrorReply(Status::Unavailable(status.message()));
  return Json(200, {{"status", "ok"}});
}

ApiReply Api::Route(const ApiRequest& request, std::optional<engine::StartGroup::Request>* start) {
  const std::vector<std::string> path = Segments(request.target);
  const std::string& method = request.method;
  auto with_route = [](ApiReply reply, const char* route) {
    reply.route = route;
    return reply;
  };
  auto method_not_allowed = [&](const char* route, const char* allowed) {
    return with_route(
        ErrorReply(405, "usage", std::string("method ") + method + " not allowed; use " + allowed),
        route);
  };
  if (path.size() < 2 || path[0] != "v1") {
    return with_route(ErrorReply(404, "not_found", "no such resource; see /v1/openapi.json"), "?");
  }
  for (const auto& segment : path) {
    if (!PlainSegment(segment)) {
      return with_route(ErrorReply(404, "not_found", "no such resource; see /v1/openapi.json"),
                        "?");
    }
  }
  if (path.size() == 2 && path[1] == "health") {
    if (method != "GET") return method_not_allowed("/v1/health", "GET");
    return with_route(Health(), "/v1/health");
  }
  if (path.size() == 2 && path[1] == "openapi.json") {
    if (method != "GET") return method_not_allowed("/v1/openapi.json", "GET");
    return with_route(Json(200, OpenApiDocument()), "/v1/openapi.json");
  }
  const engine::Client* client = nullptr;
  if (path.size() == 4 && path[1] == "procedures" && path[3] == "cases") {
    constexpr const char* kRoute = "/v1/procedures/{name}/cases";
    if (method != "POST") return method_not_allowed(kRoute, "POST");
    if (auto refused = Authorise(request, &client)) return with_route(*refused, kRoute);
    if (client != nullptr && !client->MayStart(path[2])) {
      return with_route(
          ErrorReply(Status::NotPermitted("client " + client->name + " may not start " + path[2] +
                                          "; its entry under `clients:` says what it may")),
          kRoute);
    }
    return with_route(PrepareStart(request, path[2], start), kRoute);
  }
  // The two reads of a case: its `wf show --json` and its history.
  const bool show = path.size() == 3 && path[1] == "cases";
  if (show || (path.size() == 4 && path[1] == "cases" && path[3] == "history")) {
    const char* route = show ? "/v1/cases/{id}" : "/v1/cases/{id}/history";
    if (method != "GET") return method_not_allowed(route, "GET");
    if (auto refused = Authorise(request, &client)) return with_route(*refused, route);
    if (client != nullptr && !client->May("show")) {
      return with_route(ErrorReply(Status::NotPermitted(
                            "client " + client->name +
                            " may not see cases; its entry under `clients:` has no `show`")),
                        route);
    }
    return with_route(show ? ShowCase(request, path[2], client) : CaseHistory(path[2], client),
                      route);
  }
  if (path.size() == 5 && path[1] == "cases" && path[3] == "events") {
    constexpr const char* kRoute = "/v1/cases/{id}/events/{event}";
    if (method != "POST") return method_not_allowed(kRoute, "POST");
    if (auto refused = Authorise(request, &client)) return with_route(*refused, kRoute);
    return with_route(DeliverEvent(request, path[2], path[4], client), kRoute);
  }
  return with_route(ErrorReply(404, "not_found", "no such resource; see /v1/openapi.json"), "?");
}

ApiReply Api::PrepareStart(const ApiRequest& request, const std::string& procedure,
                           std::optional<engine::StartGroup::Request>* start) {
  if (request.idempotency_key.empty()) {
    return ErrorReply(Status::Usage(
        "POST /v1/procedures/{name}/cases needs an Idempotency-Key header (a fresh random value "
        "per application, the same one when the request is sent again)"));
  }
  auto data = BodyObject(request, false);
  if (!data) return ErrorReply(data.error());
  // A federated start (the `wf` adapter of another deployment) says where the answer goes.
  std::optional<engine::FederatedCaller> caller;
  if (!request.callback.empty()) {
    const std::string& url = request.callback;
    const bool https = url.rfind("https://", 0) == 0;
    if ((!https && url.rfind("http://", 0) != 0) || url.size() > 2048 ||
        url.find_first_of(" \r\n\t") != std::string::npos) {
      return ErrorReply(Status::Usage(std::string(kCallbackHeader) +
                                      ": give the caller's wf serve as an http(s):// URL"));
    }
    if (require_client_ && !https) {
      return ErrorReply(Status::Usage(std::string(kCallbackHeader) +
                                      ": over TLS the answer goes to an https:// URL only"));
    }
    if (!PlainSegment(request.caller_case) || !PlainSegment(request.caller_step)) {
      return ErrorReply(Status::Usage(
          "a federated start (" + std::string(kCallbackHeader) +
          ") needs X-Wf-Case and X-Wf-Step: the caller's case and step the answer is for"));
    }
    caller = engine::FederatedCaller{request.client, url, request.caller_case, request.caller_step};
  }
  engine::StartGroup::Request& ready = start->emplace();
  ready.once = {procedure,      std::move(*data),        ActorOf(request),
                request.client, request.idempotency_key, nullptr};
  ready.caller = std::move(caller);
  return ApiReply{};
}

ApiReply Api::StartReply(const std::string& procedure,
                         const Result<engine::Runtime::StartedOnce>& once) {
  if (!once) {
    if (once.error().code() == ErrorCode::kNotFound) {
      return ErrorReply(Status::NotFound("no procedure " + procedure + " is deployed"));
    }
    ApiReply reply = ErrorReply(once.error());
    // A duplicate application names the open case in its message; also as a field.
    const std::string& message = once.error().message();
    constexpr std::string_view kOpen = "is already open: ";
    if (auto at = message.find(kOpen); at != std::string::npos) {
      std::string open_case = message.substr(at + kOpen.size());
      open_case = open_case.substr(0, open_case.find_first_of(" ;\n"));
      reply.body["case"] = open_case;
    }
    return reply;
  }
  return Json(once->created ? 201 : 200, {{"id", once->started.id}});
}

ApiReply Api::ShowCase(const ApiRequest&, const std::string& case_id,
                       const engine::Client* client) {
  std::optional<engine::CaseDetail> detail;
  Status status = runtime_.store().Read([&](engine::StoreTx& tx) {
    auto loaded =
        engine::LoadCaseDetail(tx, runtime_.procedures(), case_id, &runtime_.store().keys());
    if (!loaded) return loaded.error();
    detail = std::move(*loaded);
    return Status::Ok();
  });
  if (status.code() == ErrorCode::kNotFound) {
    return ErrorReply(Status::NotFound("no case " + case_id));
  }
  if (!status.ok()) return ErrorReply(status);
  // A client sees the cases it started (a portal its applications, a peer its requests).
  if (client != nullptr && detail->view.record.started_by != client->name) {
    return ErrorReply(Status::NotPermitted("client " + client->name +
                                           " may see only the cases "
                                           "it started; " +
                                           case_id + " is not one of them"));
  }
  return Json(200, engine::CaseDetailJson(*detail, runtime_.deployment(), engine::Now()));
}

ApiReply Api::CaseHistory(const std::string& case_id, const engine::Client* client) {
  json events = json::array();
  Status status = runtime_.store().Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) return record.error();
    if (client != nullptr && record->started_by != client->name) {
      return Status::NotPermitted("client " + client->name +
                                  " may see only the cases it "
                                  "started; " +
                                  case_id + " is not one of them");
    }
    auto history = tx.ListHistory(case_id);
    if (!history) return history.error();
    for (const auto& e : *history) {
      json details = json::parse(e.details, nullptr, false);
      events.push_back({{"seq", e.seq},
                        {"at", e.at},
                        {"actor", e.actor},
                        {"action", e.action},
                        {"step", e.step},
                        {"details", details.is_discarded() ? json(e.details) : details},
                        {"prev_hash", e.prev_hash},
                        {"hash", e.hash}});
    }
    return Status::Ok();
  });
  if (status.code() == ErrorCode::kNotFound) {
    return ErrorReply(Status::NotFound("no case " + case_id));
  }
  if (!status.ok()) return ErrorReply(status);
  return Json(200, {{"case", case_id}, {"events", std::move(events)}});
}

ApiReply Api::DeliverEvent(const ApiRequest& request, const std::string& case_id,
                           const std::string& event, const engine::Client* client) {
  auto data = BodyObject(request, true);
  if (!data) return ErrorReply(data.error());
  // Who may deliver what (checked in the transaction that applies it): a department its own
  // steps' answers (after its 202), a client with `events` the signals `wait:` steps declare.
  // Plain loopback HTTP: anyone on this host, as `wf signal` there.
  auto admit = [client](const engine::CaseRecord& record,
                        const std::vector<engine::Runtime::SignalReceiver>& receivers) {
    if (client == nullptr) return Status::Ok();
    for (const auto& receiver : receivers) {
      if (receiver.callback && receiver.department != client->name) {
        return Status::NotPermitted("client " + client->name + " may not deliver the answer of " +
                                    "department " + receiver.department + " (step " +
                                    receiver.step + " of case " + record.id + ")");
      }
      if (!receiver.callback && !client->May("events")) {
        return Status::NotPermitted("client " + client->name + " may not deliver signal " +
                                    receiver.step + " of case " + record.id +
                                    "; its entry under `clients:` has no `events`");
      }
    }
    return Status::Ok();
  };
  std::string hash;
  Status status = runtime_.DeliverSignal(case_id, engine::event::SignalReceived{event, *data},
                                         ActorOf(request), admit, &hash);
  if (status.code() == ErrorCode::kConflict) {
    // The same answer again (its sender died before recording our reply): the event that took
    // it the first time, so that delivering an answer is idempotent.
    if (auto earlier = EarlierAnswer(case_id, event, *data, ActorOf(request))) {
      return Json(200,
                  {{"case", case_id}, {"event", event}, {"hash", *earlier}, {"repeated", true}});
    }
  }
  if (!status.ok()) return ErrorReply(status);
  json answer = {{"case", case_id}, {"event", event}, {"hash", hash}};
  (void)runtime_.store().Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) return record.error();
    answer["status"] = record->status;
    return Status::Ok();
  });
  return Json(200, answer);
}

std::optional<std::string> Api::EarlierAnswer(const std::string& case_id, const std::string& event,
                                              const nlohmann::json& data,
                                              const std::string& actor) {
  if (!data.contains("case") || !data.contains("hash")) return std::nullopt;
  std::optional<std::string> found;
  (void)runtime_.store().Read([&](engine::StoreTx& tx) {
    auto history = tx.ListHistory(case_id);
    if (!history) return history.error();
    for (const auto& e : *history) {
      if (e.action != engine::history_action::kSignalReceived || e.step != event ||
          e.actor != actor) {
        continue;
      }
      json details = json::parse(e.details, nullptr, false);
      const json* earlier =
          details.is_object() && details.contains("data") ? &details["data"] : nullptr;
      if (earlier != nullptr && earlier->is_object() &&
          earlier->value("case", json()) == data["case"] &&
          earlier->value("hash", json()) == data["hash"]) {
        found = e.hash;
      }
    }
    return Status::Ok();
  });
  return found;
}

std::optional<ApiReply> Api::Authorise(const ApiRequest& request,
                                       const engine::Client** client) const {
  *client = nullptr;
  if (!require_client_) return std::nullopt;
  if (request.client.empty()) {
    return ErrorReply(401, "unauthenticated",
                      request.unauthenticated.empty() ? std::string("no client certificate")
                                                      : request.unauthenticated);
  }
  *client = runtime_.deployment().FindClient(request.client);
  if (*client == nullptr) {
    return ErrorReply(Status::NotPermitted(
        "client " + request.client +
        " (its certificate's CN) is not listed under `clients:` of this deployment"));
  }
  return std::nullopt;
}

std::string Api::ActorOf(const ApiRequest& request) {
  return request.client.empty() ? std::string(kLoopbackActor) : request.client;
}

}  // namespace wf::server
