#pragma once

// Tamper evidence beyond the database (DESIGN.md decision 11): an anchor is an Ed25519-signed
// list of every chain head at a moment, kept outside the database. A superuser can rewrite a
// chain consistently (recomputing every hash after the change) and the chain still verifies; the
// anchor's signed head for that case then no longer matches, so the rewrite is caught.
//
// Anchor file (JSON Lines, README "Anchors"):
//   {"anchor":"wf-anchor/1","at":"<RFC 3339>","database":"<URL without password>"}
//   {"case":"<id>","seq":<n>,"hash":"<hex>"}          one line per chain, live or archived
//   {"chains":<n>,"body_sha256":"<hex>","key":"<hex>","signature":"<base64>"}
// body_sha256 is the SHA-256 of every byte before the last line; the signature is Ed25519 over
// the ASCII text "wf-anchor/1 " + body_sha256; key is the SHA-256 of the public key (DER).
//
// Keys are PEM: the private key PKCS#8, the public key SubjectPublicKeyInfo, as `openssl genpkey
// -algorithm ed25519` writes them. Everything here is OpenSSL EVP; thread-safe; no exceptions.

#include <cstdint>
#include <functional>
#include <istream>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>

#include "engine/history.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// SHA-256 over bytes given piece by piece (OpenSSL EVP), for files too large to hold.
class Sha256Stream {
 public:
  Sha256Stream();
  ~Sha256Stream();
  Sha256Stream(const Sha256Stream&) = delete;
  Sha256Stream& operator=(const Sha256Stream&) = delete;
  void Update(std::string_view bytes);
  // The digest of everything given so far, as 64 lowercase hex digits; the stream can go on.
  std::string HexDigest() const;

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

struct SigningKeys {
  std::string private_pem;
  std::string public_pem;
};

// A new Ed25519 key pair. kInternal when OpenSSL fails.
Result<SigningKeys> GenerateSigningKeys();

// SHA-256 hex of the public key's DER encoding; kInvalid when `public_pem` is not an Ed25519
// public key. Also accepts a private key (its public half).
Result<std::string> KeyFingerprint(const std::string& pem);

// Ed25519 signature of `message` with the private key, base64. kInvalid for a key that is not an
// Ed25519 private key PEM.
Result<std::string> SignMessage(const std::string& private_pem, const std::string& message);
// True when `signature_base64` is a valid signature of `message` by the public key. kInvalid for
// a key that is not an Ed25519 public key PEM.
Result<bool> VerifyMessage(const std::string& public_pem, const std::string& message,
                           const std::string& signature_base64);

// Writes an anchor to `out`: the header, every head `for_each_head` gives, the signed trailer.
// Returns how many chains. kInvalid for a bad key, kInternal when `out` fails, or the status the
// walk returns.
Result<std::int64_t> WriteAnchor(
    std::ostream& out, const std::string& private_pem, const std::string& at,
    const std::string& database,
    const std::function<Status(const std::function<Status(const ChainHead&)>&)>& for_each_head);

// An anchor read back, its signature checked.
struct Anchor {
  std::string at;
  std::string database;
  std::string key;                         // fingerprint of the signing key
  std::map<std::string, ChainHead> heads;  // by case
};

// Reads an anchor from `in` and checks it against `public_pem`. kInvalid "FILE:LINE: ..." for a
// file that is not an anchor; kHistoryBroken when the body does not hash to its trailer or the
// signature does not verify with this key (the anchor was altered, or signed by another key).
Result<Anchor> ReadAnchor(std::istream& in, const std::string& file, const std::string& public_pem);

// Checks history against an anchor: every anchored chain must still hold the anchored event at
// its seq with the anchored hash (history only grew). Feed every event of the checked cases in
// chain order (Feed ignores cases the anchor does not name), then the archived chains, then
// Finish. Each call returns the first problem it finds, as a ChainBreak naming case and seq.
class AnchorCheck {
 public:
  // Checks every anchored chain, or only `only_case`'s.
  explicit AnchorCheck(const Anchor& anchor, std::optional<std::string> only_case = std::nullopt);
  std::optional<ChainBreak> Feed(const HistoryEvent& event);
  // An archived chain: its kept head must be the anchored one, or newer.
  std::optional<ChainBreak> FeedArchived(const ChainHead& head);
  // The anchored chains never seen: their history is gone.
  std::optional<ChainBreak> Finish();
  std::int64_t checked() const { return checked_; }

 private:
  const Anchor& anchor_;
  std::optional<std::string> only_case_;
  std::map<std::string, bool> seen_;
  std::int64_t checked_ = 0;
};

}  // namespace wf::engine
