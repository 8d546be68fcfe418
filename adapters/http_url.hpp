// The http adapter's text rules: a department's base URL taken apart, the operation as a path
// segment, header values that cannot end a header, header tokens.
#pragma once

#include <string>
#include <string_view>

#include "workflows/status.hpp"

namespace wf::adapters::http_url {

// Where the URL points: the parts a connection and a request target need.
struct Url {
  bool tls = false;
  std::string host;         // without brackets, for resolving, SNI and verification
  std::string port;         // always set: 80/443 when the URL names none
  std::string base_path;    // "" or "/population", never ending in '/'
  std::string host_header;  // as sent in Host:
};

// Parses `base_url` (http:// or https://, a host, an optional port and path; no query, fragment
// or user info). `where` names the setting in error messages.
Result<Url> ParseUrl(std::string_view text, const std::string& where);

// The operation as a path segment: unreserved characters and '/' kept, the rest %XX.
std::string EncodeOperation(std::string_view operation);

// A header value must not be able to end the header: CR, LF and NUL become spaces.
std::string HeaderSafe(std::string_view value);

// A character of an HTTP token (RFC 9110).
bool IsTokenChar(char c);

// ASCII case-insensitive equality.
bool IEquals(std::string_view a, std::string_view b);

}  // namespace wf::adapters::http_url
