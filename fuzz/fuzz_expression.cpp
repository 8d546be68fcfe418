// libFuzzer target: compiling and evaluating a jq expression, and rendering a template that
// embeds it, must survive any program text and never throw.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "workflows/expression.hpp"

namespace {

const nlohmann::json& CaseData() {
  static const nlohmann::json data = nlohmann::json::parse(R"({
    "child": {"full_name": "Nguyen Van A", "birth_date": "2026-01-02"},
    "mother": {"citizen_id": "012345678901", "age": 31},
    "review": {"approved": true, "note": null},
    "items": [1, 2.5, "three", [4], {"five": 5}],
    "empty": {}
  })");
  return data;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 4096) return -1;  // programs in definitions are short; keep runs fast
  std::string program(reinterpret_cast<const char*>(data), size);
  wf::workflows::ExpressionError error;
  if (auto expression = wf::workflows::Expression::Compile(program, &error)) {
    (void)expression->Evaluate(CaseData());
    (void)expression->EvaluateCondition(CaseData());
  }
  // The same text as a template: whole, embedded among other text, and inside an object.
  nlohmann::json value_template = {
      {"whole", "${" + program + "}"},
      {"spliced", "id ${ " + program + " } end"},
      {"raw", program},
      {"nested", {program, {{"k", "${" + program + "}"}}}},
  };
  (void)wf::workflows::RenderTemplate(value_template, CaseData());
  return 0;
}
