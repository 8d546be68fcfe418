// The engine tests' main: Catch2, and the hidden expression-worker mode, so that an
// ExpressionPool in these tests starts this very binary as its workers (as `wf` does).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstring>

#include "engine/expression_pool.hpp"

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], wf::engine::kExpressionWorkerMode) == 0) {
    return wf::engine::RunExpressionWorker(argc, argv);
  }
  return Catch::Session().run(argc, argv);
}
