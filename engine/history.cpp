#include "engine/history.hpp"

#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <utility>

#include "workflows/hash.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

std::string FormatRfc3339(Timestamp t) {
  using std::chrono::microseconds;
  auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  auto micros = std::chrono::duration_cast<microseconds>(t - seconds).count();
  std::time_t tt = static_cast<std::time_t>(seconds.time_since_epoch().count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buffer;
}

std::string CanonicalEvent(const HistoryEvent& event) {
  nlohmann::json details =
      nlohmann::json::parse(event.details, nullptr, /*allow_exceptions=*/false);
  if (details.is_discarded()) details = event.details;
  return CanonicalEvent(event, std::move(details));
}

std::string CanonicalEvent(const HistoryEvent& event, nlohmann::json details) {
  // Member by member: an initializer list would copy the details once more.
  nlohmann::json object = nlohmann::json::object();
  object["action"] = event.action;
  object["actor"] = event.actor;
  object["at"] = event.at;
  object["case"] = event.case_id;
  object["details"] = std::move(details);
  object["prev_hash"] = event.prev_hash;
  object["seq"] = event.seq;
  object["step"] = event.step;
  // Invalid UTF-8 is replaced rather than thrown: the same bytes always give the same text.
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string ComputeEventHash(const HistoryEvent& event) {
  return Sha256Hex(event.prev_hash + CanonicalEvent(event));
}

namespace {

void Follow(HistoryEvent& event, const HistoryEvent* previous) {
  event.seq = previous ? previous->seq + 1 : 1;
  event.prev_hash = previous ? previous->hash : std::string(kGenesisHash);
}

}  // namespace

void SealEvent(HistoryEvent& event, const HistoryEvent* previous) {
  Follow(event, previous);
  event.hash = ComputeEventHash(event);
}

void SealEvent(HistoryEvent& event, const HistoryEvent* previous, nlohmann::json details) {
  Follow(event, previous);
  event.hash = Sha256Hex(event.prev_hash + CanonicalEvent(event, std::move(details)));
}

std::string ChainBreak::Describe() const {
  return TrFormat("case {0}: event seq {1} does not verify ({2})", case_id, seq, reason);
}

std::optional<ChainBreak> ChainVerifier::Feed(const HistoryEvent& event) {
  ++events_;
  if (cases_ == 0 || event.case_id != case_id_) {
    ++cases_;
    case_id_ = event.case_id;
    last_seq_ = 0;
    last_hash_ = std::string(kGenesisHash);
    broken_ = false;
    if (partial_ && event.seq > 1) {
      last_seq_ = event.seq - 1;
      last_hash_ = event.prev_hash;
    }
  }
  if (broken_) return std::nullopt;
  std::optional<ChainBreak> failure;
  if (event.seq != last_seq_ + 1) {
    failure =
        ChainBreak{event.case_id, last_seq_ + 1, TrFormat("gap in seq (found {0})", event.seq)};
  } else if (event.prev_hash != last_hash_) {
    failure = ChainBreak{event.case_id, event.seq, Tr("broken link")};
  } else if (ComputeEventHash(event) != event.hash) {
    failure = ChainBreak{event.case_id, event.seq, Tr("hash mismatch")};
  }
  last_seq_ = event.seq;
  last_hash_ = event.hash;
  if (failure) broken_ = true;
  return failure;
}

std::optional<ChainBreak> VerifyChain(const std::vector<HistoryEvent>& events) {
  ChainVerifier verifier;
  for (const HistoryEvent& event : events) {
    if (auto failure = verifier.Feed(event)) return failure;
  }
  return std::nullopt;
}

}  // namespace wf::engine
