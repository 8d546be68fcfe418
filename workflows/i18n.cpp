#include "workflows/i18n.hpp"

#include <libintl.h>

#include <atomic>
#include <clocale>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <vector>

namespace wf {

namespace {

constexpr const char* kDomain = "wf";

std::atomic<Language> current{Language::kEnglish};
std::string catalog_dir;
bool language_set = false;  // LANGUAGE=vi was set here (undone when English is chosen again)

bool StartsWithVi(const char* value) { return value && std::strncmp(value, "vi", 2) == 0; }

const char* FirstSet(std::initializer_list<const char*> names) {
  for (const char* name : names) {
    const char* value = std::getenv(name);
    if (value && *value) return value;
  }
  return nullptr;
}

// The first folder holding vi/LC_MESSAGES/wf.mo, or empty.
std::string FindCatalogDir() {
  std::vector<std::filesystem::path> candidates;
  if (const char* dir = std::getenv("WF_LOCALEDIR"); dir && *dir) candidates.emplace_back(dir);
  std::error_code error;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", error);
  if (!error) candidates.push_back(exe.parent_path() / ".." / "share" / "locale");
#ifdef WF_BUILD_LOCALEDIR
  candidates.emplace_back(WF_BUILD_LOCALEDIR);
#endif
#ifdef WF_INSTALL_LOCALEDIR
  candidates.emplace_back(WF_INSTALL_LOCALEDIR);
#endif
  for (const auto& dir : candidates) {
    if (std::filesystem::is_regular_file(dir / "vi" / "LC_MESSAGES" / "wf.mo", error)) {
      return std::filesystem::weakly_canonical(dir, error).string();
    }
  }
  return "";
}

// gettext answers only under a locale other than C for messages; C.UTF-8 is always there on
// Debian 12 (glibc's own), so a machine without vi_VN still reads Vietnamese. LANGUAGE then
// names the catalog; the codeset is UTF-8 whatever LC_CTYPE says.
bool BindCatalog() {
  catalog_dir = FindCatalogDir();
  if (catalog_dir.empty()) return false;
  const char* locale = std::setlocale(LC_MESSAGES, "");
  if (!locale || std::strcmp(locale, "C") == 0 || std::strcmp(locale, "POSIX") == 0) {
    std::setlocale(LC_MESSAGES, "C.UTF-8");
  }
  // The C library's own messages (strerror) come through the same LANGUAGE: they need a UTF-8
  // character type too, or their letters print as '?'.
  const char* ctype = std::setlocale(LC_CTYPE, nullptr);
  if (!ctype || std::strcmp(ctype, "C") == 0 || std::strcmp(ctype, "POSIX") == 0) {
    std::setlocale(LC_CTYPE, "C.UTF-8");
  }
  if (!StartsWithVi(std::getenv("LANGUAGE"))) {
    setenv("LANGUAGE", "vi", 1);
    language_set = true;
  }
  bindtextdomain(kDomain, catalog_dir.c_str());
  bind_textdomain_codeset(kDomain, "UTF-8");
  return true;
}

// "1234567" -> "1.234.567".
std::string Group(std::string digits, char separator) {
  for (int i = static_cast<int>(digits.size()) - 3; i > 0; i -= 3) {
    digits.insert(static_cast<size_t>(i), 1, separator);
  }
  return digits;
}

bool Digits(const std::string& text, size_t from, size_t count) {
  for (size_t i = from; i < from + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

bool IsIsoDate(const std::string& text) {
  return text.size() >= 10 && Digits(text, 0, 4) && text[4] == '-' && Digits(text, 5, 2) &&
         text[7] == '-' && Digits(text, 8, 2);
}

}  // namespace

namespace i18n {

void Init() {
  const char* chosen = FirstSet({"WF_LANG"});
  if (!chosen) chosen = FirstSet({"LC_ALL", "LC_MESSAGES", "LANG"});
  SetLanguage(StartsWithVi(chosen) ? Language::kVietnamese : Language::kEnglish);
}

void SetLanguage(Language language) {
  if (language == Language::kVietnamese && !BindCatalog()) {
    std::cerr << "wf: the Vietnamese catalog (vi/LC_MESSAGES/wf.mo) was not found beside the "
                 "program or under WF_LOCALEDIR; messages stay in English\n";
    language = Language::kEnglish;
  }
  if (language == Language::kEnglish && language_set) {
    unsetenv("LANGUAGE");
    language_set = false;
  }
  current = language;
}

Language Current() { return current; }

const std::string& CatalogDir() { return catalog_dir; }

std::string Number(long long value) {
  if (!Vietnamese()) return std::to_string(value);
  std::string digits = std::to_string(value < 0 ? -static_cast<unsigned long long>(value)
                                                : static_cast<unsigned long long>(value));
  return (value < 0 ? "-" : "") + Group(std::move(digits), '.');
}

std::string Decimal(double value, int places) {
  std::string text = fmt::format("{:.{}f}", value, places);
  if (!Vietnamese()) return text;
  std::string sign;
  if (!text.empty() && text.front() == '-') {
    sign = "-";
    text.erase(0, 1);
  }
  auto point = text.find('.');
  std::string whole = text.substr(0, point);
  std::string fraction = point == std::string::npos ? "" : "," + text.substr(point + 1);
  return sign + Group(whole, '.') + fraction;
}

std::string DateTime(const std::string& iso_local) {
  if (!Vietnamese() || iso_local.size() < 16 || !IsIsoDate(iso_local) ||
      (iso_local[10] != ' ' && iso_local[10] != 'T')) {
    return iso_local;
  }
  return Date(iso_local.substr(0, 10)) + " " + iso_local.substr(11, 5);
}

std::string Date(const std::string& iso_date) {
  if (!Vietnamese() || iso_date.size() != 10 || !IsIsoDate(iso_date)) return iso_date;
  std::string out = iso_date.substr(8, 2);
  out += '/';
  out += iso_date.substr(5, 2);
  out += '/';
  out += iso_date.substr(0, 4);
  return out;
}

const char* Code() { return Vietnamese() ? "vi" : "en"; }

const std::string& Pick(const std::map<std::string, std::string>& by_language,
                        const std::string& fallback) {
  auto found = by_language.find(Code());
  return found != by_language.end() ? found->second : fallback;
}

}  // namespace i18n

const char* Tr(const char* msgid) {
  if (current.load(std::memory_order_relaxed) != Language::kVietnamese || !*msgid) return msgid;
  return dgettext(kDomain, msgid);
}

const char* TrN(const char* singular, const char* plural, unsigned long n) {
  if (current.load(std::memory_order_relaxed) != Language::kVietnamese) {
    return n == 1 ? singular : plural;
  }
  return dngettext(kDomain, singular, plural, n);
}

std::string TrFill(const char* translated, const char* msgid, fmt::format_args args) {
  try {
    return fmt::vformat(translated, args);
  } catch (const fmt::format_error&) {
    try {
      return fmt::vformat(msgid, args);
    } catch (const fmt::format_error&) {
      return msgid;
    }
  }
}

}  // namespace wf
