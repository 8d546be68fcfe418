// The OpenAPI 3 document of `wf serve` (GET /v1/openapi.json). Kept beside the routes it
// describes; the tests call every route of the real server and check each answer's status is
// one this document lists for it.
#include "server/api.hpp"

namespace wf::server {

namespace {

using nlohmann::json;

json Ref(const char* name) { return {{"$ref", std::string("#/components/schemas/") + name}}; }

json JsonContent(const json& schema) { return {{"application/json", {{"schema", schema}}}}; }

json Answer(const char* description, const char* schema) {
  return {{"description", description}, {"content", JsonContent(Ref(schema))}};
}

json ErrorAnswer(const char* description) { return Answer(description, "Error"); }

// The answers every route may give whatever it does.
json CommonAnswers(json answers) {
  answers["400"] = ErrorAnswer("malformed request: not JSON, a missing header");
  answers["401"] = ErrorAnswer(
      "no client certificate, or one this deployment's CA did not sign (TLS deployments)");
  answers["403"] = ErrorAnswer("the client may not do this");
  answers["405"] = ErrorAnswer("another method is required");
  answers["408"] = ErrorAnswer("the request did not arrive in time");
  answers["413"] = ErrorAnswer("the body is larger than the server accepts");
  answers["500"] = ErrorAnswer("internal error");
  answers["503"] = ErrorAnswer("the store is unavailable, or too many connections");
  return answers;
}

json PathParameter(const char* name, const char* description) {
  return {{"name", name},
          {"in", "path"},
          {"required", true},
          {"description", description},
          {"schema", {{"type", "string"}, {"pattern", "^[A-Za-z0-9._-]{1,128}$"}}}};
}

}  // namespace

json OpenApiDocument() {
  json schemas = {
      {"Error",
       {{"type", "object"},
        {"required", {"error", "message", "errors"}},
        {"properties",
         {{"error",
           {{"type", "string"},
            {"description",
             "the error class: usage, invalid, not_found, conflict, not_permitted, "
             "unauthenticated, too_large, timeout, unavailable, internal"}}},
          {"message", {{"type", "string"}}},
          {"errors",
           {{"type", "array"},
            {"items", {{"type", "string"}}},
            {"description", "every error, one a line (invalid data: each JSON path)"}}},
          {"case",
           {{"type", "string"},
            {"description", "a duplicate application (409): the open case"}}}}}}},
      {"Created",
       {{"type", "object"}, {"required", {"id"}}, {"properties", {{"id", {{"type", "string"}}}}}}},
      {"Health",
       {{"type", "object"},
        {"required", {"status"}},
        {"properties", {{"status", {{"type", "string"}, {"enum", {"ok"}}}}}}}},
      {"Case",
       {{"type", "object"},
        {"description", "the object of `wf show --json`"},
        {"required",
         {"id", "procedure", "version", "status", "data", "tasks", "incidents", "deadline"}},
        {"properties",
         {{"id", {{"type", "string"}}},
          {"procedure", {{"type", "string"}}},
          {"version", {{"type", "integer"}}},
          {"status", {{"type", "string"}}},
          {"data", {{"type", "object"}}},
          {"tasks", {{"type", "array"}, {"items", {{"type", "object"}}}}},
          {"incidents", {{"type", "array"}, {"items", {{"type", "object"}}}}},
          {"deadline", {{"type", "object"}, {"nullable", true}}}}}}},
      {"Delivered",
       {{"type", "object"},
        {"required", {"case", "event"}},
        {"properties",
         {{"case", {{"type", "string"}}},
          {"event", {{"type", "string"}}},
          {"status", {{"type", "string"}}},
          {"hash", {{"type", "string"}, {"description", "the history event that records it"}}},
          {"repeated",
           {{"type", "boolean"},
            {"description", "the same answer was delivered before: its event's hash"}}}}}}},
      {"History",
       {{"type", "object"},
        {"required", {"case", "events"}},
        {"properties",
         {{"case", {{"type", "string"}}},
          {"events",
           {{"type", "array"},
            {"items",
             {{"type", "object"},
              {"required", {"seq", "at", "actor", "action", "hash", "prev_hash"}},
              {"properties",
               {{"seq", {{"type", "integer"}}},
                {"at", {{"type", "string"}}},
                {"actor", {{"type", "string"}}},
                {"action", {{"type", "string"}}},
                {"step", {{"type", "string"}}},
                {"details", {}},
                {"prev_hash", {{"type", "string"}}},
                {"hash", {{"type", "string"}}}}}}}}}}}}}};

  json start = {
      {"operationId", "startCase"},
      {"summary", "start a case of the newest version of a procedure (`wf start`)"},
      {"parameters",
       {PathParameter("name", "the procedure's name"),
        {{"name", "Idempotency-Key"},
         {"in", "header"},
         {"required", true},
         {"description", "the same key again answers 200 with the case the first request made"},
         {"schema", {{"type", "string"}, {"minLength", 1}, {"maxLength", 255}}}},
        {{"name", "Wf-Callback"},
         {"in", "header"},
         {"required", false},
         {"description",
          "a federated start (another deployment's `wf` adapter): its wf serve, where the "
          "case's {case, procedure, status, data, hash} is posted when it ends, to "
          "/v1/cases/{X-Wf-Case}/events/{X-Wf-Step}"},
         {"schema", {{"type", "string"}, {"format", "uri"}}}},
        {{"name", "X-Wf-Case"},
         {"in", "header"},
         {"required", false},
         {"description", "with Wf-Callback: the caller's case"},
         {"schema", {{"type", "string"}}}},
        {{"name", "X-Wf-Step"},
         {"in", "header"},
         {"required", false},
         {"description", "with Wf-Callback: the caller's step that waits for the answer"},
         {"schema", {{"type", "string"}}}}}},
      {"requestBody", {{"required", true}, {"content", JsonContent({{"type", "object"}})}}},
      {"responses",
       CommonAnswers({{"201", Answer("the case was started", "Created")},
                      {"200", Answer("the key was seen before: the case it started", "Created")},
                      {"404", ErrorAnswer("no such procedure is deployed")},
                      {"409", ErrorAnswer("a duplicate application: names the open case")},
                      {"422", ErrorAnswer("invalid data: every error with its JSON path")}})}};
  json show = {{"operationId", "showCase"},
               {"summary", "a case as `wf show --json` prints it"},
               {"parameters", {PathParameter("id", "the case id")}},
               {"responses", CommonAnswers({{"200", Answer("the case", "Case")},
                                            {"404", ErrorAnswer("no such case")}})}};
  json event = {
      {"operationId", "deliverEvent"},
      {"summary",
       "a signal a wait step declares, or a department's callback after it answered 202 "
       "(`wf signal`)"},
      {"parameters",
       {PathParameter("id", "the case id"),
        PathParameter("event", "the signal's name, or the step id of a 202-parked step")}},
      {"requestBody", {{"required", false}, {"content", JsonContent({{"type", "object"}})}}},
      {"responses", CommonAnswers({{"200", Answer("delivered", "Delivered")},
                                   {"404", ErrorAnswer("no such case")},
                                   {"409", ErrorAnswer("nothing in the case waits for this event")},
                                   {"422", ErrorAnswer("the data is past the bounds")}})}};
  json history = {
      {"operationId", "caseHistory"},
      {"summary", "a case's history events with their hashes (`wf audit verify --peer`)"},
      {"parameters", {PathParameter("id", "the case id")}},
      {"responses", CommonAnswers({{"200", Answer("the history", "History")},
                                   {"404", ErrorAnswer("no such case")}})}};
  json health = {{"operationId", "health"},
                 {"summary", "the server runs and its store answers"},
                 {"responses", CommonAnswers({{"200", Answer("healthy", "Health")}})}};
  json openapi = {
      {"operationId", "openapi"},
      {"summary", "this document"},
      {"responses", CommonAnswers({{"200",
                                    {{"description", "the OpenAPI 3 document"},
                                     {"content", JsonContent({{"type", "object"}})}}}})}};
  return {{"openapi", "3.0.3"},
          {"info",
           {{"title", "wf HTTP API"},
            {"version", "1"},
            {"description",
             "wf serve: start cases, read them, deliver signals and department callbacks. "
             "Errors carry the CLI's exit-code classes as HTTP statuses."}}},
          {"paths",
           {{"/v1/procedures/{name}/cases", {{"post", start}}},
            {"/v1/cases/{id}", {{"get", show}}},
            {"/v1/cases/{id}/history", {{"get", history}}},
            {"/v1/cases/{id}/events/{event}", {{"post", event}}},
            {"/v1/health", {{"get", health}}},
            {"/v1/openapi.json", {{"get", openapi}}}}},
          {"components", {{"schemas", schemas}}}};
}

}  // namespace wf::server
