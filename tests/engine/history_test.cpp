#include "engine/history.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "tests/support/cases.hpp"
#include "workflows/hash.hpp"

namespace wf::engine {
TEST_CASE("timestamps format as fixed-width RFC 3339 in UTC", "[engine][history]") {
  CHECK(FormatRfc3339(FromMicros(0)) == "1970-01-01T00:00:00.000000Z");
  CHECK(FormatRfc3339(FromMicros(1'767'225'600'000'123)) == "2026-01-01T00:00:00.000123Z");
  CHECK(FormatRfc3339(FromMicros(951'782'400'500'000)) == "2000-02-29T00:00:00.500000Z");
  CHECK(FormatRfc3339(FromMicros(1'796'601'598'999'999)) == "2026-12-06T23:59:58.999999Z");
  CHECK(FormatRfc3339(FromMicros(-1)) == "1969-12-31T23:59:59.999999Z");
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

TEST_CASE("the canonical event is what nlohmann::json writes, whatever the fields hold",
          "[engine][history]") {
  // The chain's text is written member by member; it must stay byte for byte the compact dump of
  // the sorted object, or every stored chain stops verifying.
  HistoryEvent e;
  e.case_id = "ca-\"quoted\"\\";
  e.seq = 9'007'199'254'740'993;
  e.at = "2026-01-01T00:00:00.000000Z";
  e.actor = "Nguyễn Văn An\t\x01\x7f";
  e.action = "bad \xff\xfe utf-8";
  e.step = "";
  e.details = R"({"b":[1,2.5,"\u0000"],"a":{"y":null,"x":true}})";
  e.prev_hash = "ab";
  nlohmann::json object = {{"action", e.action},        {"actor", e.actor},
                           {"at", e.at},                {"case", e.case_id},
                           {"details", nlohmann::json::parse(e.details)},
                           {"prev_hash", e.prev_hash},  {"seq", e.seq},
                           {"step", e.step}};
  std::string expected =
      object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  CHECK(CanonicalEvent(e) == expected);

  SECTION("details already canonical are hashed as written") {
    e.details = nlohmann::json::parse(e.details).dump();
    HistoryEvent reparsed = e;
    HistoryEvent previous;
    previous.seq = 4;
    previous.hash = std::string(kGenesisHash);
    SealEvent(reparsed, &previous);
    SealCanonicalEvent(e, &previous);
    CHECK(e.seq == 5);
    CHECK(e.hash == reparsed.hash);
    CHECK(e.hash == Sha256Hex(e.prev_hash + CanonicalEvent(e)));
  }
}

TEST_CASE("a sealed chain links each event to the one before", "[engine][history]") {
  std::vector<HistoryEvent> events = testing::SealedChain("c1", 4);
  CHECK(events[0].seq == 1);
  CHECK(events[0].prev_hash == kGenesisHash);
  CHECK(events[3].seq == 4);
  CHECK(events[3].prev_hash == events[2].hash);
  CHECK(events[1].hash.size() == 64);
  CHECK(events[1].hash != events[2].hash);
  CHECK_FALSE(VerifyChain(events).has_value());

  ChainVerifier verifier;
  std::vector<HistoryEvent> two = testing::SealedChain("c2", 2);
  for (const auto& e : events) CHECK_FALSE(verifier.Feed(e).has_value());
  for (const auto& e : two) CHECK_FALSE(verifier.Feed(e).has_value());
  CHECK(verifier.cases() == 2);
  CHECK(verifier.events() == 6);
}

TEST_CASE("a changed field is a hash mismatch at that event", "[engine][history]") {
  std::vector<HistoryEvent> events = testing::SealedChain("c1", 4);
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
  std::vector<HistoryEvent> events = testing::SealedChain("c1", 2);
  events[1].details = R"({ "a" : [1],   "b" : 1 })";
  CHECK_FALSE(VerifyChain(events).has_value());
}

TEST_CASE("a rehashed event breaks the link to the next one", "[engine][history]") {
  std::vector<HistoryEvent> events = testing::SealedChain("c1", 4);
  events[1].actor = "mallory";
  events[1].hash = ComputeEventHash(events[1]);  // the forger recomputes this event's hash
  std::optional<ChainBreak> failure = VerifyChain(events);
  REQUIRE(failure.has_value());
  CHECK(failure->seq == 3);
  CHECK(failure->reason == "broken link");
}

TEST_CASE("a removed event is a gap in seq", "[engine][history]") {
  std::vector<HistoryEvent> events = testing::SealedChain("c1", 4);
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
  std::vector<HistoryEvent> a = testing::SealedChain("a", 3);
  std::vector<HistoryEvent> b = testing::SealedChain("b", 3);
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
