#include "engine/history.hpp"

#include <array>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string_view>

#include "workflows/hash.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

std::string FormatRfc3339(Timestamp t) {
  using std::chrono::microseconds;
  auto seconds = std::chrono::floor<std::chrono::seconds>(t);
  auto micros = std::chrono::duration_cast<microseconds>(t - seconds).count();
  std::time_t tt = static_cast<std::time_t>(seconds.time_since_epoch().count());
  std::tm tm{};
  gmtime_r(&tt, &tm);
  const int year = tm.tm_year + 1900;
  if (year >= 0 && year <= 9999) {
    // Digit by digit: snprintf's format parsing was most of the cost, on every history event.
    std::string out = "0000-00-00T00:00:00.000000Z";
    auto put = [&out](std::size_t at, long long value, int width) {
      for (int i = width - 1; i >= 0; --i, value /= 10) {
        out[at + i] = static_cast<char>('0' + value % 10);
      }
    };
    put(0, year, 4);
    put(5, tm.tm_mon + 1, 2);
    put(8, tm.tm_mday, 2);
    put(11, tm.tm_hour, 2);
    put(14, tm.tm_min, 2);
    put(17, tm.tm_sec, 2);
    put(20, micros, 6);
    return out;
  }
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(micros));
  return buffer;
}

namespace {

// Invalid UTF-8 is replaced rather than thrown: the same bytes always give the same text.
constexpr auto kReplace = nlohmann::json::error_handler_t::replace;

// The details text re-serialised canonically; details that are not JSON as a JSON string.
std::string CanonicalDetails(const std::string& details) {
  nlohmann::json parsed = workflows::ParseJson(details);
  if (parsed.is_discarded()) parsed = details;
  return workflows::DumpJson(parsed, kReplace);
}

// prev_hash followed by the canonical event whose details are `details` (canonical text): what
// the hash covers. Written directly, member by member in sorted order, rather than built as a
// JSON object and dumped: the same bytes, without an object of copies on every event.
std::string HashedText(const HistoryEvent& event, std::string_view details) {
  std::string out;
  out.reserve(2 * event.prev_hash.size() + details.size() + event.action.size() +
              event.actor.size() + event.at.size() + event.case_id.size() + event.step.size() +
              96);
  out += event.prev_hash;
  out += R"({"action":)";
  workflows::AppendJsonString(out, event.action, kReplace);
  out += R"(,"actor":)";
  workflows::AppendJsonString(out, event.actor, kReplace);
  out += R"(,"at":)";
  workflows::AppendJsonString(out, event.at, kReplace);
  out += R"(,"case":)";
  workflows::AppendJsonString(out, event.case_id, kReplace);
  out += R"(,"details":)";
  out += details;
  out += R"(,"prev_hash":)";
  workflows::AppendJsonString(out, event.prev_hash, kReplace);
  out += R"(,"seq":)";
  std::array<char, 24> seq{};
  out.append(seq.data(), std::to_chars(seq.data(), seq.data() + seq.size(), event.seq).ptr);
  out += R"(,"step":)";
  workflows::AppendJsonString(out, event.step, kReplace);
  out += '}';
  return out;
}

void Follow(HistoryEvent& event, const HistoryEvent* previous) {
  event.seq = previous ? previous->seq + 1 : 1;
  event.prev_hash = previous ? previous->hash : std::string(kGenesisHash);
}

}  // namespace

std::string CanonicalEvent(const HistoryEvent& event) {
  return HashedText(event, CanonicalDetails(event.details)).substr(event.prev_hash.size());
}

std::string ComputeEventHash(const HistoryEvent& event) {
  return Sha256Hex(HashedText(event, CanonicalDetails(event.details)));
}

void SealEvent(HistoryEvent& event, const HistoryEvent* previous) {
  Follow(event, previous);
  event.hash = ComputeEventHash(event);
}

void SealCanonicalEvent(HistoryEvent& event, const HistoryEvent* previous) {
  Follow(event, previous);
  event.hash = Sha256Hex(HashedText(event, event.details));
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
