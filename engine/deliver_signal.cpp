// Runtime::DeliverSignal: a signal admitted by the steps it reaches (wf serve's events route).
#include <algorithm>

#include "engine/history_action.hpp"
#include "engine/runtime.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

// The steps `name` would reach in `state`, as Machine::On(SignalReceived) chooses them: a wait
// step declaring it, or an adapter step of that id whose call is out or accepted.
Result<std::vector<Runtime::SignalReceiver>> Receivers(const workflows::Procedure& procedure,
                                                       const CaseRecord& record,
                                                       const std::string& name) {
  nlohmann::json state_json = workflows::ParseJson(record.state);
  if (state_json.is_discarded()) {
    return Status::Internal("case " + record.id + ": stored state is not JSON");
  }
  auto state = CaseState::FromJson(state_json);
  if (!state) return Status::Internal("case " + record.id + ": " + state.error().message());
  std::vector<Runtime::SignalReceiver> out;
  for (const Token& token : state->tokens) {
    if (token.waiting == Waiting::kSignal && token.signal == name) {
      out.push_back({token.step, false, ""});
    } else if ((token.waiting == Waiting::kAccepted || token.waiting == Waiting::kAdapter) &&
               token.step == name) {
      const workflows::Step* step = procedure.FindStep(token.step);
      out.push_back({token.step, true, step != nullptr ? step->department : std::string()});
    }
  }
  return out;
}

}  // namespace

Status Runtime::DeliverSignal(const std::string& case_id, const event::SignalReceived& signal,
                              const std::string& actor, const SignalAdmission& admit,
                              std::string* hash) {
  auto admitted = [&](StoreTx& tx, const CaseRecord& record) -> Status {
    auto procedure = procedures_.Get(tx, record.procedure, record.version);
    if (!procedure) return procedure.error();
    auto receivers = Receivers(**procedure, record, signal.name);
    if (!receivers) return receivers.error();
    if (receivers->empty()) {
      return Status::Conflict(TrFormat(
          "case {0}: signal '{1}': no step of the case is waiting for it", case_id, signal.name));
    }
    return admit(record, *receivers);
  };
  auto recorded = [&](StoreTx& tx) -> Status {
    if (hash == nullptr) return Status::Ok();
    auto history = tx.ListHistory(case_id);
    if (!history) return history.error();
    auto it = std::find_if(history->rbegin(), history->rend(), [&](const HistoryEvent& e) {
      return e.action == history_action::kSignalReceived;
    });
    if (it != history->rend()) *hash = it->hash;
    return Status::Ok();
  };
  return ApplyEventChecked(case_id, signal, actor, admitted, recorded);
}

}  // namespace wf::engine
