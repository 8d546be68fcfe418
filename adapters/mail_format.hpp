// The text of a mail message, as the notify adapter sends it over SMTP or keeps it in its outbox:
// addresses, header values, dates and the DATA section.
#pragma once

#include <ctime>
#include <string>
#include <string_view>

namespace wf::adapters::mail {

constexpr std::size_t kMaxAddressBytes = 254;

// A plain `local@domain` address: no spaces, controls or the characters that would let it break
// out of `<...>` in an SMTP command or a header.
bool IsAddress(std::string_view text);

// Standard base64 (RFC 4648) with padding, no line breaks.
std::string Base64(std::string_view data);

// The subject as a header value: as it is when printable ASCII, otherwise RFC 2047 encoded words
// ("=?UTF-8?B?...?=", at most 75 characters each, never splitting a UTF-8 character) folded onto
// continuation lines. Line breaks in the subject become spaces first (no header injection).
std::string EncodeSubject(std::string subject);

// RFC 5322 date, in UTC, independent of the locale.
std::string MailDate(std::time_t now);

// RFC 3339 time in UTC ("2026-12-04T08:00:00Z").
std::string IsoTime(std::time_t now);

// The body with CRLF line ends, dot-stuffed, ending in CRLF, followed by the end-of-data line.
std::string DataSection(std::string_view body);

}  // namespace wf::adapters::mail
