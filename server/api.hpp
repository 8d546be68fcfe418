#pragma once

// The HTTP API's routes, apart from the sockets (server.cpp): a request comes in as plain
// strings and leaves as a status and a JSON body. Each route calls the same engine code path as
// the CLI command it mirrors. Blocking (it uses the store): the server runs it on its pool.

#include <exception>
#include <functional>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/start_group.hpp"
#include "workflows/status.hpp"

namespace wf::engine {
struct Client;
}  // namespace wf::engine

namespace wf::server {

// One request as the routes see it.
struct ApiRequest {
  std::string method;  // GET, POST, ...
  std::string target;  // the path, query included
  std::string idempotency_key;
  std::string content_type;
  std::string body;
  // Who is calling: the CN of a client certificate that verified; empty on plain loopback HTTP
  // and for a TLS client that is not authenticated.
  std::string client;
  // With TLS: why the client is not authenticated (no certificate, one that does not verify);
  // empty when it is. Every route but health and the OpenAPI document then answers 401.
  std::string unauthenticated;
  // A federated start (the `wf` adapter of another deployment): where to post the result when
  // the case ends (kCallbackHeader, the caller's own wf serve), and the caller's case and step
  // (the http wire's X-Wf-Case and X-Wf-Step headers).
  std::string callback;
  std::string caller_case;
  std::string caller_step;
};

// The header a federated start names its caller's wf serve by (DESIGN.md, "Federation").
inline constexpr const char* kCallbackHeader = "Wf-Callback";

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
  // `runtime` must outlive the Api. With `require_client` (wf serve over TLS, the deployment has
  // an identity) every route but health and the OpenAPI document needs an authenticated client
  // listed under the deployment config's `clients:`, and checks what it may do there.
  // With `starts` (wf serve), the asynchronous Handle commits starts in groups through it; it must
  // outlive the Api's answers.
  Api(engine::Runtime& runtime, bool require_client, engine::StartGroup* starts = nullptr)
      : runtime_(runtime), require_client_(require_client), starts_(starts) {}

  // Answers one request; never throws (an exception becomes a 500).
  ApiReply Handle(const ApiRequest& request);
  // Answers one request through `done`: at once on this thread, or, for a start with a start
  // group, on the thread that committed its group. Blocking like the other Handle.
  void Handle(const ApiRequest& request, const std::function<void(ApiReply)>& done);

 private:
  // The answer, or, for a start that passed its checks, `*start` set to what to start (the
  // answer is then StartReply's, with the route of the one returned).
  ApiReply Route(const ApiRequest& request, std::optional<engine::StartGroup::Request>* start);
  ApiReply Health();
  ApiReply PrepareStart(const ApiRequest& request, const std::string& procedure,
                        std::optional<engine::StartGroup::Request>* start);
  static ApiReply StartReply(const std::string& procedure,
                             const Result<engine::Runtime::StartedOnce>& once);
  static ApiReply Internal(const std::exception& e);
  // `client`: the caller's entry under `clients:`, null on plain loopback HTTP.
  ApiReply ShowCase(const ApiRequest& request, const std::string& case_id,
                    const engine::Client* client);
  // The case's history events with their hashes (`wf audit verify --peer` of the other side).
  ApiReply CaseHistory(const std::string& case_id, const engine::Client* client);
  ApiReply DeliverEvent(const ApiRequest& request, const std::string& case_id,
                        const std::string& event, const engine::Client* client);
  static std::string ActorOf(const ApiRequest& request);
  // The hash of the event that took this very answer (`data` with the same `case` and `hash`,
  // from the same actor) to step `event` of the case before; nullopt when none did.
  std::optional<std::string> EarlierAnswer(const std::string& case_id, const std::string& event,
                                           const nlohmann::json& data, const std::string& actor);
  // With require_client_: the 401 or 403 that refuses the request, or nullopt with `*client`
  // set to its entry under `clients:`. Without: nullopt and `*client` null.
  std::optional<ApiReply> Authorise(const ApiRequest& request, const engine::Client** client) const;

  engine::Runtime& runtime_;
  bool require_client_ = false;
  engine::StartGroup* starts_ = nullptr;
};

}  // namespace wf::server
