// Tamper evidence outside the database (engine/anchor.*): Ed25519 keys and signatures, anchor
// files written and read back, forged anchors, and history checked against an anchor.

#include "engine/anchor.hpp"

#include <functional>
#include <sstream>

#include <catch2/catch.hpp>

#include "tests/support/cases.hpp"

namespace wf::engine {
namespace {

constexpr const char* kAt = "2026-01-01T00:00:00.000000Z";

SigningKeys NewKeys() {
  Result<SigningKeys> keys = GenerateSigningKeys();
  REQUIRE(keys.has_value());
  return *keys;
}

// An anchor of `heads` signed with `private_pem`, as text.
std::string AnchorText(const std::string& private_pem, const std::vector<ChainHead>& heads) {
  std::ostringstream out;
  Result<std::int64_t> written =
      WriteAnchor(out, private_pem, kAt, "sqlite:/var/lib/wf/wf.db",
                  [&](const std::function<Status(const ChainHead&)>& emit) {
                    for (const ChainHead& h : heads) {
                      if (Status s = emit(h); !s.ok()) return s;
                    }
                    return Status::Ok();
                  });
  REQUIRE(written.has_value());
  CHECK(*written == static_cast<std::int64_t>(heads.size()));
  return out.str();
}

Result<Anchor> Read(const std::string& text, const std::string& public_pem) {
  std::istringstream in(text);
  return ReadAnchor(in, "anchor.jsonl", public_pem);
}

ChainHead HeadAt(const std::vector<HistoryEvent>& chain, size_t seq) {
  return {chain[seq - 1].case_id, chain[seq - 1].seq, chain[seq - 1].hash};
}

// The anchor of chains "a" (5 events, anchored at seq 3) and "b" (2 events, at seq 2).
struct AnchoredHistory {
  std::vector<HistoryEvent> a = testing::SealedChain("a", 5);
  std::vector<HistoryEvent> b = testing::SealedChain("b", 2);
  Anchor anchor;

  AnchoredHistory() {
    SigningKeys keys = NewKeys();
    Result<Anchor> read =
        Read(AnchorText(keys.private_pem, {HeadAt(a, 3), HeadAt(b, 2)}), keys.public_pem);
    REQUIRE(read.has_value());
    anchor = *read;
  }
};

// Feeds `events` and then Finish; the first break, if any.
std::optional<ChainBreak> Check(AnchorCheck& check, const std::vector<HistoryEvent>& events) {
  for (const HistoryEvent& e : events) {
    if (auto failure = check.Feed(e)) return failure;
  }
  return check.Finish();
}

std::vector<HistoryEvent> Joined(std::vector<HistoryEvent> a, const std::vector<HistoryEvent>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("a new key pair signs and only its public key verifies", "[engine][anchor][keys]") {
  SigningKeys keys = NewKeys();
  SigningKeys other = NewKeys();
  CHECK(keys.private_pem.find("BEGIN PRIVATE KEY") != std::string::npos);
  CHECK(keys.public_pem.find("BEGIN PUBLIC KEY") != std::string::npos);
  CHECK(keys.private_pem != other.private_pem);

  Result<std::string> fingerprint = KeyFingerprint(keys.public_pem);
  REQUIRE(fingerprint.has_value());
  CHECK(fingerprint->size() == 64);
  CHECK(KeyFingerprint(keys.private_pem).value() == *fingerprint);  // its public half
  CHECK(KeyFingerprint(other.public_pem).value() != *fingerprint);

  Result<std::string> signature = SignMessage(keys.private_pem, "wf-anchor/1 abc");
  REQUIRE(signature.has_value());
  CHECK(VerifyMessage(keys.public_pem, "wf-anchor/1 abc", *signature).value());
  CHECK_FALSE(VerifyMessage(keys.public_pem, "wf-anchor/1 abd", *signature).value());
  CHECK_FALSE(VerifyMessage(other.public_pem, "wf-anchor/1 abc", *signature).value());
  std::string flipped = *signature;
  flipped[0] = flipped[0] == 'A' ? 'B' : 'A';
  Result<bool> forged = VerifyMessage(keys.public_pem, "wf-anchor/1 abc", flipped);
  CHECK_FALSE((forged.has_value() && *forged));
}

TEST_CASE("keys that are not Ed25519 PEM are refused as invalid", "[engine][anchor][keys]") {
  SigningKeys keys = NewKeys();
  CHECK(KeyFingerprint("not a key").error().code() == ErrorCode::kInvalid);
  CHECK(SignMessage("not a key", "m").error().code() == ErrorCode::kInvalid);
  CHECK(SignMessage(keys.public_pem, "m").error().code() == ErrorCode::kInvalid);
  CHECK(VerifyMessage("not a key", "m", "c2ln").error().code() == ErrorCode::kInvalid);
  std::ostringstream out;
  auto none = [](const std::function<Status(const ChainHead&)>&) { return Status::Ok(); };
  CHECK(WriteAnchor(out, keys.public_pem, kAt, "sqlite:x", none).error().code() ==
        ErrorCode::kInvalid);
}

TEST_CASE("an anchor signs every chain head and reads back with its key",
          "[engine][anchor][file]") {
  SigningKeys keys = NewKeys();
  std::vector<ChainHead> heads = {{"a", 3, std::string(64, 'a')}, {"b", 1, std::string(64, 'b')}};
  Result<Anchor> anchor = Read(AnchorText(keys.private_pem, heads), keys.public_pem);
  INFO((anchor ? "" : anchor.error().message()));
  REQUIRE(anchor.has_value());
  CHECK(anchor->at == kAt);
  CHECK(anchor->database == "sqlite:/var/lib/wf/wf.db");
  CHECK(anchor->key == KeyFingerprint(keys.public_pem).value());
  REQUIRE(anchor->heads.size() == 2);
  CHECK(anchor->heads["a"].seq == 3);
  CHECK(anchor->heads["a"].hash == std::string(64, 'a'));
  CHECK(anchor->heads["b"].seq == 1);

  // No chains at all is still a signed anchor.
  Result<Anchor> empty = Read(AnchorText(keys.private_pem, {}), keys.public_pem);
  REQUIRE(empty.has_value());
  CHECK(empty->heads.empty());
}

TEST_CASE("a walk that fails stops the anchor with its status", "[engine][anchor][file]") {
  SigningKeys keys = NewKeys();
  std::ostringstream out;
  Result<std::int64_t> written =
      WriteAnchor(out, keys.private_pem, kAt, "sqlite:x",
                  [](const std::function<Status(const ChainHead&)>& emit) {
                    if (Status s = emit({"a", 1, std::string(64, 'a')}); !s.ok()) return s;
                    return Status::Unavailable("the database went away");
                  });
  REQUIRE_FALSE(written.has_value());
  CHECK(written.error().code() == ErrorCode::kUnavailable);
}

TEST_CASE("a forged anchor is refused", "[engine][anchor][forgery]") {
  SigningKeys keys = NewKeys();
  const std::string text = AnchorText(
      keys.private_pem, {{"a", 3, std::string(64, 'a')}, {"b", 1, std::string(64, 'b')}});
  REQUIRE(Read(text, keys.public_pem).has_value());
  std::string forged = text;
  SECTION("a head moved back") { forged[forged.find("\"seq\":3") + 6] = '2'; }
  SECTION("a head's hash changed") { forged[forged.find(std::string(64, 'b'))] = 'c'; }
  SECTION("a chain left out") {
    size_t line = forged.find("{\"case\":\"b\"");
    REQUIRE(line != std::string::npos);
    forged.erase(line, forged.find('\n', line) + 1 - line);
  }
  SECTION("the signature replaced by another key's") {
    const std::string resigned = AnchorText(
        NewKeys().private_pem, {{"a", 3, std::string(64, 'a')}, {"b", 1, std::string(64, 'b')}});
    // Same heads, so the same body: only the trailer (signature, key) differs.
    auto trailer = [](const std::string& t) { return t.rfind('\n', t.size() - 2) + 1; };
    REQUIRE(text.substr(0, trailer(text)) == resigned.substr(0, trailer(resigned)));
    forged = text.substr(0, trailer(text)) + resigned.substr(trailer(resigned));
  }
  Result<Anchor> read = Read(forged, keys.public_pem);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().code() == ErrorCode::kHistoryBroken);
}

TEST_CASE("an anchor read with another key is refused", "[engine][anchor][forgery]") {
  SigningKeys keys = NewKeys();
  const std::string text = AnchorText(keys.private_pem, {{"a", 3, std::string(64, 'a')}});
  Result<Anchor> read = Read(text, NewKeys().public_pem);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().code() == ErrorCode::kHistoryBroken);
  CHECK(Read("hello\nworld\n", keys.public_pem).error().code() == ErrorCode::kInvalid);
  CHECK(Read(text, "not a key").error().code() == ErrorCode::kInvalid);
}

TEST_CASE("history that only grew since the anchor holds", "[engine][anchor][check]") {
  AnchoredHistory h;
  AnchorCheck check(h.anchor);
  CHECK_FALSE(Check(check, Joined(h.a, h.b)).has_value());
  CHECK(check.checked() == 2);
}

TEST_CASE("history rewritten up to an anchored event is caught", "[engine][anchor][check]") {
  AnchoredHistory h;
  // A consistent rewrite: event 2 changed, every later hash recomputed; the chain verifies.
  h.a[1].actor = "mallory";
  for (size_t i = 1; i < h.a.size(); ++i) SealEvent(h.a[i], &h.a[i - 1]);
  REQUIRE_FALSE(VerifyChain(h.a).has_value());
  AnchorCheck check(h.anchor);
  std::optional<ChainBreak> failure = Check(check, Joined(h.a, h.b));
  REQUIRE(failure.has_value());
  CHECK(failure->case_id == "a");
  CHECK(failure->seq == 3);
}

TEST_CASE("history that shrank below an anchored event is caught", "[engine][anchor][check]") {
  AnchoredHistory h;
  h.a.resize(2);  // events 3 to 5 deleted
  AnchorCheck check(h.anchor);
  std::optional<ChainBreak> failure = Check(check, Joined(h.a, h.b));
  REQUIRE(failure.has_value());
  CHECK(failure->case_id == "a");
  CHECK(failure->seq == 3);
  CHECK_THAT(failure->reason, Catch::Contains("missing"));
}

TEST_CASE("a case whose history is gone is caught unless another case is checked",
          "[engine][anchor][check]") {
  AnchoredHistory h;
  AnchorCheck all(h.anchor);
  std::optional<ChainBreak> failure = Check(all, h.b);
  REQUIRE(failure.has_value());
  CHECK(failure->case_id == "a");
  AnchorCheck only_b(h.anchor, "b");
  CHECK_FALSE(Check(only_b, h.b).has_value());
  CHECK(only_b.checked() == 1);
}

TEST_CASE("an archived chain holds when its kept head is the anchored one or newer",
          "[engine][anchor][check]") {
  AnchoredHistory h;
  {
    AnchorCheck check(h.anchor);
    CHECK_FALSE(check.FeedArchived(HeadAt(h.a, 5)).has_value());  // archived after growing
    CHECK_FALSE(check.FeedArchived(HeadAt(h.b, 2)).has_value());  // archived as anchored
    CHECK_FALSE(check.Finish().has_value());
  }
  AnchorCheck older(h.anchor);
  std::optional<ChainBreak> shrank = older.FeedArchived(HeadAt(h.a, 2));
  REQUIRE(shrank.has_value());
  CHECK(shrank->case_id == "a");
  CHECK(shrank->seq == 3);
  AnchorCheck other(h.anchor);
  ChainHead rewritten = HeadAt(h.b, 2);
  rewritten.hash = std::string(64, 'f');
  CHECK(other.FeedArchived(rewritten).has_value());
}

}  // namespace wf::engine
