#pragma once
// The run-time state of open cases as this process last committed them, so that the next
// transition of a case does not parse (and open the sealed values of) the state it wrote itself.
//
// An entry is found by the case id and the row_version its write left: every write of a case
// row checks and bumps row_version (StoreTx::UpdateCase), so a version names one content, and a
// case that moved on elsewhere (another engine, a clerk's command) misses and is read from its
// row. Entries go in only once their transaction has committed (StoreTx::AfterCommit) and come
// out when used (Take), so a transaction that rolls back leaves nothing behind. Ended cases are
// not kept (nothing of theirs is read again, and an erasure must find no plaintext here), and
// EraseCase forgets a case in any state. Bounded: emptied when full (a bound, not an LRU: a miss
// only costs a read). Thread-safe.
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "engine/machine.hpp"
#include "engine/personal.hpp"
#include "engine/store.hpp"

namespace wf::engine {

class StateCache {
 public:
  // The row as a write left it, without its data and state texts (the entry's state is them),
  // and its history chain's head: what a commit that trusts the entry needs instead of reading
  // the row (BatchCommitter). Unset (`record.id` empty) when the writer had none.
  struct KeptRow {
    CaseRecord record;
    std::int64_t head_seq = 0;
    std::string head_hash;
  };
  struct Entry {
    int64_t row_version = 0;
    CaseState state;     // personal values in the clear
    OpenedBoxes opened;  // the boxes its write sealed them into (for CaseSealer to reuse)
    KeptRow row;
  };
  static constexpr size_t kMaxEntries = 20000;

  // The entry of `case_id` at exactly `row_version`, removed; nullopt when there is none.
  std::optional<Entry> Take(const std::string& case_id, int64_t row_version) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(case_id);
    if (it == entries_.end()) return std::nullopt;
    std::optional<Entry> out;
    if (it->second.row_version == row_version) out = std::move(it->second);
    entries_.erase(it);  // an older version is of no use any more
    return out;
  }
  // A copy of the state of `case_id` at exactly `row_version`, left in place (a rehearsal).
  std::optional<CaseState> Peek(const std::string& case_id, int64_t row_version) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(case_id);
    if (it == entries_.end() || it->second.row_version != row_version) return std::nullopt;
    return it->second.state;
  }
  // The row and chain head of the entry of `case_id`, left in place; nullopt when there is none
  // or it has no row.
  std::optional<KeptRow> PeekRow(const std::string& case_id) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(case_id);
    if (it == entries_.end() || it->second.row.record.id.empty()) return std::nullopt;
    return it->second.row;
  }
  // Keeps `entry` for `case_id` unless a later version of it is kept already.
  void Put(const std::string& case_id, Entry entry) {
    std::lock_guard lock(mutex_);
    auto it = entries_.find(case_id);
    if (it != entries_.end()) {
      if (it->second.row_version < entry.row_version) it->second = std::move(entry);
      return;
    }
    if (entries_.size() >= kMaxEntries) entries_.clear();
    entries_.emplace(case_id, std::move(entry));
  }
  void Forget(const std::string& case_id) {
    std::lock_guard lock(mutex_);
    entries_.erase(case_id);
  }
  size_t size() {
    std::lock_guard lock(mutex_);
    return entries_.size();
  }

 private:
  std::mutex mutex_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace wf::engine
