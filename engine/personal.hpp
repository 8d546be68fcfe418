#pragma once
// Personal data at rest (DESIGN.md "Personal data", Decree 13/2023/ND-CP).
//
// Every case that carries personal values gets a data key of its own: 32 random bytes, kept
// only wrapped (AES-256-GCM) under the key-encryption key (KEK) in the table case_keys, apart
// from the history. What the case writes (its data and state, history details, work payloads,
// task titles and values, incident messages, evidence) is sealed before it reaches the
// database: every string or number that is a personal value, and every string that contains
// one, becomes the text "wf:sealed:<case>:<base64 of nonce, ciphertext and tag>" (AES-256-GCM
// under the case's data key, the case id as associated data, the value's JSON inside). The
// hash chain covers that text, so history, exports and archives hold no personal value and
// still verify after the key is gone. `wf erase` deletes the key: the values then read
// "[erased]" everywhere. Dedupe keys and evidence subjects are keyed hashes (HMAC-SHA-256 under
// an index key that never rotates, so that look-ups keep matching across KEK rotations).
//
// The key file (mode 0600) holds the index key and one or more KEKs, the first current:
//   wf-keys 1
//   index <64 hex>
//   kek <64 hex>
// `wf keys rotate` adds a new current KEK, re-wraps every case key under it and drops the old.
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "workflows/status.hpp"

namespace wf::engine {

inline constexpr std::string_view kSealedPrefix = "wf:sealed:";
// What a sealed value reads once its case was erased.
inline constexpr const char* kErasedValue = "[erased]";
// What it reads for someone without the key file (or without the right to the case's key).
inline constexpr const char* kSealedValue = "[sealed]";
// Keyed hashes (dedupe keys, evidence subjects) start with this.
inline constexpr std::string_view kKeyedHashPrefix = "hmac:";
// Personal strings at least this long are found inside longer strings too; shorter ones only
// as whole values (a sex or a birth order would otherwise seal every text with that letter).
inline constexpr size_t kMinSubstringMatch = 4;

using DataKey = std::array<unsigned char, 32>;

// A fresh random data key. Throws std::runtime_error when OpenSSL has no randomness.
DataKey NewDataKey();

// Whether `text` is a sealed value.
inline bool IsSealed(std::string_view text) {
  return text.substr(0, kSealedPrefix.size()) == kSealedPrefix;
}
// The case a sealed value belongs to ("" when `text` is not one).
std::string SealedCase(std::string_view text);
// Seals `value` for `case_id` under `key`.
std::string SealValue(const std::string& case_id, const DataKey& key, const nlohmann::json& value);
// The value inside `sealed`; nullopt when it was not sealed under `key` (tampered, another key).
std::optional<nlohmann::json> OpenSealed(std::string_view sealed, const DataKey& key);

// The key file: the index key and the KEKs. Thread-safe after loading.
class KeyRing {
 public:
  // Reads the key file at `path`. kNotFound when there is none; kInvalid when it is not one;
  // kNotPermitted when it cannot be read.
  static Result<std::unique_ptr<KeyRing>> Load(const std::string& path);
  // Makes a new key file at `path` (mode 0600, never replacing one) and returns it.
  static Result<std::unique_ptr<KeyRing>> Create(const std::string& path);
  // A key ring that lives in memory only (an in-memory database's).
  static std::unique_ptr<KeyRing> Ephemeral();

  const std::string& path() const { return path_; }
  // The current KEK's id: the first 16 hex digits of its SHA-256.
  std::string current_id() const;
  // The ids of every KEK, current first.
  std::vector<std::string> ids() const;
  // `key` wrapped under the current KEK: "<kek id>:<base64>".
  std::string Wrap(const DataKey& key) const;
  // The data key inside `wrapped`; kNotFound when its KEK is not in this file, kInvalid when
  // it does not open (tampered).
  Result<DataKey> Unwrap(std::string_view wrapped) const;
  // "hmac:<hex>" of `value` under the index key.
  std::string KeyedHash(std::string_view value) const;

  // Rotation: a new current KEK, saved (the file replaced atomically, the old KEKs kept so that
  // keys wrapped under them still open).
  Status AddKek();
  // Drops every KEK but the current one from the file.
  Status DropOldKeks();

 private:
  KeyRing() = default;
  // kek_ids_ from keks_ (after every change of keks_).
  void IndexKeks();
  Status Save() const;
  // The file's text into `file`, made afresh with mode 0600 and synced.
  Status WriteTo(const std::string& file) const;

  std::string path_;  // empty: in memory only
  std::array<unsigned char, 32> index_{};
  std::vector<std::array<unsigned char, 32>> keks_;  // current first
  std::vector<std::string> kek_ids_;                  // KeyId of each, in the same order
};

// The key ring of one database, loaded on first use, and the data keys of its cases (cached:
// a case's key changes only by erasure, after which nothing is sealed for it again).
// Thread-safe.
class KeySource {
 public:
  // `path`: the key file; empty: an ephemeral ring (in-memory databases).
  explicit KeySource(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  void SetPath(std::string path);
  // The ring, made when `create` and there is none (wf says where, once, on stderr). kNotFound
  // without `create` when there is no key file.
  Result<KeyRing*> Ring(bool create);
  // Cached data keys.
  std::optional<DataKey> Cached(const std::string& case_id);
  void Remember(const std::string& case_id, const DataKey& key);
  void Forget(const std::string& case_id);

 private:
  std::mutex mutex_;
  std::string path_;
  std::unique_ptr<KeyRing> ring_;
  std::unordered_map<std::string, DataKey> keys_;
};

// A sealed value of a case as it was read (Revealer's memo), and what it opened to: sealing the
// same value for the same case again gives back this box without a look-up in the process-wide
// cache.
struct OpenedBox {
  nlohmann::json value;
  std::string box;
};
using OpenedBoxes = std::vector<OpenedBox>;

// Seals what one case writes (see the file comment). Inactive (a no-op) without personal values.
class CaseSealer {
 public:
  CaseSealer() = default;
  // `opened`: boxes of this case read in the same transaction (LoadState), reused as they are.
  CaseSealer(std::string case_id, const DataKey& key, std::set<std::string> values,
             OpenedBoxes opened = {});
  CaseSealer(CaseSealer&&) = default;
  CaseSealer& operator=(CaseSealer&&) = default;
  CaseSealer(const CaseSealer&) = delete;
  CaseSealer& operator=(const CaseSealer&) = delete;

  bool active() const { return active_; }
  const std::set<std::string>& values() const { return values_; }
  // `value` with every personal scalar in it sealed.
  nlohmann::json Seal(const nlohmann::json& value) const;
  // The same, in place (no copy of what holds no personal value). With `replaced`, each scalar
  // it sealed and its value before, so that the caller can put them back.
  void SealInPlace(nlohmann::json& value,
                   std::vector<std::pair<nlohmann::json*, nlohmann::json>>* replaced = nullptr) const;
  // A text column: sealed whole when it contains a personal value.
  std::string SealText(const std::string& text) const;
  // JSON text: Seal over its parse (text that is not JSON: SealText).
  std::string SealJsonText(const std::string& text) const;
  // Whether `text` holds a personal value.
  bool Contains(std::string_view text) const;
  // Whether the JSON text `json_text` may hold one (false: certainly not, no need to parse it).
  bool MayHold(std::string_view json_text) const;
  // Whether any string or number of `value` is or holds a personal value.
  bool Touches(const nlohmann::json& value) const;

 private:
  // Whether `text` is one of the personal values (no string is made to look).
  bool IsValue(std::string_view text) const;
  // Whether the number `value` (a number's text is a personal value, as CollectScalars puts it).
  bool IsNumberValue(const nlohmann::json& value) const;
  // The sealed text of the scalar `value`.
  std::string SealScalar(const nlohmann::json& value) const;

  bool active_ = false;
  std::string case_id_;
  DataKey key_{};
  std::set<std::string> values_;
  std::vector<std::string_view> sorted_values_;  // views of values_, in its order
  bool numeric_values_ = false;  // whether some value is the text of a JSON number
  // Views of values_ at least kMinSubstringMatch bytes long, longest first (values_'s nodes stay
  // where they are when the sealer moves; it is never copied).
  std::vector<std::string_view> long_values_;
  // The length of the shortest value: no shorter text is one or holds one.
  size_t shortest_ = 0;
  OpenedBoxes opened_;
};

// Opens sealed values for those who may read them: `key_of` gives a case's data key, nullopt
// when the case's key is gone (erased), or an error (no key file, no right to it: the value
// reads kSealedValue). Keys are asked once per case.
class Revealer {
 public:
  using KeyOf = std::function<Result<std::optional<DataKey>>(const std::string& case_id)>;
  explicit Revealer(KeyOf key_of) : key_of_(std::move(key_of)) {}

  // From now on RevealInPlace adds the boxes of `case_id` that it opens to `memo` (at most
  // kMaxMemo of them), for the case's CaseSealer.
  void MemoOpened(std::string case_id, OpenedBoxes* memo) {
    memo_case_ = std::move(case_id);
    memo_ = memo;
  }
  static constexpr size_t kMaxMemo = 64;

  nlohmann::json Reveal(const nlohmann::json& value);
  void RevealInPlace(nlohmann::json& value);
  // A sealed text column opened; anything else as it is.
  std::string RevealText(const std::string& text);
  // JSON text with its sealed values opened (the JSON of the result).
  std::string RevealJsonText(const std::string& text);
  // The plaintext of one sealed value; kErasedValue or kSealedValue when it cannot be opened.
  nlohmann::json Open(std::string_view sealed);

 private:
  // Open; `*opened` says whether the value came out (not kErasedValue or kSealedValue).
  nlohmann::json Open(std::string_view sealed, bool* opened);

  KeyOf key_of_;
  std::string memo_case_;
  OpenedBoxes* memo_ = nullptr;
  // By case id, found from a view of the sealed text (std::less<>: no string made to look).
  std::map<std::string, std::optional<DataKey>, std::less<>> keys_;  // nullopt: not available
  std::map<std::string, bool, std::less<>> erased_;
};

// Whether `text` (JSON or plain) holds a sealed value anywhere: the cheap test before a walk.
inline bool MaySeal(std::string_view text) {
  return text.find(kSealedPrefix) != std::string_view::npos;
}

}  // namespace wf::engine
