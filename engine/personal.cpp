// Personal data at rest (personal.hpp).
#include "engine/personal.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <unordered_map>

#include "engine/base64.hpp"
#include "engine/private_files.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

using nlohmann::json;
using Key32 = std::array<unsigned char, 32>;

constexpr size_t kNonceBytes = 12;
constexpr size_t kTagBytes = 16;
constexpr const char* kKeyFileMagic = "wf-keys 1";

Key32 RandomKey() {
  Key32 key{};
  if (RAND_bytes(key.data(), static_cast<int>(key.size())) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: no key");
  }
  return key;
}

std::string Hex(const unsigned char* bytes, size_t n) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out += digits[bytes[i] >> 4];
    out += digits[bytes[i] & 15];
  }
  return out;
}

std::optional<Key32> FromHex(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  Key32 key{};
  for (size_t i = 0; i < 32; ++i) {
    int value = 0;
    for (size_t j = 0; j < 2; ++j) {
      const char c = text[2 * i + j];
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return std::nullopt;
      value = value * 16 + digit;
    }
    key[i] = static_cast<unsigned char>(value);
  }
  return key;
}

std::string KeyId(const Key32& kek) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(kek.data(), kek.size(), digest);
  return Hex(digest, 8);
}

// AES-256-GCM fetched once (an implicit fetch on every use costs a look-up and allocations in
// OpenSSL 3), and one cipher context per thread, set up afresh (key, nonce) for every value.
const EVP_CIPHER* Aes256Gcm() {
  static EVP_CIPHER* fetched = EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr);
  return fetched != nullptr ? fetched : EVP_aes_256_gcm();
}

struct CipherCtx {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  ~CipherCtx() { EVP_CIPHER_CTX_free(ctx); }
};

EVP_CIPHER_CTX* ThreadCipherCtx() {
  thread_local CipherCtx c;
  return c.ctx;
}

// nonce | ciphertext | tag of `plain` under `key` with `aad`.
std::string Encrypt(const Key32& key, std::string_view aad, std::string_view plain) {
  std::string out(kNonceBytes + plain.size() + kTagBytes, '\0');
  auto* bytes = reinterpret_cast<unsigned char*>(out.data());
  if (RAND_bytes(bytes, kNonceBytes) != 1) throw std::runtime_error("OpenSSL RAND_bytes failed");
  EVP_CIPHER_CTX* ctx = ThreadCipherCtx();
  int n = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex(ctx, Aes256Gcm(), nullptr, key.data(), bytes) != 1 ||
      EVP_EncryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx, bytes + kNonceBytes, &n,
                        reinterpret_cast<const unsigned char*>(plain.data()),
                        static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, bytes + kNonceBytes + n, &n) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kTagBytes,
                          bytes + kNonceBytes + plain.size()) != 1) {
    throw std::runtime_error("OpenSSL AES-256-GCM failed");
  }
  return out;
}

std::optional<std::string> Decrypt(const Key32& key, std::string_view aad, std::string_view box) {
  if (box.size() < kNonceBytes + kTagBytes) return std::nullopt;
  const auto* bytes = reinterpret_cast<const unsigned char*>(box.data());
  const size_t length = box.size() - kNonceBytes - kTagBytes;
  std::string plain(length, '\0');
  EVP_CIPHER_CTX* ctx = ThreadCipherCtx();
  int n = 0;
  std::array<unsigned char, kTagBytes> tag{};
  std::memcpy(tag.data(), bytes + kNonceBytes + length, kTagBytes);
  if (ctx == nullptr ||
      EVP_DecryptInit_ex(ctx, Aes256Gcm(), nullptr, key.data(), bytes) != 1 ||
      EVP_DecryptUpdate(ctx, nullptr, &n, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_DecryptUpdate(ctx, reinterpret_cast<unsigned char*>(plain.data()), &n,
                        bytes + kNonceBytes, static_cast<int>(length)) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kTagBytes, tag.data()) != 1 ||
      EVP_DecryptFinal_ex(ctx, reinterpret_cast<unsigned char*>(plain.data()) + n, &n) != 1) {
    return std::nullopt;
  }
  return plain;
}

// Whether `text` is a JSON number: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsNumberText(std::string_view text) {
  size_t i = 0;
  auto digits = [&] {
    const size_t from = i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    return i > from;
  };
  if (i < text.size() && text[i] == '-') ++i;
  if (i < text.size() && text[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < text.size() && text[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
    ++i;
    if (i < text.size() && (text[i] == '+' || text[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == text.size();
}

std::string_view AsView(const DataKey& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

// The values this process sealed or opened lately. A case's unchanged values keep their
// ciphertext from one write to the next (the same plaintext under the same key gives back the
// same box: no nonce is ever used for a second plaintext), and opening a box seen before costs no
// decryption. Opened boxes are only looked up once the reader holds the case's key (Revealer), so
// the cache never shows a value to someone without the right to it, nor after an erasure.
// Emptied on every erasure in this process and when it grows past kMaxEntries.
class SealCache {
 public:
  static SealCache& Instance() {
    static SealCache cache;
    return cache;
  }
  std::optional<std::string> Sealed(const std::string& key) {
    std::lock_guard lock(mutex_);
    auto it = sealed_.find(key);
    return it == sealed_.end() ? std::nullopt : std::optional<std::string>(it->second);
  }
  std::optional<json> Opened(const std::string_view box) {
    std::lock_guard lock(mutex_);
    auto it = opened_.find(box);
    return it == opened_.end() ? std::nullopt : std::optional<json>(it->second);
  }
  // `key`: what Sealed looks the box up by (SealingKey).
  void Remember(std::string key, const std::string& box, const json& plain) {
    std::lock_guard lock(mutex_);
    if (sealed_.size() + opened_.size() >= kMaxEntries) Clear();
    sealed_.emplace(std::move(key), box);
    opened_.emplace(box, plain);
  }
  void Forget() {
    std::lock_guard lock(mutex_);
    Clear();
  }

 private:
  static constexpr size_t kMaxEntries = 100000;
  void Clear() {
    sealed_.clear();
    opened_.clear();
  }
  // Heterogeneous look-up: a box is found from a view of the text it sits in. Its last bytes
  // (ciphertext and tag, random) are hash enough; hashing the whole box cost more than the rest
  // of a look-up.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const {
      constexpr size_t kTail = 24;
      return std::hash<std::string_view>{}(text.size() > kTail ? text.substr(text.size() - kTail)
                                                               : text);
    }
  };
  std::mutex mutex_;
  std::unordered_map<std::string, std::string> sealed_;  // key bytes, case, plaintext -> box
  std::unordered_map<std::string, json, Hash, std::equal_to<>> opened_;  // box -> value
};

}  // namespace

DataKey NewDataKey() { return RandomKey(); }

namespace {

std::string_view SealedCaseView(std::string_view text) {
  if (!IsSealed(text)) return {};
  text.remove_prefix(kSealedPrefix.size());
  const size_t colon = text.find(':');
  return colon == std::string_view::npos ? std::string_view() : text.substr(0, colon);
}

}  // namespace

std::string SealedCase(std::string_view text) { return std::string(SealedCaseView(text)); }

namespace {

// What SealCache finds a box by: the data key, the case and the plaintext (the value's JSON).
std::string SealingKey(const DataKey& key, std::string_view case_id, std::string_view plain) {
  std::string out;
  out.reserve(key.size() + case_id.size() + 1 + plain.size());
  out.append(AsView(key)).append(case_id).push_back('\0');
  out.append(plain);
  return out;
}

}  // namespace

std::string SealValue(const std::string& case_id, const DataKey& key, const json& value) {
  std::string plain = workflows::DumpJson(value);
  std::string cache_key = SealingKey(key, case_id, plain);
  SealCache& cache = SealCache::Instance();
  if (auto box = cache.Sealed(cache_key)) return std::move(*box);
  std::string box =
      std::string(kSealedPrefix) + case_id + ":" + Base64(Encrypt(key, case_id, plain));
  cache.Remember(std::move(cache_key), box, value);
  return box;
}

std::optional<json> OpenSealed(std::string_view sealed, const DataKey& key) {
  const std::string case_id = SealedCase(sealed);
  if (case_id.empty()) return std::nullopt;
  auto box = Unbase64(std::string(sealed.substr(kSealedPrefix.size() + case_id.size() + 1)));
  if (!box) return std::nullopt;
  auto plain = Decrypt(key, case_id, *box);
  if (!plain) return std::nullopt;
  json value = workflows::ParseJson(*plain);
  if (value.is_discarded()) return std::nullopt;
  return value;
}

// --- KeyRing -----------------------------------------------------------------------------------

Result<std::unique_ptr<KeyRing>> KeyRing::Load(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return Status::NotFound(TrFormat("no key file {0}", path));
    return Status::NotPermitted(
        TrFormat("cannot read the key file {0}: {1}", path, std::strerror(errno)));
  }
  std::unique_ptr<KeyRing> ring(new KeyRing());
  ring->path_ = path;
  std::string line;
  bool magic = false, index = false;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line == kKeyFileMagic) {
      magic = true;
      continue;
    }
    const size_t space = line.find(' ');
    const std::string word = line.substr(0, space);
    auto key = space == std::string::npos ? std::nullopt : FromHex(line.substr(space + 1));
    if (!key || (word != "index" && word != "kek")) {
      return Status::Invalid(TrFormat("{0} is not a wf key file (line \"{1}\")", path,
                                      line.substr(0, std::min<size_t>(line.size(), 12))));
    }
    if (word == "index") {
      ring->index_ = *key;
      index = true;
    } else {
      ring->keks_.push_back(*key);
    }
  }
  ring->IndexKeks();
  if (!magic || !index || ring->keks_.empty()) {
    return Status::Invalid(TrFormat(
        "{0} is not a wf key file: it needs the line \"wf-keys 1\", an index key and a KEK", path));
  }
  return ring;
}

Result<std::unique_ptr<KeyRing>> KeyRing::Create(const std::string& path) {
  std::error_code ignored;
  const std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (!folder.empty() && !std::filesystem::exists(folder, ignored)) {
    std::filesystem::create_directories(folder, ignored);
    ::chmod(folder.c_str(), 0700);
  }
  std::unique_ptr<KeyRing> ring(new KeyRing());
  ring->path_ = path;
  ring->index_ = RandomKey();
  ring->keks_.push_back(RandomKey());
  ring->IndexKeks();
  // Written whole beside it, then linked into place: link fails when another process made the
  // file meanwhile (kConflict: load theirs), and no one ever reads a half-written file.
  const std::string temporary = path + "." + std::to_string(::getpid()) + ".new";
  if (Status written = ring->WriteTo(temporary); !written.ok()) return written;
  const int linked = ::link(temporary.c_str(), path.c_str());
  const int error = errno;
  ::unlink(temporary.c_str());
  if (linked != 0) {
    if (error == EEXIST) return Status::Conflict(TrFormat("the key file {0} exists", path));
    return Status::Internal(
        TrFormat("cannot write the key file {0}: {1}", path, std::strerror(error)));
  }
  if (Status synced = SyncParentFolder(path); !synced.ok()) return synced;
  return ring;
}

std::unique_ptr<KeyRing> KeyRing::Ephemeral() {
  std::unique_ptr<KeyRing> ring(new KeyRing());
  ring->index_ = RandomKey();
  ring->keks_.push_back(RandomKey());
  ring->IndexKeks();
  return ring;
}

void KeyRing::IndexKeks() {
  kek_ids_.clear();
  for (const auto& kek : keks_) kek_ids_.push_back(KeyId(kek));
}

std::string KeyRing::current_id() const { return kek_ids_.front(); }

std::vector<std::string> KeyRing::ids() const { return kek_ids_; }

std::string KeyRing::Wrap(const DataKey& key) const {
  return current_id() + ":" + Base64(Encrypt(keks_.front(), "wf-data-key", AsView(key)));
}

Result<DataKey> KeyRing::Unwrap(std::string_view wrapped) const {
  const size_t colon = wrapped.find(':');
  if (colon == std::string_view::npos) return Status::Invalid("a wrapped key without its KEK id");
  const std::string_view id = wrapped.substr(0, colon);
  for (size_t i = 0; i < keks_.size(); ++i) {
    if (kek_ids_[i] != id) continue;
    const auto& kek = keks_[i];
    auto box = Unbase64(std::string(wrapped.substr(colon + 1)));
    auto plain = box ? Decrypt(kek, "wf-data-key", *box) : std::nullopt;
    if (!plain || plain->size() != DataKey().size()) {
      return Status::Invalid(TrFormat("a data key wrapped under KEK {0} does not open", id));
    }
    DataKey key{};
    std::memcpy(key.data(), plain->data(), key.size());
    return key;
  }
  return Status::NotFound(TrFormat(
      "a data key is wrapped under KEK {0}, which the key file {1} does not hold", id, path_));
}

std::string KeyRing::KeyedHash(std::string_view value) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), index_.data(), static_cast<int>(index_.size()),
       reinterpret_cast<const unsigned char*>(value.data()), value.size(), digest, &length);
  return std::string(kKeyedHashPrefix) + Hex(digest, length);
}

Status KeyRing::AddKek() {
  keks_.insert(keks_.begin(), RandomKey());
  IndexKeks();
  return Save();
}

Status KeyRing::DropOldKeks() {
  keks_.resize(1);
  IndexKeks();
  return Save();
}

Status KeyRing::WriteTo(const std::string& file) const {
  std::ostringstream text;
  text << kKeyFileMagic << "\n"
       << "# wf's keys for personal data (README: Personal data). Keep this file secret and\n"
       << "# backed up: without it no personal value of any case can be read again.\n"
       << "index " << Hex(index_.data(), index_.size()) << "\n";
  for (const auto& kek : keks_) text << "kek " << Hex(kek.data(), kek.size()) << "\n";
  const std::string body = text.str();
  ::unlink(file.c_str());
  if (Status created = CreatePrivateFile(file); !created.ok()) return created;
  const int fd = ::open(file.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  bool ok = fd >= 0 && ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) &&
            ::fsync(fd) == 0;
  const int error = errno;
  if (fd >= 0) ::close(fd);
  if (!ok) {
    ::unlink(file.c_str());
    return Status::Internal(
        TrFormat("cannot write the key file {0}: {1}", path_, std::strerror(error)));
  }
  return Status::Ok();
}

Status KeyRing::Save() const {
  if (path_.empty()) return Status::Ok();
  const std::string temporary = path_ + "." + std::to_string(::getpid()) + ".new";
  if (Status written = WriteTo(temporary); !written.ok()) return written;
  if (::rename(temporary.c_str(), path_.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    return Status::Internal(
        TrFormat("cannot write the key file {0}: {1}", path_, std::strerror(error)));
  }
  return SyncParentFolder(path_);
}

// --- KeySource ---------------------------------------------------------------------------------

void KeySource::SetPath(std::string path) {
  std::lock_guard lock(mutex_);
  if (path == path_) return;
  path_ = std::move(path);
  ring_.reset();
}

Result<KeyRing*> KeySource::Ring(bool create) {
  std::lock_guard lock(mutex_);
  if (ring_) return ring_.get();
  if (path_.empty()) {
    ring_ = KeyRing::Ephemeral();
    return ring_.get();
  }
  auto loaded = KeyRing::Load(path_);
  if (!loaded && loaded.error().code() == ErrorCode::kNotFound && create) {
    loaded = KeyRing::Create(path_);
    if (loaded) {
      std::cerr << TrFormat(
                       "wf: made the key file {0} (mode 0600) for personal data; keep it secret "
                       "and backed up: without it no personal value can be read again",
                       path_)
                << "\n";
    } else if (loaded.error().code() == ErrorCode::kConflict) {
      loaded = KeyRing::Load(path_);  // another process made it meanwhile
    }
  }
  if (!loaded) return loaded.error();
  ring_ = std::move(*loaded);
  return ring_.get();
}

std::optional<DataKey> KeySource::Cached(const std::string& case_id) {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(case_id);
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

void KeySource::Remember(const std::string& case_id, const DataKey& key) {
  std::lock_guard lock(mutex_);
  if (keys_.size() >= 100000) keys_.clear();  // a bound, not an LRU: keys are cheap to read again
  keys_[case_id] = key;
}

void KeySource::Forget(const std::string& case_id) {
  std::lock_guard lock(mutex_);
  keys_.erase(case_id);
  SealCache::Instance().Forget();
}

// --- CaseSealer --------------------------------------------------------------------------------

CaseSealer::CaseSealer(std::string case_id, const DataKey& key, std::set<std::string> values,
                       OpenedBoxes opened)
    : active_(!values.empty()),
      case_id_(std::move(case_id)),
      key_(key),
      values_(std::move(values)),
      opened_(std::move(opened)) {
  sorted_values_.reserve(values_.size());
  long_values_.reserve(values_.size());
  shortest_ = values_.empty() ? 0 : values_.begin()->size();
  for (const std::string& value : values_) {
    sorted_values_.emplace_back(value);
    shortest_ = std::min(shortest_, value.size());
    if (value.size() >= kMinSubstringMatch) long_values_.push_back(value);
    // Only the text of a number can match one (CollectScalars keeps a number as its dump): a
    // citizen id "0792..." is not one, so the numbers of what is sealed need not be written out.
    if (!numeric_values_) numeric_values_ = IsNumberText(value);
  }
  std::sort(long_values_.begin(), long_values_.end(),
            [](std::string_view a, std::string_view b) { return a.size() > b.size(); });
}

bool CaseSealer::IsValue(std::string_view text) const {
  return std::binary_search(sorted_values_.begin(), sorted_values_.end(), text);
}

bool CaseSealer::IsNumberValue(const json& value) const {
  return numeric_values_ && IsValue(value.dump());
}

std::string CaseSealer::SealScalar(const json& value) const {
  for (const OpenedBox& opened : opened_) {
    if (opened.value.type() == value.type() && opened.value == value) return opened.box;
  }
  return SealValue(case_id_, key_, value);
}

bool CaseSealer::Contains(std::string_view text) const {
  if (!active_ || text.size() < shortest_ || IsSealed(text)) return false;
  if (IsValue(text)) return true;
  for (std::string_view value : long_values_) {
    if (value.size() <= text.size() && text.find(value) != std::string_view::npos) return true;
  }
  return false;
}

bool CaseSealer::MayHold(std::string_view json_text) const {
  // A value that JSON writes with escapes (quotes, backslashes, control characters) may not
  // appear as it is: the text is then walked.
  for (const std::string& value : values_) {
    if (json_text.find(value) != std::string_view::npos) return true;
    for (unsigned char c : value) {
      if (c == '"' || c == '\\' || c < 0x20) return true;
    }
  }
  return false;
}

bool CaseSealer::Touches(const json& value) const {
  if (!active_) return false;
  if (value.is_string()) return Contains(value.get_ref<const std::string&>());
  if (value.is_number()) return IsNumberValue(value);
  if (value.is_structured()) {
    for (const json& item : value) {
      if (Touches(item)) return true;
    }
  }
  return false;
}

json CaseSealer::Seal(const json& value) const {
  if (!active_) return value;
  json out = value;
  SealInPlace(out);
  return out;
}

void CaseSealer::SealInPlace(json& value, std::vector<std::pair<json*, json>>* replaced) const {
  if (!active_) return;
  const bool seal = value.is_string()   ? Contains(value.get_ref<const std::string&>())
                    : value.is_number() ? IsNumberValue(value)
                                        : false;
  if (seal) {
    json box = SealScalar(value);
    if (replaced != nullptr) replaced->emplace_back(&value, std::move(value));
    value = std::move(box);
  } else if (value.is_structured()) {
    for (json& item : value) SealInPlace(item, replaced);
  }
}

std::string CaseSealer::SealText(const std::string& text) const {
  if (!Contains(text)) return text;
  return SealScalar(json(text));
}

std::string CaseSealer::SealJsonText(const std::string& text) const {
  if (!active_ || !MayHold(text)) return text;
  json parsed = workflows::ParseJson(text);
  if (parsed.is_discarded()) return SealText(text);
  return workflows::DumpJson(Seal(parsed));
}

// --- Revealer ----------------------------------------------------------------------------------

json Revealer::Open(std::string_view sealed) {
  bool opened = false;
  return Open(sealed, &opened);
}

json Revealer::Open(std::string_view sealed, bool* opened) {
  *opened = false;
  const std::string_view case_id = SealedCaseView(sealed);
  auto it = keys_.find(case_id);
  if (it == keys_.end()) {
    const std::string id(case_id);
    auto key = key_of_(id);
    erased_[id] = key && !key->has_value();
    it = keys_.emplace(id, key ? *key : std::nullopt).first;
  }
  if (!it->second) return json(erased_.find(case_id)->second ? kErasedValue : kSealedValue);
  SealCache& cache = SealCache::Instance();
  if (auto value = cache.Opened(sealed)) {
    *opened = true;
    return std::move(*value);
  }
  auto value = OpenSealed(sealed, *it->second);
  if (!value) return json(kSealedValue);
  *opened = true;
  // Sealing the same value for the case again gives back this box (a box `wf start` made is
  // not encrypted anew by the engine's first write of the case).
  cache.Remember(SealingKey(*it->second, case_id, value->dump()), std::string(sealed), *value);
  return *value;
}

json Revealer::Reveal(const json& value) {
  json out = value;
  RevealInPlace(out);
  return out;
}

void Revealer::RevealInPlace(json& value) {
  if (value.is_string()) {
    auto& text = value.get_ref<std::string&>();
    if (!IsSealed(text)) return;
    bool opened = false;
    json plain = Open(text, &opened);
    if (opened && memo_ != nullptr && memo_->size() < kMaxMemo &&
        SealedCaseView(text) == memo_case_) {
      memo_->push_back(OpenedBox{plain, std::move(text)});
    }
    value = std::move(plain);
  } else if (value.is_structured()) {
    for (json& item : value) RevealInPlace(item);
  }
}

std::string Revealer::RevealText(const std::string& text) {
  if (!IsSealed(text)) return text;
  json value = Open(text);
  return value.is_string() ? value.get<std::string>() : value.dump();
}

std::string Revealer::RevealJsonText(const std::string& text) {
  if (!MaySeal(text)) return text;
  json parsed = workflows::ParseJson(text);
  if (parsed.is_discarded()) return RevealText(text);
  RevealInPlace(parsed);
  return workflows::DumpJson(parsed);
}

}  // namespace wf::engine
