#pragma once
// The language people read wf in (DESIGN.md "Vietnamese"): English, or Vietnamese from the GNU
// gettext catalog built from po/vi.po. Only text for people goes through here; `--json`, exit
// codes, history events and anything a machine reads stay as they are in every language.
//
// Mark every message with one of the functions below, its first argument a string literal, so
// that xgettext finds it (po/CMakeLists.txt). Messages with values use fmt's placeholders,
// numbered where the Vietnamese order may differ: TrFormat("case {0} is {1}", id, status);
// a literal brace is written twice: "{{".

#include <map>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace wf {

enum class Language { kEnglish, kVietnamese };

namespace i18n {

// Chooses the language once, at the start of `main`, before any message is built: WF_LANG when
// set ("vi", "vi_VN", "en" ...), else the first of LC_ALL, LC_MESSAGES, LANG that is set; a value
// starting with "vi" means Vietnamese. Binds the catalog found under WF_LOCALEDIR, beside the
// program (../share/locale), in the build tree or where `cmake --install` put it; with no
// catalog the messages stay English and one warning says so.
void Init();
// Sets the language directly (tests); Vietnamese binds the catalog as Init does.
void SetLanguage(Language language);
Language Current();
inline bool Vietnamese() { return Current() == Language::kVietnamese; }
// The folder the catalog was read from; empty when none was bound.
const std::string& CatalogDir();

// Numbers for people: "1.234.567" and "2,5" in Vietnamese; "1234567" and "2.5" in English.
std::string Number(long long value);
std::string Decimal(double value, int places);
// "2026-11-27 23:59" (or a longer ISO text of which this is the start) for people: unchanged in
// English, "27/11/2026 23:59" in Vietnamese. A text of another shape is returned as it is.
std::string DateTime(const std::string& iso_local);
// "2026-11-27" -> "27/11/2026" in Vietnamese.
std::string Date(const std::string& iso_date);

// "vi" or "en".
const char* Code();
// The reader's text of one written per language (`title: {vi: ..., en: ...}`): the entry for
// the reader's language, else `fallback` (the procedure's default text).
const std::string& Pick(const std::map<std::string, std::string>& by_language,
                        const std::string& fallback);

}  // namespace i18n

// `msgid` in the reader's language. The pointer lives as long as the program.
const char* Tr(const char* msgid);
// The singular or plural form for `n`, in the reader's language.
const char* TrN(const char* singular, const char* plural, unsigned long n);
// A message with values: the translated format string filled in with fmt. A translation whose
// placeholders do not fit falls back to the English text, never to an exception.
std::string TrFill(const char* translated, const char* msgid, fmt::format_args args);
template <typename... Args>
std::string TrFormat(const char* msgid, const Args&... args) {
  return TrFill(Tr(msgid), msgid, fmt::make_format_args(args...));
}
template <typename... Args>
std::string TrFormatN(const char* singular, const char* plural, unsigned long n,
                      const Args&... args) {
  const char* english = n == 1 ? singular : plural;
  return TrFill(TrN(singular, plural, n), english, fmt::make_format_args(args...));
}
// Marks a literal for extraction where it is stored in a table and translated later with
// Tr(variable).
constexpr const char* TrNoop(const char* msgid) { return msgid; }

}  // namespace wf
