#include "engine/anchor.hpp"
#include "engine/base64.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <nlohmann/json.hpp>

#include "workflows/hash.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

constexpr std::string_view kAnchorFormat = "wf-anchor/1";

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Bio = std::unique_ptr<BIO, BioFree>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdCtxFree>;

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < size; ++i) {
    out.push_back(kDigits[bytes[i] >> 4]);
    out.push_back(kDigits[bytes[i] & 15]);
  }
  return out;
}

std::string BioText(BIO* bio) {
  char* data = nullptr;
  long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(size));
}

Pkey ReadPrivate(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (key && EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) key.reset();
  return key;
}

Pkey ReadPublic(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Pkey key(bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (!key) return ReadPrivate(pem);
  if (EVP_PKEY_id(key.get()) != EVP_PKEY_ED25519) key.reset();
  return key;
}

std::string SignedText(const std::string& body_sha256) {
  return std::string(kAnchorFormat) + " " + body_sha256;
}

}  // namespace

// --- Sha256Stream -----------------------------------------------------------------------------

struct Sha256Stream::Context {
  MdCtx md{EVP_MD_CTX_new()};
};

Sha256Stream::Sha256Stream() : context_(std::make_unique<Context>()) {
  EVP_DigestInit_ex(context_->md.get(), EVP_sha256(), nullptr);
}
Sha256Stream::~Sha256Stream() = default;

void Sha256Stream::Update(std::string_view bytes) {
  EVP_DigestUpdate(context_->md.get(), bytes.data(), bytes.size());
}

std::string Sha256Stream::HexDigest() const {
  MdCtx copy(EVP_MD_CTX_new());
  EVP_MD_CTX_copy_ex(copy.get(), context_->md.get());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_DigestFinal_ex(copy.get(), digest, &size);
  return Hex(digest, size);
}

// --- keys and signatures ----------------------------------------------------------------------

Result<SigningKeys> GenerateSigningKeys() {
  std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> ctx(
      EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
  EVP_PKEY* raw = nullptr;
  if (!ctx || EVP_PKEY_keygen_init(ctx.get()) <= 0 || EVP_PKEY_keygen(ctx.get(), &raw) <= 0) {
    return Status::Internal(Tr("cannot generate an Ed25519 key with OpenSSL"));
  }
  Pkey key(raw);
  Bio priv(BIO_new(BIO_s_mem()));
  Bio pub(BIO_new(BIO_s_mem()));
  if (!priv || !pub ||
      PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
    return Status::Internal(Tr("cannot write the Ed25519 key as PEM"));
  }
  return SigningKeys{BioText(priv.get()), BioText(pub.get())};
}

Result<std::string> KeyFingerprint(const std::string& pem) {
  Pkey key = ReadPublic(pem);
  if (!key) return Status::Invalid(Tr("not an Ed25519 key in PEM"));
  unsigned char* der = nullptr;
  int size = i2d_PUBKEY(key.get(), &der);
  if (size <= 0) return Status::Internal(Tr("cannot encode the public key"));
  std::string bytes(reinterpret_cast<char*>(der), static_cast<size_t>(size));
  OPENSSL_free(der);
  return Sha256Hex(bytes);
}

Result<std::string> SignMessage(const std::string& private_pem, const std::string& message) {
  Pkey key = ReadPrivate(private_pem);
  if (!key) return Status::Invalid(Tr("not an Ed25519 private key in PEM"));
  MdCtx ctx(EVP_MD_CTX_new());
  size_t size = 0;
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Status::Internal(Tr("cannot sign with OpenSSL"));
  }
  std::string signature(size, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &size,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return Status::Internal(Tr("cannot sign with OpenSSL"));
  }
  signature.resize(size);
  return Base64(signature);
}

Result<bool> VerifyMessage(const std::string& public_pem, const std::string& message,
                           const std::string& signature_base64) {
  Pkey key = ReadPublic(public_pem);
  if (!key) return Status::Invalid(Tr("not an Ed25519 public key in PEM"));
  std::optional<std::string> signature = Unbase64(signature_base64);
  if (!signature) return false;
  MdCtx ctx(EVP_MD_CTX_new());
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, key.get()) != 1) {
    return Status::Internal(Tr("cannot verify with OpenSSL"));
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature->data()),
                          signature->size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

// --- anchors ----------------------------------------------------------------------------------

Result<std::int64_t> WriteAnchor(
    std::ostream& out, const std::string& private_pem, const std::string& at,
    const std::string& database,
    const std::function<Status(const std::function<Status(const ChainHead&)>&)>& for_each_head) {
  Result<std::string> key = KeyFingerprint(private_pem);
  if (!key) {
    if (key.error().code() != ErrorCode::kInvalid) return key.error();
    return Status::Invalid(Tr("the signing key is not an Ed25519 key in PEM"));
  }
  Sha256Stream body;
  auto emit = [&](const std::string& line) -> Status {
    body.Update(line);
    body.Update("\n");
    out << line << '\n';
    if (!out) return Status::Internal(Tr("cannot write the anchor"));
    return Status::Ok();
  };
  nlohmann::json header = {
      {"anchor", std::string(kAnchorFormat)}, {"at", at}, {"database", database}};
  if (Status s = emit(header.dump()); !s.ok()) return s;
  std::int64_t chains = 0;
  Status walked = for_each_head([&](const ChainHead& head) {
    ++chains;
    return emit(
        nlohmann::json{{"case", head.case_id}, {"seq", head.seq}, {"hash", head.hash}}.dump());
  });
  if (!walked.ok()) return walked;
  std::string body_sha256 = body.HexDigest();
  Result<std::string> signature = SignMessage(private_pem, SignedText(body_sha256));
  if (!signature) return signature.error();
  nlohmann::json trailer = {
      {"chains", chains}, {"body_sha256", body_sha256}, {"key", *key}, {"signature", *signature}};
  out << trailer.dump() << '\n';
  out.flush();
  if (!out) return Status::Internal(Tr("cannot write the anchor"));
  return chains;
}

Result<Anchor> ReadAnchor(std::istream& in, const std::string& file,
                          const std::string& public_pem) {
  Result<std::string> key = KeyFingerprint(public_pem);
  if (!key) {
    if (key.error().code() != ErrorCode::kInvalid) return key.error();
    return Status::Invalid(Tr("the public key is not an Ed25519 key in PEM"));
  }
  Anchor anchor;
  Sha256Stream body;
  std::string line, previous;
  bool have_previous = false;
  std::int64_t number = 0;
  auto bad = [&](std::int64_t at_line, const std::string& why) {
    return Status::Invalid(TrFormat("{0}:{1}: {2} (not a wf anchor file?)", file, at_line, why));
  };
  // The trailer is the last line, so each line is taken as body only once another follows.
  while (std::getline(in, line)) {
    ++number;
    if (!have_previous) {
      nlohmann::json header = nlohmann::json::parse(line, nullptr, false);
      if (!header.is_object() || header.value("anchor", "") != kAnchorFormat) {
        return bad(number, Tr("expected the header {\"anchor\":\"wf-anchor/1\",...}"));
      }
      anchor.at = header.value("at", "");
      anchor.database = header.value("database", "");
    } else if (number > 2) {
      nlohmann::json head = nlohmann::json::parse(previous, nullptr, false);
      if (!head.is_object() || !head["case"].is_string() || !head["seq"].is_number_integer() ||
          !head["hash"].is_string()) {
        return bad(number - 1, Tr("expected {\"case\",\"seq\",\"hash\"}"));
      }
      ChainHead h{head["case"].get<std::string>(), head["seq"].get<std::int64_t>(),
                  head["hash"].get<std::string>()};
      anchor.heads[h.case_id] = h;
    }
    if (have_previous) {
      body.Update(previous);
      body.Update("\n");
    }
    previous = line;
    have_previous = true;
  }
  if (number < 2) return bad(number, Tr("too short: no trailer"));
  nlohmann::json trailer = nlohmann::json::parse(previous, nullptr, false);
  if (!trailer.is_object() || !trailer["signature"].is_string() ||
      !trailer["body_sha256"].is_string() || !trailer["chains"].is_number_integer()) {
    return bad(number,
               Tr("expected the trailer {\"chains\",\"body_sha256\",\"key\",\"signature\"}"));
  }
  std::string body_sha256 = body.HexDigest();
  if (trailer["body_sha256"].get<std::string>() != body_sha256 ||
      trailer["chains"].get<std::int64_t>() != static_cast<std::int64_t>(anchor.heads.size())) {
    return Status::HistoryBroken(
        TrFormat("anchor {0} was altered: its lines do not hash to its trailer", file));
  }
  anchor.key = trailer.value("key", "");
  Result<bool> valid =
      VerifyMessage(public_pem, SignedText(body_sha256), trailer["signature"].get<std::string>());
  if (!valid) return valid.error();
  if (!*valid) {
    return Status::HistoryBroken(
        TrFormat("anchor {0}: the signature does not verify with this public key (key {1}..., "
                 "anchor signed by {2}...)",
                 file, key->substr(0, 16), anchor.key.substr(0, 16)));
  }
  return anchor;
}

AnchorCheck::AnchorCheck(const Anchor& anchor, std::optional<std::string> only_case)
    : anchor_(anchor), only_case_(std::move(only_case)) {}

std::optional<ChainBreak> AnchorCheck::Feed(const HistoryEvent& event) {
  auto it = anchor_.heads.find(event.case_id);
  if (it == anchor_.heads.end() || it->second.seq != event.seq) return std::nullopt;
  seen_[event.case_id] = true;
  ++checked_;
  if (event.hash != it->second.hash) {
    return ChainBreak{event.case_id, event.seq,
                      TrFormat("differs from the anchor of {0}: the history up to this event was "
                               "rewritten",
                               anchor_.at)};
  }
  return std::nullopt;
}

std::optional<ChainBreak> AnchorCheck::FeedArchived(const ChainHead& head) {
  auto it = anchor_.heads.find(head.case_id);
  if (it == anchor_.heads.end()) return std::nullopt;
  if (only_case_ && *only_case_ != head.case_id) return std::nullopt;
  seen_[head.case_id] = true;
  ++checked_;
  // An archive keeps the head only: an anchored event older than the head is in the archive
  // file (wf audit verify --archive checks that chain); the same event must match.
  if (head.seq < it->second.seq || (head.seq == it->second.seq && head.hash != it->second.hash)) {
    return ChainBreak{head.case_id, it->second.seq,
                      TrFormat("the archived chain's head (seq {0}) differs from the anchor of {1}",
                               head.seq, anchor_.at)};
  }
  return std::nullopt;
}

std::optional<ChainBreak> AnchorCheck::Finish() {
  for (const auto& [case_id, head] : anchor_.heads) {
    if (only_case_ && *only_case_ != case_id) continue;
    if (!seen_.count(case_id)) {
      return ChainBreak{case_id, head.seq,
                        TrFormat("is missing; the anchor of {0} recorded it (hash {1}...): history "
                                 "was removed",
                                 anchor_.at, head.hash.substr(0, 12))};
    }
  }
  return std::nullopt;
}

}  // namespace wf::engine
