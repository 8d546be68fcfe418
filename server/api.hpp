#pragma once

// The HTTP API's routes, apart from the sockets (server.cpp): a request comes in as plain
// strings and leaves as a status and a JSON body. Each route calls the same engine code path as
// the CLI command it mirrors. Blocking (it uses the store): the server runs it on its pool.

#include <string>

#include <nlohmann/json.hpp>

#include "workflows/status.hpp"

namespace wf::engine {
class Runtime;
}

namespace wf::server {

// One request as the routes see it.
struct ApiRequest {
  std::string method;  // GET, POST, ...
  std::string target;  // the path, query included
  std::string idempotency_key;
  std::string content_type;
  std::string body;
  std::string client;  // who is calling: a certificate's CN; empty on plain loopback HTTP
};

// One answer.
struct ApiReply {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::string route;  // the route template ("/v1/cases/{id}"), for the access log
};

// The HTTP status of an error class (README, "The HTTP API"): kUsage 400, kInvalid 422,
// kNotFound 404, kConflict 409, kNotPermitted 403, kUnavailable 503, kTimeout 504, the rest 500.
int HttpStatusOf(ErrorCode code);

// An error answer: {"error": CLASS, "message": TEXT, "errors": [every line of TEXT]}.
ApiReply ErrorReply(int status, const std::string& error_class, const std::string& message);
ApiReply ErrorReply(const Status& status);

// The OpenAPI 3 document of every route.
nlohmann::json OpenApiDocument();

// The actor recorded for what a plain-HTTP loopback client does (no certificate names it).
inline constexpr const char* kLoopbackActor = "api";

// The routes over one runtime. Thread-safe as the runtime is.
class Api {
 public:
  // `runtime` must outlive the Api.
  explicit Api(engine::Runtime& runtime) : runtime_(runtime) {}

  // Answers one request; never throws (an exception becomes a 500).
  ApiReply Handle(const ApiRequest& request);

 private:
  ApiReply Route(const ApiRequest& request);
  ApiReply Health();
  ApiReply StartCase(const ApiRequest& request, const std::string& procedure);
  ApiReply ShowCase(const ApiRequest& request, const std::string& case_id);
  ApiReply DeliverEvent(const ApiRequest& request, const std::string& case_id,
                        const std::string& event);
  static std::string ActorOf(const ApiRequest& request);

  engine::Runtime& runtime_;
};

}  // namespace wf::server
