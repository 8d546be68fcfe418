// libFuzzer target: a department's answer, the bytes an http or command adapter receives, through
// the path it takes into the engine: the bound check on the text, the parse, then what the
// scheduler does with a result (measure, copy, dump). Whatever bytes come in, nothing may throw,
// recurse past the bounds or crash, and a value that passes must be safe to copy and dump.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "workflows/json_limits.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = wf::workflows::ParseJsonWithin(text);
  if (!parsed) return 0;
  // Within the depth bound whatever its bytes (floats may grow when dumped: 1e5 -> 100000.0).
  wf::workflows::JsonLimits depth_only;
  depth_only.max_bytes = depth_only.max_values = depth_only.max_string_bytes = SIZE_MAX;
  auto depth = wf::workflows::MeasureJson(*parsed, depth_only);
  if (!depth || depth->depth > wf::workflows::kMaxJsonDepth) std::abort();
  auto measured = wf::workflows::MeasureJson(*parsed);
  if (!measured) return 0;  // the scheduler refuses it: a permanent failure of the step
  nlohmann::json copy = *parsed;
  if (copy.dump().size() != measured->bytes) std::abort();
  return 0;
}
