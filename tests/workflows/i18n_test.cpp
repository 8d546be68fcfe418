// The reader's language: gettext catalog, numbers, dates, and texts written per language.
#include <catch2/catch.hpp>

#include "workflows/i18n.hpp"
#include "workflows/loader.hpp"

namespace wf::workflows {
namespace {

// Sets the language for one test and restores English after it.
struct InLanguage {
  explicit InLanguage(Language language) { i18n::SetLanguage(language); }
  ~InLanguage() { i18n::SetLanguage(Language::kEnglish); }
};

std::string Lines(const LoadResult& result) {
  std::string out;
  for (const auto& d : result.diagnostics) out += d.message + "\n";
  return out;
}

TEST_CASE("Vietnamese reads the built catalog; English leaves every message as written",
          "[workflows][i18n]") {
  CHECK(std::string(Tr("Usage")) == "Usage");
  CHECK(TrFormat("wf: internal error: {0}\n", "x") == "wf: internal error: x\n");
  InLanguage vi(Language::kVietnamese);
  REQUIRE(i18n::Vietnamese());  // the catalog of the build tree was found
  CHECK_FALSE(i18n::CatalogDir().empty());
  CHECK(std::string(Tr("Usage")) != "Usage");
  CHECK(TrFormat("wf: internal error: {0}\n", "x").find("x") != std::string::npos);
  CHECK(TrFormat("wf: internal error: {0}\n", "x") != "wf: internal error: x\n");
  // A message the catalog does not know stays as written.
  CHECK(std::string(Tr("no such message in any catalog")) == "no such message in any catalog");
}

TEST_CASE("a translation whose placeholders do not fit falls back to the English text",
          "[workflows][i18n]") {
  CHECK(TrFill("{0} {1} {2}", "{0} and {1}", fmt::make_format_args("a", "b")) == "a and b");
  CHECK(TrFill("{", "{0}", fmt::make_format_args("a")) == "a");
}

TEST_CASE("numbers and dates for people follow the reader's language", "[workflows][i18n]") {
  CHECK(i18n::Number(1234567) == "1234567");
  CHECK(i18n::Decimal(1234.5, 1) == "1234.5");
  CHECK(i18n::DateTime("2026-11-27 23:59") == "2026-11-27 23:59");
  InLanguage vi(Language::kVietnamese);
  CHECK(i18n::Number(1234567) == "1.234.567");
  CHECK(i18n::Number(-1234) == "-1.234");
  CHECK(i18n::Number(999) == "999");
  CHECK(i18n::Decimal(1234.5, 1) == "1.234,5");
  CHECK(i18n::Decimal(-0.25, 2) == "-0,25");
  CHECK(i18n::Decimal(3, 0) == "3");
  CHECK(i18n::DateTime("2026-11-27 23:59") == "27/11/2026 23:59");
  CHECK(i18n::DateTime("2026-11-27T23:59:59+07:00") == "27/11/2026 23:59");
  CHECK(i18n::Date("2026-01-07") == "07/01/2026");
  CHECK(i18n::DateTime("-") == "-");
  CHECK(i18n::DateTime("not a date at all") == "not a date at all");
}

const char* kTitles = R"(procedure: permit
agency: town
title: {vi: Cấp giấy phép, en: Permit}
roles: {clerk: {}}
steps:
  review:
    task:
      vi: Xem xét hồ sơ
      en: Review the file
    role: clerk
    form:
      ok: {type: boolean, label: {en: Approve, vi: Đồng ý}}
      note: {type: string, label: Note}
    next: done
  done: {end: completed}
)";

TEST_CASE("title, task and label take a text per language; English is the default",
          "[workflows][i18n][loader]") {
  LoadResult result = LoadProcedure(kTitles, "permit.yaml");
  INFO(Lines(result));
  REQUIRE(result.ok());
  const Procedure& p = *result.procedure;
  CHECK(p.title == "Permit");
  CHECK(p.titles.at("vi") == "Cấp giấy phép");
  const Step& review = p.steps.front();
  CHECK(review.task == "Review the file");
  CHECK(review.task_titles.at("vi") == "Xem xét hồ sơ");
  CHECK(review.form.at(0).label == "Approve");
  CHECK(review.form.at(0).labels.at("vi") == "Đồng ý");
  CHECK(review.form.at(1).label == "Note");
  CHECK(review.form.at(1).labels.empty());
  CHECK(i18n::Pick(p.titles, p.title) == "Permit");
  {
    InLanguage vi(Language::kVietnamese);
    CHECK(i18n::Pick(p.titles, p.title) == "Cấp giấy phép");
    CHECK(i18n::Pick(review.form.at(1).labels, review.form.at(1).label) == "Note");
  }
  // Without `en`, the first text written is the default.
  std::string vi_only = kTitles;
  vi_only.replace(vi_only.find(", en: Permit"), 12, "");
  LoadResult only = LoadProcedure(vi_only, "permit.yaml");
  REQUIRE(only.ok());
  CHECK(only.procedure->title == "Cấp giấy phép");
}

TEST_CASE("a text per language names languages and gives text", "[workflows][i18n][loader]") {
  auto diagnose = [](const std::string& title) {
    std::string text = kTitles;
    text.replace(text.find("{vi: Cấp giấy phép, en: Permit}"),
                 std::string("{vi: Cấp giấy phép, en: Permit}").size(), title);
    return Lines(LoadProcedure(text, "permit.yaml"));
  };
  CHECK_THAT(diagnose("{vi_VN: Cấp giấy phép}"),
             Catch::Contains("'title': 'vi_VN' is not a language code"));
  CHECK_THAT(diagnose("{}"), Catch::Contains("'title' needs a text, or one per language"));
  CHECK_THAT(diagnose("{vi: [a, b]}"), Catch::Contains("'title.vi' must be a string"));
}

}  // namespace
}  // namespace wf::workflows
