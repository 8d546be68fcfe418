// Personal data at rest (engine/personal.hpp): sealing and opening values, what the sealer finds
// in text, and how the store hands out case keys: a key made by a transaction that rolls back
// must never seal anything, and readers ask the database every time.
#include "engine/personal.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "engine/store.hpp"
#include "tests/support/cases.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/support/test_database.hpp"

namespace wf::engine {
namespace {

using nlohmann::json;

DataKey KeyOf(unsigned char fill) {
  DataKey key;
  key.fill(fill);
  return key;
}

TEST_CASE("a sealed value opens only under its key and for its case", "[personal]") {
  const DataKey key = KeyOf(1);
  const std::string sealed = SealValue("c-1", key, json("079123456789"));
  CHECK(IsSealed(sealed));
  CHECK(SealedCase(sealed) == "c-1");
  CHECK(sealed.find("079123456789") == std::string::npos);
  auto opened = OpenSealed(sealed, key);
  REQUIRE(opened);
  CHECK(*opened == json("079123456789"));
  CHECK_FALSE(OpenSealed(sealed, KeyOf(2)));
  // Moved to another case (the case id is the associated data): it does not open.
  std::string moved = sealed;
  moved.replace(kSealedPrefix.size(), 3, "c-2");
  CHECK_FALSE(OpenSealed(moved, key));
  // Tampered ciphertext does not open either.
  std::string tampered = sealed;
  tampered[tampered.size() - 3] = tampered[tampered.size() - 3] == 'A' ? 'B' : 'A';
  CHECK_FALSE(OpenSealed(tampered, key));
}

TEST_CASE("the sealer seals personal values, and text that holds a long one", "[personal]") {
  CaseSealer sealer("c-1", KeyOf(1), {"079123456789", "M", "42"});
  json sealed = sealer.Seal(json{{"id", "079123456789"},
                                 {"note", "citizen 079123456789 called"},
                                 {"sex", "M"},
                                 {"word", "Mai"},
                                 {"age", 42},
                                 {"other", 43}});
  CHECK(IsSealed(sealed["id"].get<std::string>()));
  CHECK(IsSealed(sealed["note"].get<std::string>()));
  CHECK(IsSealed(sealed["sex"].get<std::string>()));
  CHECK(sealed["word"] == "Mai");  // a short value is found only as a whole value
  CHECK(IsSealed(sealed["age"].get<std::string>()));
  CHECK(sealed["other"] == 43);
  // The same value in the same case keeps its ciphertext (no rewrite of unchanged values).
  CHECK(sealer.Seal(json("079123456789")) == sealed["id"]);

  // JSON text that cannot hold a value is given back as it is, without a parse.
  CHECK_FALSE(sealer.MayHold(R"({"approved": true})"));
  CHECK(sealer.SealJsonText(R"({"approved": true})") == R"({"approved": true})");
  CHECK(sealer.MayHold(R"({"id": "079123456789"})"));
  CHECK(sealer.SealJsonText(R"({"id": "079123456789"})").find("079123456789") == std::string::npos);
  // A value JSON writes escaped is always looked for in the parsed text.
  CaseSealer quoted("c-1", KeyOf(1), {"Nguyễn \"Bé\" An"});
  CHECK(quoted.MayHold(R"({"approved": true})"));
  CHECK(quoted.SealJsonText(R"({"n": "Nguyễn \"Bé\" An"})").find("Bé") == std::string::npos);

  CaseSealer inactive;
  CHECK(inactive.Seal(json("079123456789")) == json("079123456789"));
}

TEST_CASE("a revealer opens what it has keys for, [erased] and [sealed] otherwise", "[personal]") {
  const std::string kept = SealValue("c-1", KeyOf(1), json("kept value"));
  const std::string gone = SealValue("c-2", KeyOf(2), json("gone value"));
  const std::string locked = SealValue("c-3", KeyOf(3), json("locked value"));
  Revealer revealer([](const std::string& case_id) -> Result<std::optional<DataKey>> {
    if (case_id == "c-1") return std::optional<DataKey>(KeyOf(1));
    if (case_id == "c-2") return std::optional<DataKey>();  // erased
    return Status::NotPermitted("no right to it");
  });
  json opened = revealer.Reveal(json{{"a", kept}, {"b", gone}, {"c", {locked, "plain"}}});
  CHECK(opened["a"] == "kept value");
  CHECK(opened["b"] == kErasedValue);
  CHECK(opened["c"][0] == kSealedValue);
  CHECK(opened["c"][1] == "plain");
}

TEST_CASE("a number is sealed only when its text is a personal value", "[personal]") {
  // "0792..." is no number's text: the numbers beside it stay as they are.
  CaseSealer ids("c-1", KeyOf(1), {"079123456789"});
  json sealed = ids.Seal(json{{"id", "079123456789"}, {"n", 79123456789}, {"zero", 0}});
  CHECK(IsSealed(sealed["id"].get<std::string>()));
  CHECK(sealed["n"] == 79123456789);
  CHECK(sealed["zero"] == 0);
  // Numbers in every JSON form that are personal values are sealed, others not.
  CaseSealer numbers("c-1", KeyOf(1), {"-7", "0", "2.5", "1e+20"});
  json more = numbers.Seal(json{{"a", -7}, {"b", 0}, {"c", 2.5}, {"d", 1e20}, {"e", 7}, {"f", 2}});
  CHECK(IsSealed(more["a"].get<std::string>()));
  CHECK(IsSealed(more["b"].get<std::string>()));
  CHECK(IsSealed(more["c"].get<std::string>()));
  CHECK(more["e"] == 7);
  CHECK(more["f"] == 2);
  CHECK(json(1e20).dump() == "1e+20");
  CHECK(IsSealed(more["d"].get<std::string>()));
}

TEST_CASE("the boxes a case's load opened are sealed again as they were", "[personal]") {
  const DataKey key = KeyOf(1);
  const std::string id_box = SealValue("c-1", key, json("079123456789"));
  const std::string other_case = SealValue("c-2", key, json("079999999999"));
  Revealer revealer([&](const std::string&) -> Result<std::optional<DataKey>> {
    return std::optional<DataKey>(key);
  });
  OpenedBoxes opened;
  revealer.MemoOpened("c-1", &opened);
  json data = {{"id", id_box}, {"again", id_box}, {"child", other_case}};
  revealer.RevealInPlace(data);
  CHECK(data["id"] == "079123456789");
  CHECK(data["child"] == "079999999999");
  // Only the case's own boxes are kept (another case's box is never written as this case's).
  REQUIRE(opened.size() == 2);
  CHECK(opened[0].box == id_box);
  CHECK(opened[0].value == json("079123456789"));

  // A box the process-wide cache never saw: a fake one is enough to tell which was used.
  OpenedBoxes fake{OpenedBox{json("079123456789"), "wf:sealed:c-1:memo"}};
  CaseSealer sealer("c-1", key, {"079123456789", "Nguyễn Văn An"}, std::move(fake));
  json sealed = sealer.Seal(json{{"id", "079123456789"}, {"name", "Nguyễn Văn An"}});
  CHECK(sealed["id"] == "wf:sealed:c-1:memo");
  REQUIRE(IsSealed(sealed["name"].get<std::string>()));
  CHECK(OpenSealed(sealed["name"].get<std::string>(), key) == json("Nguyễn Văn An"));
  // Sealed in place with what it replaced: every sealed scalar and its value before.
  CaseSealer plain("c-1", key, {"079123456789"});
  json in_place = {{"id", "079123456789"}, {"list", {"x", "079123456789"}}, {"n", 1}};
  std::vector<std::pair<json*, json>> replaced;
  plain.SealInPlace(in_place, &replaced);
  REQUIRE(replaced.size() == 2);
  for (auto& [at, before] : replaced) {
    CHECK(IsSealed(at->get<std::string>()));
    CHECK(before == "079123456789");
  }
  CHECK(in_place["list"][0] == "x");
  CHECK(in_place["n"] == 1);
  // A memo entry of another type is not this value.
  OpenedBoxes number{OpenedBox{json(42), "wf:sealed:c-1:number"}};
  CaseSealer text_42("c-1", key, {"42"}, std::move(number));
  CHECK(text_42.Seal(json("42")) != json("wf:sealed:c-1:number"));
  CHECK(text_42.Seal(json(42)) == json("wf:sealed:c-1:number"));
}

WF_STORE_TEST_CASE(
    "a case key is cached only once its transaction committed, and only for the "
    "engine",
    "[personal][store]", db) {
  auto opened = Store::Open(db.url(), 2);
  REQUIRE(opened);
  Store& store = **opened;
  testing::TempDir dir("wf_keys_");
  store.keys().SetPath((dir / "wf.keys").string());
  auto ring = store.keys().Ring(true);
  REQUIRE(ring);
  const std::string id = testing::InsertBareCase(store);
  const DataKey first = KeyOf(7);

  // Rolled back: the key was visible inside its transaction, and nowhere afterwards.
  Status rolled = store.Transact([&](StoreTx& tx) {
    REQUIRE(tx.InsertCaseKey(id, (*ring)->Wrap(first), first, store.keys(), Now()).ok());
    auto inside = ReadCaseKey(tx, store.keys(), id, KeyUse::kEngine);
    REQUIRE(inside);
    CHECK(*inside == std::optional<DataKey>(first));
    return Status::Conflict("rolled back on purpose");
  });
  REQUIRE(rolled.code() == ErrorCode::kConflict);
  CHECK_FALSE(store.keys().Cached(id));
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                auto key = ReadCaseKey(tx, store.keys(), id, KeyUse::kEngine);
                REQUIRE(key);
                CHECK_FALSE(*key);
                return Status::Ok();
              })
              .ok());

  // Committed: the engine's cache has it.
  const DataKey second = KeyOf(8);
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                return tx.InsertCaseKey(id, (*ring)->Wrap(second), second, store.keys(), Now());
              })
              .ok());
  CHECK(store.keys().Cached(id) == std::optional<DataKey>(second));

  // Erased behind this process's back: a reader sees it at once; the engine's cache does not
  // matter to readers.
  REQUIRE(store
              .Transact([&](StoreTx& tx) {
                auto deleted = tx.DeleteCaseKey(id);
                return deleted ? Status::Ok() : deleted.error();
              })
              .ok());
  REQUIRE(store
              .Read([&](StoreTx& tx) {
                auto reader = ReadCaseKey(tx, store.keys(), id, KeyUse::kReader);
                REQUIRE(reader);
                CHECK_FALSE(*reader);
                return Status::Ok();
              })
              .ok());
}

}  // namespace
}  // namespace wf::engine
