#include "workflows/hash.hpp"

#include <openssl/evp.h>

#include <array>
#include <stdexcept>

namespace wf {

namespace {

// SHA-256 fetched once (EVP_sha256 makes OpenSSL 3 look the algorithm up on every digest), and
// one digest context per thread, reset for every digest: the history chain hashes every event.
const EVP_MD* Sha256() {
  static EVP_MD* fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return fetched != nullptr ? fetched : EVP_sha256();
}

struct DigestCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestCtx() { EVP_MD_CTX_free(ctx); }
};

}  // namespace

std::string Sha256Hex(std::string_view bytes) {
  thread_local DigestCtx c;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int length = 0;
  if (c.ctx == nullptr || EVP_DigestInit_ex2(c.ctx, Sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(c.ctx, bytes.data(), bytes.size()) != 1 ||
      EVP_DigestFinal_ex(c.ctx, digest.data(), &length) != 1) {
    throw std::runtime_error("SHA-256 digest failed");  // only on OpenSSL misconfiguration
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(std::size_t{length} * 2, '\0');
  for (unsigned int i = 0; i < length; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 0xf];
  }
  return out;
}

}  // namespace wf
