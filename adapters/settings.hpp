#pragma once

// Helpers the adapters share for reading a department's settings (engine::Department::settings,
// a JSON object) and for writing the messages of their outcomes. Plain functions, no I/O beyond
// reading the process environment; none throws.

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "workflows/status.hpp"

namespace wf::adapters {

// Replaces every `${env.NAME}` in `text` by the value of the environment variable NAME (read
// with getenv when called: adapters call it once, when they are built). NAME is letters, digits
// and underscores. A variable that is not set, or a `${env.` without a closing brace or with a
// bad name, is kInvalid whose message starts with `where` (e.g. "department 'population-db':
// headers.Authorization") and names the variable, so a secret missing from the environment is a
// clear start-up error. Text without `${env.` is returned unchanged; `${ .x }` (a jq expression)
// is left alone.
Result<std::string> SubstituteEnv(std::string_view text, std::string_view where);

// Reads a duration setting such as `timeout: 5s`: a string in the language's duration syntax
// (workflows::ParseDuration: `30s`, `5m`, `2h`, `1 day`; working days are refused because they
// need a calendar) or a non-negative number of seconds (`timeout: 5`, `timeout: 0.5`). Zero is
// refused. kInvalid naming `where` otherwise.
Result<std::chrono::milliseconds> ParseDurationSetting(const nlohmann::json& value,
                                                       std::string_view where);

// The time an attempt may take: the step's own timeout, capped by the department's `timeout`
// setting when there is one. (The engine always sends a step timeout, 30 s unless the step
// says otherwise, so the department setting can only shorten it.)
std::chrono::milliseconds EffectiveTimeout(std::chrono::milliseconds step_timeout,
                                           std::optional<std::chrono::milliseconds> department);

// A duration for people: "5s" for whole seconds, "1500ms" otherwise.
std::string DescribeDuration(std::chrono::milliseconds duration);

// At most `max_bytes` of `text` (the first ones, or the last ones with `tail`), made safe to put
// in a message that ends up in JSON: cut on a UTF-8 character boundary, invalid UTF-8 bytes and
// control characters other than newline and tab replaced by '?', surrounding whitespace trimmed;
// "..." marks a cut.
std::string Excerpt(std::string_view text, std::size_t max_bytes, bool tail = false);

// "population-db get_citizen" (or "population-db" for an empty operation): how every outcome
// message of an adapter starts.
std::string CallLabel(std::string_view department, std::string_view operation);

}  // namespace wf::adapters
