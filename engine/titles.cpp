#include "engine/titles.hpp"

#include "workflows/i18n.hpp"

namespace wf::engine {

Result<TitleBook> TitleBook::Load(StoreTx& tx, ProcedureCache& cache) {
  TitleBook book;
  if (!i18n::Vietnamese()) return book;
  auto records = tx.ListProcedures();
  if (!records) return records.error();
  // Versions in ascending order: the newest version's text wins for a name or a task title.
  for (const ProcedureRecord& record : *records) {
    auto procedure = cache.Get(tx, record.name, record.version);
    if (!procedure) return procedure.error();
    const workflows::Procedure& p = **procedure;
    if (!p.titles.empty()) book.procedures_[p.name] = i18n::Pick(p.titles, p.title);
    for (const workflows::Step& step : p.steps) {
      if (!step.task_titles.empty()) {
        book.tasks_[{step.id, step.task}] = i18n::Pick(step.task_titles, step.task);
      }
    }
  }
  return book;
}

const std::string& TitleBook::Procedure(const std::string& name, const std::string& stored) const {
  auto found = procedures_.find(name);
  return found != procedures_.end() ? found->second : stored;
}

const std::string& TitleBook::Task(const std::string& step, const std::string& stored) const {
  auto found = tasks_.find({step, stored});
  return found != tasks_.end() ? found->second : stored;
}

}  // namespace wf::engine
