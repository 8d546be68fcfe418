#pragma once
// A case's run-time state as the text cases.state keeps (format 2: the data is in cases.data),
// written member by member: byte for byte workflows::DumpJson(state.ToJson(false)), without the
// DOM that ToJson builds and the dump then walks. The engine writes it on every step.

#include <functional>
#include <string>

#include "engine/machine.hpp"

namespace wf::engine {

// `seal_text` (when given) stands for CaseSealer::SealText: it gets each text that may hold a
// personal value (the end reason, a token's incident message) and returns what is stored in its
// place: the same text as sealing those two in the DOM with CaseSealer::SealInPlace.
std::string StateText(const CaseState& state,
                      const std::function<std::string(const std::string&)>& seal_text = {});

}  // namespace wf::engine
