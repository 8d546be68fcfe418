#pragma once
// Base64 (RFC 4648, with padding) through OpenSSL's EVP block coders: anchors' signatures and
// sealed personal values (engine/personal.hpp) are stored as text.
#include <optional>
#include <string>

namespace wf::engine {

std::string Base64(const std::string& bytes);
// The bytes of `text`; nullopt when it is not padded base64.
std::optional<std::string> Unbase64(const std::string& text);

}  // namespace wf::engine
