#include "engine/state_text.hpp"

#include <catch2/catch.hpp>
#include <limits>
#include <random>
#include <string>

#include "engine/personal.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {
namespace {

std::string RandomText(std::mt19937& random) {
  static const std::vector<std::string> kPieces = {
      "",   "a",     "step_2", "Nguyễn Văn An", "079203001234", "quote \"", "back\\slash",
      "\n", "\x01", "\x7f",   "😀",             " ",            "wf:sealed:"};
  std::uniform_int_distribution<std::size_t> pick(0, kPieces.size() - 1);
  std::string text;
  for (int n = std::uniform_int_distribution<int>(0, 3)(random); n > 0; --n) {
    text += kPieces[pick(random)];
  }
  return text;
}

std::int64_t RandomInt(std::mt19937& random) {
  switch (std::uniform_int_distribution<int>(0, 3)(random)) {
    case 0: return 0;
    case 1: return std::numeric_limits<std::int64_t>::min();
    case 2: return std::numeric_limits<std::int64_t>::max();
    default: return std::uniform_int_distribution<std::int64_t>(-5000, 5000)(random);
  }
}

CaseState RandomState(std::mt19937& random) {
  auto coin = [&] { return std::uniform_int_distribution<int>(0, 1)(random) == 1; };
  CaseState state;
  state.status = coin() ? kStatusOpen : RandomText(random);
  state.reason = RandomText(random);
  state.data = {{"never", "written"}};  // format 2: the data is not part of the text
  state.next_activation = RandomInt(random);
  state.clock_paused = coin();
  state.paused_since = RandomInt(random);
  state.paused_seconds = RandomInt(random);
  for (int n = std::uniform_int_distribution<int>(0, 3)(random); n > 0; --n) {
    Token t;
    t.id = RandomInt(random);
    t.step = RandomText(random);
    t.activation = RandomInt(random);
    t.waiting = static_cast<Waiting>(
        std::uniform_int_distribution<int>(0, static_cast<int>(Waiting::kIncident))(random));
    t.attempt = static_cast<int>(std::uniform_int_distribution<int>(-2, 9)(random));
    t.join = RandomInt(random);
    t.signal = RandomText(random);
    t.incident = RandomText(random);
    t.incident_after_success = coin();
    t.escalated = coin();
    state.tokens.push_back(t);
  }
  for (int n = std::uniform_int_distribution<int>(0, 2)(random); n > 0; --n) {
    Join join;
    join.activation = RandomInt(random);
    join.step = RandomText(random);
    for (int k = std::uniform_int_distribution<int>(0, 3)(random); k > 0; --k) {
      join.pending.push_back(RandomInt(random));
    }
    state.joins[join.activation] = join;
  }
  return state;
}

}  // namespace

TEST_CASE("StateText writes what DumpJson of the state's JSON writes", "[engine][state]") {
  CHECK(StateText(CaseState()) == workflows::DumpJson(CaseState().ToJson(false)));
  std::mt19937 random(20261207);
  for (int i = 0; i < 500; ++i) {
    const CaseState state = RandomState(random);
    const std::string text = StateText(state);
    REQUIRE(text == workflows::DumpJson(state.ToJson(false)));
  }
}

TEST_CASE("StateText seals the reason and incidents as the sealer seals them in the DOM",
          "[engine][state][personal]") {
  const DataKey key = NewDataKey();
  std::mt19937 random(7);
  for (int i = 0; i < 200; ++i) {
    CaseState state = RandomState(random);
    state.reason = "refused: 079203001234 is not registered";
    if (!state.tokens.empty()) state.tokens.front().incident = "Nguyễn Văn An";
    CaseSealer sealer("c-1", key, {"079203001234", "Nguyễn Văn An"});
    const std::string text =
        StateText(state, [&](const std::string& t) { return sealer.SealText(t); });
    nlohmann::json expected = state.ToJson(false);
    sealer.SealInPlace(expected["reason"]);
    for (auto& token : expected["tokens"]) sealer.SealInPlace(token["incident"]);
    CHECK(text == workflows::DumpJson(expected));
    // (the random step names and signals may hold the same words: they are never personal)
    CHECK(text.find("refused: 079203001234") == std::string::npos);
    CHECK(text.find(R"("incident":"Nguyễn Văn An")") == std::string::npos);
  }
}

}  // namespace wf::engine
