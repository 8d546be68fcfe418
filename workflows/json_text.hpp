#pragma once

// Compact JSON text, byte for byte what nlohmann::json::dump() writes, without its serializer's
// per-character work for the plain strings, keys and integers that most of wf's values are made
// of. The engine writes a case's data, state, work payloads and history details as text on every
// step, so this is on the hot path (bench/README.md, "Writing JSON"). Anything unusual (a float,
// a string that is not valid UTF-8, a binary value) is written by nlohmann::json itself, so the
// text never differs.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace wf::workflows {

// value.dump(-1, ' ', false, handler): the same text.
std::string DumpJson(const nlohmann::json& value,
                     nlohmann::json::error_handler_t handler =
                         nlohmann::json::error_handler_t::strict);
// The same, appended to `out`.
void AppendJson(std::string& out, const nlohmann::json& value,
                nlohmann::json::error_handler_t handler =
                    nlohmann::json::error_handler_t::strict);

// `text` as a JSON string, quoted and escaped as DumpJson writes it, appended to `out`.
void AppendJsonString(std::string& out, std::string_view text,
                      nlohmann::json::error_handler_t handler =
                          nlohmann::json::error_handler_t::strict);

// nlohmann::json::parse(text, nullptr, false): the same value, with the same types (a number
// without sign parses as unsigned), or a discarded value when `text` is not JSON. Objects,
// arrays, strings, integers and literals are read here, eight plain bytes at a time; a float or
// an integer out of range is converted by nlohmann itself, and anything that does not read
// cleanly (an error, a byte-order mark, nesting deeper than 128) is handed whole to nlohmann, so
// the result never differs. The engine reads its own state, data and work payloads back on every
// step (bench/README.md, "Reading JSON").
nlohmann::json ParseJson(std::string_view text);

}  // namespace wf::workflows
