// The runtime's side of personal data (DESIGN.md "Personal data", engine/personal.hpp): which
// values of a case are personal, the case's data key, sealing what a transition writes, opening
// what the engine reads, the dedupe key as stored, and erasure.
#include <set>
#include <string>
#include <vector>

#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

const workflows::PersonalMap& Runtime::PersonalOf(const workflows::Procedure& procedure) {
  std::lock_guard lock(personal_mutex_);
  auto it = personal_.find(&procedure);
  if (it == personal_.end()) {
    it = personal_.emplace(&procedure, workflows::PersonalMapOf(procedure)).first;
  }
  return it->second;
}

std::set<std::string> Runtime::EventPersonalValues(const workflows::Procedure& procedure,
                                                   const CaseState& before, const Event& event) {
  std::set<std::string> values;
  const workflows::PersonalMap& map = PersonalOf(procedure);
  if (map.empty()) return values;
  auto step_at = [&](int64_t activation) {
    const Token* token = before.FindByActivation(activation);
    return token ? token->step : std::string();
  };
  if (const auto* done = std::get_if<event::TaskCompleted>(&event)) {
    auto fields = map.form_fields.find(step_at(done->activation));
    if (fields == map.form_fields.end() || !done->values.is_object()) return values;
    for (const std::string& field : fields->second) {
      if (auto value = done->values.find(field); value != done->values.end()) {
        workflows::CollectScalars(*value, values);
      }
    }
  } else if (const auto* ok = std::get_if<event::StepSucceeded>(&event)) {
    if (map.result_steps.count(step_at(ok->activation))) {
      workflows::CollectScalars(ok->result, values);
    }
  } else if (const auto* ended = std::get_if<event::ChildEnded>(&event)) {
    if (map.result_steps.count(step_at(ended->activation))) {
      workflows::CollectScalars(ended->data, values);
    }
  } else if (const auto* signal = std::get_if<event::SignalReceived>(&event)) {
    for (const Token& token : before.tokens) {
      if (token.signal == signal->name && map.result_steps.count(token.step)) {
        workflows::CollectScalars(signal->data, values);
      }
    }
  }
  return values;
}

Result<CaseSealer> Runtime::SealerFor(StoreTx& tx, const std::string& case_id,
                                      const workflows::Procedure& procedure,
                                      const nlohmann::json& data, std::set<std::string> values,
                                      OpenedBoxes opened) {
  const workflows::PersonalMap& map = PersonalOf(procedure);
  if (map.empty() && values.empty()) return CaseSealer();
  workflows::CollectPersonalValues(data, map, values);
  if (values.empty()) return CaseSealer();
  KeySource& keys = store_.keys();
  auto key = ReadCaseKey(tx, keys, case_id, KeyUse::kEngine);
  if (!key) return key.error();
  if (!*key) {
    // The first personal value of this case: its data key, made now and stored with the write
    // it seals (cached only once committed: the transaction may roll back).
    auto ring = keys.Ring(true);
    if (!ring) return ring.error();
    DataKey fresh = NewDataKey();
    if (Status s = tx.InsertCaseKey(case_id, (*ring)->Wrap(fresh), fresh, keys, Now()); !s.ok()) {
      return s;
    }
    *key = fresh;
  }
  return CaseSealer(case_id, **key, std::move(values), std::move(opened));
}

Result<std::string> Runtime::SealTaskValues(StoreTx& tx, const CaseRecord& record,
                                            const std::string& step, const nlohmann::json& values) {
  auto procedure = procedures_.Get(tx, record.procedure, record.version);
  if (!procedure) return procedure.error();
  const workflows::PersonalMap& map = PersonalOf(**procedure);
  auto fields = map.form_fields.find(step);
  if (fields == map.form_fields.end() || !values.is_object()) return values.dump();
  std::set<std::string> personal;
  for (const std::string& field : fields->second) {
    if (auto value = values.find(field); value != values.end()) {
      workflows::CollectScalars(*value, personal);
    }
  }
  if (personal.empty()) return values.dump();
  auto sealer =
      SealerFor(tx, record.id, **procedure, nlohmann::json::object(), std::move(personal));
  if (!sealer) return sealer.error();
  return workflows::DumpJson(sealer->Seal(values));
}

Result<CaseState> Runtime::LoadState(StoreTx& tx, const CaseRecord& record,
                                     OpenedBoxes* opened) {
  nlohmann::json state_json = workflows::ParseJson(record.state);
  if (state_json.is_discarded()) {
    return Status::Internal("case " + record.id + ": stored state is not JSON");
  }
  // A state written before format 2 holds its own copy of the data; cases.data is then not read.
  const bool data_beside = !state_json.contains("data");
  nlohmann::json data = nlohmann::json::object();
  if (data_beside) {
    data = workflows::ParseJson(record.data);
    if (data.is_discarded()) {
      return Status::Internal("case " + record.id + ": stored data is not JSON");
    }
  }
  if (MaySeal(record.state) || (data_beside && MaySeal(record.data))) {
    Revealer revealer = RevealerFor(tx, store_.keys(), KeyUse::kEngine);
    if (opened != nullptr) revealer.MemoOpened(record.id, opened);
    revealer.RevealInPlace(state_json);
    revealer.RevealInPlace(data);
  }
  auto state = CaseState::FromJson(state_json, std::move(data));
  if (!state) return Status::Internal("case " + record.id + ": " + state.error().message());
  return state;
}

bool Runtime::RevealCached(nlohmann::json& value) {
  // With the keys at hand (PrefetchCaseKeys at the claim, or this engine's own last write of the
  // case) no transaction is needed.
  bool missing = false;
  Revealer cached([this, &missing](const std::string& id) -> Result<std::optional<DataKey>> {
    if (auto key = store_.keys().Cached(id)) return std::optional<DataKey>(*key);
    missing = true;
    return Status::NotFound("no cached key");
  });
  cached.RevealInPlace(value);
  return !missing;
}

std::string Runtime::RevealJsonText(const std::string& text) {
  if (!MaySeal(text)) return text;
  nlohmann::json parsed = workflows::ParseJson(text);
  if (!parsed.is_discarded() && RevealCached(parsed)) return workflows::DumpJson(parsed);
  std::string out = text;
  Status read = store_.Read([&](StoreTx& tx) {
    out = RevealerFor(tx, store_.keys(), KeyUse::kEngine).RevealJsonText(text);
    return Status::Ok();
  });
  return read.ok() ? out : text;
}

std::string Runtime::StoredDedupeKey(const workflows::Procedure& procedure,
                                     const nlohmann::json& data, const std::string& key) {
  const workflows::PersonalMap& map = PersonalOf(procedure);
  if (map.data_paths.empty()) return key;
  std::set<std::string> values;
  workflows::CollectPersonalValues(data, map, values);
  CaseSealer probe("", DataKey{}, values);
  if (!probe.Contains(key)) return key;
  auto ring = store_.keys().Ring(true);
  // Without a key file no personal value is stored at all (the start fails on sealing); a
  // plain SHA-256 would be open to guessing, so the key stays as it is only in that case.
  return ring ? (*ring)->KeyedHash(key) : key;
}

Status Runtime::EraseCase(const std::string& case_id, const std::string& reason,
                          const std::string& actor) {
  if (reason.empty()) {
    return Status::Usage(Tr("--reason is required: say why the personal data is erased"));
  }
  const Timestamp now = Now();
  Status status = Write([&](StoreTx& tx) -> Status {
    auto record = tx.GetCase(case_id);
    if (!record) {
      if (record.error().code() == ErrorCode::kNotFound) {
        return Status::NotFound(TrFormat("no case {0}; `wf cases` lists them", case_id));
      }
      return record.error();
    }
    if (!record->ended_at) {
      return Status::Conflict(TrFormat(
          "case {0} is still {1}: only an ended case's personal data is erased (cancel it first "
          "with `wf cancel {0} --reason ...` if it must stop)",
          case_id, record->status));
    }
    auto deleted = tx.DeleteCaseKey(case_id);
    if (!deleted) return deleted.error();
    if (!*deleted) {
      return Status::Conflict(TrFormat(
          "case {0} holds no personal data to erase (none was given, or it was erased before: "
          "`wf history {0}` says)",
          case_id));
    }
    auto evidence = tx.DeleteEvidenceOfCase(case_id);
    if (!evidence) return evidence.error();
    nlohmann::json details = {{"reason", reason}, {"evidence_deleted", *evidence}};
    auto event =
        tx.AppendHistory(case_id, actor, history_action::kCaseErased, "", details.dump(), now);
    return event ? Status::Ok() : event.error();
  });
  if (!status.ok()) return status;
  store_.keys().Forget(case_id);
  states_.Forget(case_id);
  return store_.CheckpointLog();
}

Result<std::vector<std::string>> Runtime::EraseExpired(const std::string& reason,
                                                       const std::string& actor) {
  const Timestamp now = Now();
  std::vector<KeyedCase> candidates;
  Status listed = store_.Read([&](StoreTx& tx) {
    auto keyed = tx.ListKeyedEndedCases(now);
    if (!keyed) return keyed.error();
    candidates = std::move(*keyed);
    return Status::Ok();
  });
  if (!listed.ok()) return listed;
  std::vector<std::string> erased;
  for (const KeyedCase& c : candidates) {
    const workflows::Procedure* procedure = nullptr;
    Status read = store_.Read([&](StoreTx& tx) {
      auto got = procedures_.Get(tx, c.procedure, c.version);
      if (!got) return got.error();
      procedure = *got;
      return Status::Ok();
    });
    if (!read.ok()) return read;
    if (!procedure->retention || !c.ended_at) continue;
    const Timestamp until =
        *c.ended_at + std::chrono::seconds(procedure->retention->ApproximateSeconds());
    if (until > now) continue;
    Status s = EraseCase(c.id, reason, actor);
    // Erased meanwhile by someone else: nothing left to do.
    if (s.code() == ErrorCode::kConflict) continue;
    if (!s.ok()) return s;
    erased.push_back(c.id);
  }
  return erased;
}

}  // namespace wf::engine
