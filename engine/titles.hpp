#pragma once
// Titles in the reader's language (DESIGN.md "Vietnamese"). The store keeps a procedure's and a
// task's title in the procedure's default language (`procedures.title`, `tasks.title`: the `en`
// text of `title: {vi: ..., en: ...}`, else the first); a reader of another language gets the
// procedure's own text for that language, read from the deployed sources.

#include <map>
#include <string>
#include <utility>

#include "engine/runtime.hpp"
#include "engine/store.hpp"

namespace wf::engine {

class TitleBook {
 public:
  // Reads every deployed procedure version through `cache`, only when the reader's language
  // (i18n) has texts to find: in English, or where no procedure writes titles per language,
  // the book is empty and gives the stored titles back.
  static Result<TitleBook> Load(StoreTx& tx, ProcedureCache& cache);

  // The title of procedure `name` in the reader's language; `stored` when it has none.
  const std::string& Procedure(const std::string& name, const std::string& stored) const;
  // The title of the task of step `step` whose stored title is `stored`.
  const std::string& Task(const std::string& step, const std::string& stored) const;

 private:
  std::map<std::string, std::string> procedures_;                     // name -> title
  std::map<std::pair<std::string, std::string>, std::string> tasks_;  // (step, stored) -> title
};

}  // namespace wf::engine
