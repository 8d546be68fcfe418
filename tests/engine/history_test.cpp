#include "engine/history.hpp"

#include <functional>
#include <sstream>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/anchor.hpp"
#include "workflows/hash.hpp"

namespace wf::engine {
namespace {

std::vector<HistoryEvent> Chain(const std::string& case_id, int length) {
  std::vector<HistoryEvent> events;
  for (int i = 0; i < length; ++i) {
    HistoryEvent e;
    e.case_id = case_id;
    e.at = "2026-01-01T00:00:0" + std::to_string(i) + ".000000Z";
    e.actor = i == 0 ? "an.nguyen" : "engine";
    e.action = i == 0 ? "started" : "step_completed";
    e.step = "step" + std::to_string(i);
    e.details = R"({"b":1,"a":[)" + std::to_string(i) + "]}";
    SealEvent(e, events.empty() ? nullptr : &events.back());
    events.push_back(e);
  }
  return events;
}

}  // namespace

TEST_CASE("timestamps format as fixed-width RFC 3339 in UTC", "[engine][history]") {
  CHECK(FormatRfc3339(FromMicros(0)) == "1970-01-01T00:00:00.000000Z");
  CHECK(FormatRfc3339(FromMicros(1'767'225'600'000'123)) == "2026-01-01T00:00:00.000123Z");
  CHECK(FormatRfc3339(FromMicros(951'782'400'500'000)) == "2000-02-29T00:00:00.500000Z");
}

TEST_CASE("the canonical event has sorted keys and re-serialised details",
          "[engine][history]") {
  HistoryEvent e;
  e.case_id = "c1";
  e.seq = 2;
  e.at = "2026-01-01T00:00:00.000000Z";
  e.actor = "an";
  e.action = "started";
  e.step = "s";
  e.details = R"({ "z": 1, "a": "x" })";
  e.prev_hash = std::string(kGenesisHash);
  CHECK(CanonicalEvent(e) ==
        R"({"action":"started","actor":"an","at":"2026-01-01T00:00:00.000000Z","case":"c1",)"
        R"("details":{"a":"x","z":1},"prev_hash":")" + std::string(kGenesisHash) +
            R"(","seq":2,"step":"s"})");
  CHECK(ComputeEventHash(e) == Sha256Hex(std::string(kGenesisHash) + CanonicalEvent(e)));
}

TEST_CASE("a sealed chain links each event to the one before", "[engine][history]") {
  std::vector<HistoryEvent> events = Chain("c1", 4);
  CHECK(events[0].seq == 1);
  CHECK(events[0].prev_hash == kGenesisHash);
  CHECK(events[3].seq == 4);
  CHECK(events[3].prev_hash == events[2].hash);
  CHECK(events[1].hash.size() == 64);
  CHECK(events[1].hash != events[2].hash);
  CHECK_FALSE(VerifyChain(events).has_value());

  ChainVerifier verifier;
  std::vector<HistoryEvent> two = Chain("c2", 2);
  for (const auto& e : events) CHECK_FALSE(verifier.Feed(e).has_value());
  for (const auto& e : two) CHECK_FALSE(verifier.Feed(e).has_value());
  CHECK(verifier.cases() == 2);
  CHECK(verifier.events() == 6);
}

TEST_CASE("a changed field is a hash mismatch at that event", "[engine][history]") {
  std::vector<HistoryEvent> events = Chain("c1", 4);
  SECTION("actor") { events[2].actor = "mallory"; }
  SECTION("details") { events[2].details = R"({"b":1,"a":[99]})"; }
  SECTION("time") { events[2].at = "2026-01-01T00:00:09.000000Z"; }
  SECTION("details that are no longer JSON") { events[2].details = "{broken"; }
  std::optional<ChainBreak> failure = VerifyChain(events);
  REQUIRE(failure.has_value());
  CHECK(failure->case_id == "c1");
  CHECK(failure->seq == 3);
  CHECK(failure->reason == "hash mismatch");
  CHECK(failure->Describe() == "case c1: event seq 3 does not verify (hash mismatch)");
}

TEST_CASE("whitespace in stored details does not change the hash", "[engine][history]") {
  std::vector<HistoryEvent> events = Chain("c1", 2);
  events[1].details = R"({ "a" : [1],   "b" : 1 })";
  CHECK_FALSE(VerifyChain(events).has_value());
}

TEST_CASE("a rehashed event breaks the link to the next one", "[engine][history]") {
  std::vector<HistoryEvent> events = Chain("c1", 4);
  events[1].actor = "mallory";
  events[1].hash = ComputeEventHash(events[1]);  // the forger recomputes this event's hash
  std::optional<ChainBreak> failure = VerifyChain(events);
  REQUIRE(failure.has_value());
  CHECK(failure->seq == 3);
  CHECK(failure->reason == "broken link");
}

TEST_CASE("a removed event is a gap in seq", "[engine][history]") {
  std::vector<HistoryEvent> events = Chain("c1", 4);
  SECTION("in the middle") {
    events.erase(events.begin() + 1);
    std::optional<ChainBreak> failure = VerifyChain(events);
    REQUIRE(failure.has_value());
    CHECK(failure->seq == 2);
    CHECK(failure->reason == "gap in seq (found 3)");
  }
  SECTION("the first") {
    events.erase(events.begin());
    std::optional<ChainBreak> failure = VerifyChain(events);
    REQUIRE(failure.has_value());
    CHECK(failure->seq == 1);
    CHECK(failure->reason == "gap in seq (found 2)");
  }
}

TEST_CASE("the verifier reports one break per case and carries on", "[engine][history]") {
  std::vector<HistoryEvent> a = Chain("a", 3);
  std::vector<HistoryEvent> b = Chain("b", 3);
  a[0].step = "forged";
  b[2].actor = "mallory";
  ChainVerifier verifier;
  std::vector<ChainBreak> breaks;
  for (const auto& e : a) if (auto f = verifier.Feed(e)) breaks.push_back(*f);
  for (const auto& e : b) if (auto f = verifier.Feed(e)) breaks.push_back(*f);
  REQUIRE(breaks.size() == 2);
  CHECK(breaks[0].case_id == "a");
  CHECK(breaks[0].seq == 1);
  CHECK(breaks[1].case_id == "b");
  CHECK(breaks[1].seq == 3);
}

}  // namespace wf::engine

namespace wf::engine {
namespace {

TEST_CASE("an anchor signs chain heads and any change to it or its key is refused",
          "[engine][history][anchor]") {
  Result<SigningKeys> keys = GenerateSigningKeys();
  REQUIRE(keys.has_value());
  CHECK(keys->private_pem.find("BEGIN PRIVATE KEY") != std::string::npos);
  CHECK(keys->public_pem.find("BEGIN PUBLIC KEY") != std::string::npos);
  std::vector<ChainHead> heads = {{"a", 3, std::string(64, 'a')}, {"b", 1, std::string(64, 'b')}};
  std::ostringstream out;
  Result<std::int64_t> written =
      WriteAnchor(out, keys->private_pem, "2026-01-01T00:00:00.000000Z", "sqlite:x",
                  [&](const std::function<Status(const ChainHead&)>& emit) {
                    for (const ChainHead& h : heads) {
                      if (Status s = emit(h); !s.ok()) return s;
                    }
                    return Status::Ok();
                  });
  REQUIRE(written.has_value());
  CHECK(*written == 2);
  std::istringstream in(out.str());
  Result<Anchor> anchor = ReadAnchor(in, "a.jsonl", keys->public_pem);
  REQUIRE(anchor.has_value());
  CHECK(anchor->heads.size() == 2);
  CHECK(anchor->heads["a"].seq == 3);

  // History that grew past the anchor holds; a different event at the anchored seq does not.
  AnchorCheck check(*anchor);
  HistoryEvent e;
  e.case_id = "a";
  e.seq = 3;
  e.hash = std::string(64, 'a');
  CHECK_FALSE(check.Feed(e).has_value());
  e.seq = 4;
  CHECK_FALSE(check.Feed(e).has_value());
  CHECK(check.FeedArchived({"b", 2, "zz"}) == std::nullopt);  // archived later: grew
  CHECK_FALSE(check.Finish().has_value());
  AnchorCheck rewritten(*anchor);
  e.seq = 3;
  e.hash = std::string(64, 'c');
  std::optional<ChainBreak> failure = rewritten.Feed(e);
  REQUIRE(failure.has_value());
  CHECK(failure->seq == 3);
  std::optional<ChainBreak> missing = rewritten.Finish();
  REQUIRE(missing.has_value());
  CHECK(missing->case_id == "b");

  std::string text = out.str();
  std::string forged = text;
  forged[forged.find("\"seq\":3") + 6] = '4';
  std::istringstream forged_in(forged);
  CHECK(ReadAnchor(forged_in, "f", keys->public_pem).error().code() == ErrorCode::kHistoryBroken);
  Result<SigningKeys> other = GenerateSigningKeys();
  REQUIRE(other.has_value());
  std::istringstream other_in(text);
  CHECK(ReadAnchor(other_in, "a", other->public_pem).error().code() == ErrorCode::kHistoryBroken);
  std::istringstream junk("hello\nworld\n");
  CHECK(ReadAnchor(junk, "j", keys->public_pem).error().code() == ErrorCode::kInvalid);
  std::istringstream bad_key(text);
  CHECK(ReadAnchor(bad_key, "a", "not a key").error().code() == ErrorCode::kInvalid);
}

}  // namespace
}  // namespace wf::engine
