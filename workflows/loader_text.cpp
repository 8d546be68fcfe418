// Texts people read, written once or per language (DESIGN.md "Vietnamese"): `title`, `task`
// and a form field's `label` take `{vi: ..., en: ...}` as well as a plain string.
#include "workflows/i18n.hpp"
#include "workflows/loader_builder.hpp"

namespace wf::workflows::detail {

namespace {

// "vi", "en", "fr": two or three lower-case letters (ISO 639).
bool IsLanguageCode(const std::string& code) {
  if (code.size() < 2 || code.size() > 3) return false;
  for (char c : code) {
    if (c < 'a' || c > 'z') return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> Builder::LocalText(const YamlNode& value, const std::string& what,
                                              TextByLanguage* by_language) {
  if (!value.IsMapping()) return Text(value, what);
  if (value.entries.empty()) {
    Error(value.where, TrFormat("{0} needs a text, or one per language such as "
                                "{{vi: ..., en: ...}}",
                                Quoted(what)));
    return std::nullopt;
  }
  std::optional<std::string> first;
  bool ok = true;
  for (const auto& [key, text] : value.entries) {
    if (!key.IsScalar() || !IsLanguageCode(key.scalar)) {
      Error(key.where, TrFormat("{0}: {1} is not a language code; write two or three lower-case "
                                "letters such as vi or en",
                                Quoted(what), Quoted(key.scalar)));
      ok = false;
      continue;
    }
    std::optional<std::string> one = Text(text, what + "." + key.scalar);
    if (!one) {
      ok = false;
      continue;
    }
    if (!first) first = *one;
    (*by_language)[key.scalar] = *one;
  }
  if (!ok) return std::nullopt;
  auto english = by_language->find("en");
  return english != by_language->end() ? english->second : *first;
}

}  // namespace wf::workflows::detail
