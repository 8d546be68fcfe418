// The expression pool: worker processes bounded in time and memory, replaced when they die.
#include "engine/expression_pool.hpp"

#include <signal.h>
#include <stdlib.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <fstream>
#include <future>
#include <iterator>
#include <string>
#include <thread>

namespace wf::engine {
namespace {

using nlohmann::json;

workflows::Expression Compile(const std::string& program) {
  workflows::ExpressionError error;
  auto expression = workflows::Expression::Compile(program, &error);
  INFO(program << ": " << error.message);
  REQUIRE(expression.has_value());
  return *expression;
}

// The pool's busy workers, polled until there is one or `limit` has passed (then none).
std::vector<pid_t> BusyWorkersWithin(ExpressionPool& pool, std::chrono::seconds limit) {
  std::vector<pid_t> busy;
  const auto give_up = std::chrono::steady_clock::now() + limit;
  while ((busy = pool.BusyWorkers()).empty() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return busy;
}

}  // namespace

TEST_CASE("a bounded expression runs in the caller's thread and others in a worker",
          "[engine][expressions]") {
  ExpressionPool pool;
  auto bounded = pool.Evaluate(Compile(".a + 1"), {{"a", 41}});
  REQUIRE(bounded.has_value());
  CHECK(*bounded == 42);
  CHECK(pool.started() == 0);
  auto piped =
      pool.Evaluate(Compile("[.items[] | .n * 2] | add"), {{"items", {{{"n", 1}}, {{"n", 2}}}}});
  REQUIRE(piped.has_value());
  CHECK(*piped == 6);
  CHECK(pool.started() == 1);
  // The worker answers exactly as the in-process evaluation does, errors included.
  for (const char* program : {"[.s | explode[] | . + 1] | implode", ".s | test(\"b+\")",
                              "[range(.n)] | map(. * .)", ".s | tonumber", "{} | .a.b.c"}) {
    json input = {{"s", "abc"}, {"n", 4}};
    auto here = Compile(program).Evaluate(input);
    auto there = pool.Evaluate(Compile(program), input);
    INFO(program);
    REQUIRE(here.has_value() == there.has_value());
    if (here) {
      CHECK(*here == *there);
    } else {
      CHECK(here.error().code() == there.error().code());
      CHECK(here.error().message() == there.error().message());
    }
  }
}

TEST_CASE("an expression that runs past its time limit is stopped and named",
          "[engine][expressions]") {
  ExpressionPoolOptions options;
  options.time_limit = std::chrono::milliseconds(500);
  ExpressionPool pool(options);
  auto runaway = pool.Evaluate(Compile("last(range(.n))"), {{"n", 1e15}});
  REQUIRE_FALSE(runaway.has_value());
  CHECK(runaway.error().code() == ErrorCode::kInvalid);
  CHECK_THAT(runaway.error().message(), Catch::Contains("ran past 500 ms"));
  // The next request gets a fresh worker.
  auto next = pool.Evaluate(Compile("[.a] | length"), {{"a", 1}});
  REQUIRE(next.has_value());
  CHECK(*next == 1);
  CHECK(pool.started() == 2);
}

TEST_CASE("an expression that takes more memory than its bound is stopped and named",
          "[engine][expressions]") {
  ExpressionPoolOptions options;
  options.memory_bytes = size_t{64} << 20;
  ExpressionPool pool(options);
  for (const char* program : {".s * .k", "[range(.k)] | length"}) {
    INFO(program);
    auto bomb = pool.Evaluate(Compile(program), {{"s", "x"}, {"k", 1e9}});
    REQUIRE_FALSE(bomb.has_value());
    CHECK(bomb.error().code() == ErrorCode::kInvalid);
    // [range(1e9)] may run out of time before it runs out of memory.
    const std::string& message = bomb.error().message();
    CHECK((message.find("used more than 64 MB") != std::string::npos ||
           message.find("ran past") != std::string::npos));
    auto next = pool.Evaluate(Compile("[.s] | length"), {{"s", "x"}});
    REQUIRE(next.has_value());
    CHECK(*next == 1);
  }
}

TEST_CASE("a worker killed in the middle of an evaluation is replaced and the pool answers on",
          "[engine][expressions]") {
  ExpressionPoolOptions options;
  options.time_limit = std::chrono::seconds(5);
  options.workers = 1;
  ExpressionPool pool(options);
  auto slow = std::async(std::launch::async, [&pool] {
    return pool.Evaluate(Compile("last(range(.n))"), {{"n", 1e15}});
  });
  // Wait (without a fixed sleep) until the worker is busy with it, then kill it.
  std::vector<pid_t> busy = BusyWorkersWithin(pool, std::chrono::seconds(60));
  REQUIRE(busy.size() == 1);
  REQUIRE(kill(busy[0], SIGKILL) == 0);
  // Sent once more to a fresh worker, where it runs out of time.
  auto answer = slow.get();
  REQUIRE_FALSE(answer.has_value());
  CHECK_THAT(answer.error().message(), Catch::Contains("ran past 5 s"));
  auto next = pool.Evaluate(Compile("[.a] | length"), {{"a", 1}});
  REQUIRE(next.has_value());
  CHECK(*next == 1);
  CHECK(pool.started() == 3);
}

TEST_CASE("a pool whose workers cannot start says so as kUnavailable", "[engine][expressions]") {
  ExpressionPoolOptions options;
  options.worker_command = {"/nonexistent/wf", kExpressionWorkerMode};
  ExpressionPool pool(options);
  auto answer = pool.Evaluate(Compile("[.a] | length"), {{"a", 1}});
  REQUIRE_FALSE(answer.has_value());
  CHECK(answer.error().code() == ErrorCode::kUnavailable);
}

TEST_CASE("a worker starts with no environment, so no engine secret reaches it",
          "[engine][expressions]") {
  REQUIRE(setenv("WF_TEST_DATABASE_PASSWORD", "hunter2", 1) == 0);
  ExpressionPoolOptions options;
  options.time_limit = std::chrono::seconds(1);
  options.workers = 1;
  ExpressionPool pool(options);
  auto slow = std::async(std::launch::async, [&pool] {
    return pool.Evaluate(Compile("last(range(.n))"), {{"n", 1e15}});
  });
  std::vector<pid_t> busy = BusyWorkersWithin(pool, std::chrono::seconds(60));
  REQUIRE(busy.size() == 1);
  std::ifstream environment("/proc/" + std::to_string(busy[0]) + "/environ", std::ios::binary);
  REQUIRE(environment.good());
  std::string text((std::istreambuf_iterator<char>(environment)), std::istreambuf_iterator<char>());
  CHECK(text.empty());
  CHECK(text.find("hunter2") == std::string::npos);
  REQUIRE_FALSE(slow.get().has_value());  // ran past its second
  unsetenv("WF_TEST_DATABASE_PASSWORD");
}

}  // namespace wf::engine
