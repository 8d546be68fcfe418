#pragma once

#include <string>
#include <string_view>

namespace wf {

// SHA-256 of `bytes` as 64 lowercase hex digits (OpenSSL EVP). Thread-safe.
std::string Sha256Hex(std::string_view bytes);

}  // namespace wf
