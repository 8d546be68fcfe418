// libFuzzer target: the guarded YAML parser must survive any bytes, terminate, and keep its
// tree within the depth limit.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "workflows/yaml_tree.hpp"

namespace {

// Deeper than the limit means a guard failed.
int Depth(const wf::workflows::YamlNode& node) {
  int deepest = 0;
  for (const auto& item : node.items) deepest = std::max(deepest, Depth(item));
  for (const auto& [key, value] : node.entries) {
    deepest = std::max({deepest, Depth(key), Depth(value)});
  }
  bool collection = node.IsSequence() || node.IsMapping();
  return deepest + (collection ? 1 : 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  wf::workflows::DiagnosticSink sink("fuzz.yaml");
  wf::workflows::YamlLimits limits;
  wf::workflows::YamlNode root = wf::workflows::ParseYaml(text, sink, limits);
  if (Depth(root) > limits.max_depth) std::abort();
  for (const auto& diagnostic : sink.Sorted()) {
    if (diagnostic.message.empty()) std::abort();
  }
  return 0;
}
