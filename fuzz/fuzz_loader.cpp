// libFuzzer target: loading a procedure definition (parse, build the model, every static check)
// must survive any bytes and never throw.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflows/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  wf::workflows::LoadResult result = wf::workflows::LoadProcedure(text, "fuzz.yaml");
  // A procedure comes back only when nothing was wrong.
  if (result.procedure.has_value() != result.diagnostics.empty()) std::abort();
  return 0;
}
