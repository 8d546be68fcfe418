// Expression evaluations per second: in the calling thread versus through the ExpressionPool's
// worker processes (issue 11). Prints one line per measurement and a JSON object at the end.
//   wf_expression_bench [SECONDS_PER_MEASUREMENT]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/expression_pool.hpp"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// About a kilobyte of case data, like a real application's.
json CaseData() {
  json items = json::array();
  for (int i = 0; i < 10; ++i) items.push_back({{"n", i}, {"name", "item " + std::to_string(i)}});
  return {{"applicant", {{"citizen_id", "079123456789"}, {"name", "Nguyen Van An"}}},
          {"review", {{"approved", true}, {"note", "documents complete"}}},
          {"items", items},
          {"address", {{"province", "Ha Noi"}, {"district", "Ba Dinh"}, {"ward", "Kim Ma"}}}};
}

double Measure(wf::workflows::Evaluator& evaluator, const wf::workflows::Expression& expression,
               const json& input, double seconds, int threads) {
  std::vector<std::thread> runners;
  std::vector<long> counts(static_cast<size_t>(threads), 0);
  const auto start = Clock::now();
  const auto until = start + std::chrono::duration<double>(seconds);
  for (int t = 0; t < threads; ++t) {
    runners.emplace_back([&, t] {
      long n = 0;
      while (Clock::now() < until) {
        for (int i = 0; i < 50; ++i) {
          if (!evaluator.Evaluate(expression, input)) std::abort();
        }
        n += 50;
      }
      counts[static_cast<size_t>(t)] = n;
    });
  }
  for (auto& runner : runners) runner.join();
  long total = 0;
  for (long n : counts) total += n;
  return static_cast<double>(total) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], wf::engine::kExpressionWorkerMode) == 0) {
    return wf::engine::RunExpressionWorker(argc, argv);
  }
  const double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  const json input = CaseData();
  struct Case {
    const char* name;
    const char* program;
  };
  const Case cases[] = {
      {"path", ".applicant.citizen_id"},
      {"condition", ".review.approved and .address.province == \"Ha Noi\""},
      {"dedupe_key", ".applicant.citizen_id + \"/\" + .address.ward"},
      {"piped", "[.items[] | .n] | add"},
  };
  wf::engine::ExpressionPool pool;
  json out = json::object();
  for (const Case& c : cases) {
    auto expression = wf::workflows::Expression::Compile(c.program, nullptr);
    if (!expression) return 1;
    const double here =
        Measure(wf::workflows::InProcessEvaluator(), *expression, input, seconds, 1);
    const double pooled = Measure(pool, *expression, input, seconds, 1);
    const double pooled2 = Measure(pool, *expression, input, seconds, 2);
    std::printf(
        "%-11s bounded=%d  in-process %9.0f/s  pool 1 thread %9.0f/s  pool 2 threads %9.0f/s\n",
        c.name, expression->bounded() ? 1 : 0, here, pooled, pooled2);
    out[c.name] = {{"program", c.program},
                   {"bounded", expression->bounded()},
                   {"in_process_per_s", here},
                   {"pool_per_s", pooled},
                   {"pool_2_threads_per_s", pooled2}};
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
