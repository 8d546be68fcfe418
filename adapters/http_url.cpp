#include "adapters/http_url.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace wf::adapters::http_url {

Result<Url> ParseUrl(std::string_view text, const std::string& where) {
  auto bad = [&](const std::string& why) {
    return Status::Invalid(where + ": `url` " + why + " (expected like http://host:8080/path)");
  };
  Url url;
  std::string lower(text.substr(0, std::min<std::size_t>(text.size(), 8)));
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (lower.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
  } else if (lower.rfind("https://", 0) == 0) {
    url.tls = true;
    text.remove_prefix(8);
  } else {
    return bad("must start with http:// or https://");
  }
  if (text.find_first_of("?# \t\r\n") != std::string_view::npos) {
    return bad("may not hold a query, a fragment or spaces");
  }
  std::size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? "" : text.substr(slash);
  if (authority.find('@') != std::string_view::npos) return bad("may not hold a user or password");
  std::string_view port;
  bool bracketed = false;
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return bad("has an IPv6 address without ']'");
    url.host = std::string(authority.substr(1, close - 1));
    bracketed = true;
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad("has text after the IPv6 address");
      port = rest.substr(1);
    }
  } else {
    std::size_t colon = authority.find(':');
    url.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (url.host.empty()) return bad("has no host");
  std::string default_port = url.tls ? "443" : "80";
  if (port.empty()) {
    url.port = default_port;
  } else {
    long number = 0;
    for (char c : port) {
      if (c < '0' || c > '9' || number > 65535) return bad("has a bad port");
      number = number * 10 + (c - '0');
    }
    if (number < 1 || number > 65535) return bad("has a bad port");
    url.port = std::to_string(number);
  }
  url.base_path = std::string(path);
  while (!url.base_path.empty() && url.base_path.back() == '/') url.base_path.pop_back();
  url.host_header = bracketed ? "[" + url.host + "]" : url.host;
  if (url.port != default_port) url.host_header += ":" + url.port;
  return url;
}

std::string EncodeOperation(std::string_view operation) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : operation) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~' || c == '/') {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string HeaderSafe(std::string_view value) {
  std::string out(value);
  for (char& c : out) {
    if (c == '\r' || c == '\n' || c == '\0') c = ' ';
  }
  return out;
}

bool IsTokenChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace wf::adapters::http_url
