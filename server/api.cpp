#include "server/api.hpp"

#include <exception>
#include <optional>
#include <sstream>
#include <string_view>
#include <vector>

#include "engine/case_detail.hpp"
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
    return Route(request);
  } catch (const std::exception& e) {
    ApiReply reply = ErrorReply(500, "internal", std::string("internal error: ") + e.what());
    reply.route = "?";
    return reply;
  }
}

ApiReply Api::Health() {
  // Healthy means the store answers: a server that cannot reach its database says so (503).
  Status status = runtime_.store().Read([](engine::StoreTx&) { return Status::Ok(); });
  if (!status.ok()) return ErrorReply(Status::Unavailable(status.message()));
  return Json(200, {{"status", "ok"}});
}

ApiReply Api::Route(const ApiRequest& request) {
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
  if (path.size() == 4 && path[1] == "procedures" && path[3] == "cases") {
    constexpr const char* kRoute = "/v1/procedures/{name}/cases";
    if (method != "POST") return method_not_allowed(kRoute, "POST");
    return with_route(StartCase(request, path[2]), kRoute);
  }
  if (path.size() == 3 && path[1] == "cases") {
    constexpr const char* kRoute = "/v1/cases/{id}";
    if (method != "GET") return method_not_allowed(kRoute, "GET");
    return with_route(ShowCase(request, path[2]), kRoute);
  }
  if (path.size() == 5 && path[1] == "cases" && path[3] == "events") {
    constexpr const char* kRoute = "/v1/cases/{id}/events/{event}";
    if (method != "POST") return method_not_allowed(kRoute, "POST");
    return with_route(DeliverEvent(request, path[2], path[4]), kRoute);
  }
  return with_route(ErrorReply(404, "not_found", "no such resource; see /v1/openapi.json"), "?");
}

ApiReply Api::StartCase(const ApiRequest& request, const std::string& procedure) {
  if (request.idempotency_key.empty()) {
    return ErrorReply(Status::Usage(
        "POST /v1/procedures/{name}/cases needs an Idempotency-Key header (a fresh random value "
        "per application, the same one when the request is sent again)"));
  }
  auto data = BodyObject(request, false);
  if (!data) return ErrorReply(data.error());
  auto once = runtime_.StartCaseOnce(procedure, *data, ActorOf(request), request.client,
                                     request.idempotency_key);
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

ApiReply Api::ShowCase(const ApiRequest&, const std::string& case_id) {
  std::optional<engine::CaseDetail> detail;
  Status status = runtime_.store().Read([&](engine::StoreTx& tx) {
    auto loaded = engine::LoadCaseDetail(tx, runtime_.procedures(), case_id);
    if (!loaded) return loaded.error();
    detail = std::move(*loaded);
    return Status::Ok();
  });
  if (status.code() == ErrorCode::kNotFound) {
    return ErrorReply(Status::NotFound("no case " + case_id));
  }
  if (!status.ok()) return ErrorReply(status);
  return Json(200, engine::CaseDetailJson(*detail, runtime_.deployment(), engine::Now()));
}

ApiReply Api::DeliverEvent(const ApiRequest& request, const std::string& case_id,
                           const std::string& event) {
  auto data = BodyObject(request, true);
  if (!data) return ErrorReply(data.error());
  Status status =
      runtime_.ApplyEvent(case_id, engine::event::SignalReceived{event, *data}, ActorOf(request));
  if (!status.ok()) return ErrorReply(status);
  json answer = {{"case", case_id}, {"event", event}};
  (void)runtime_.store().Read([&](engine::StoreTx& tx) {
    auto record = tx.GetCase(case_id);
    if (!record) return record.error();
    answer["status"] = record->status;
    return Status::Ok();
  });
  return Json(200, answer);
}

std::string Api::ActorOf(const ApiRequest& request) {
  return request.client.empty() ? std::string(kLoopbackActor) : request.client;
}

}  // namespace wf::server
