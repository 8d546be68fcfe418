#include "engine/archive.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <vector>

#include "engine/anchor.hpp"
#include "engine/private_files.hpp"
#include "workflows/i18n.hpp"
#include "workflows/json_text.hpp"

namespace wf::engine {

namespace {

using nlohmann::json;

constexpr std::string_view kArchiveFormat = "wf-archive/1";
constexpr int kArchiveBatch = 100;

json Parsed(const std::string& text) {
  json value = json::parse(text, nullptr, false);
  if (value.is_discarded()) return text;
  return value;
}

json Time(const std::optional<Timestamp>& t) { return t ? json(FormatRfc3339(*t)) : json(nullptr); }

json OptText(const std::optional<std::string>& text) { return text ? json(*text) : json(nullptr); }

json CaseJson(const CaseRecord& c) {
  return {{"id", c.id},
          {"procedure", c.procedure},
          {"version", c.version},
          {"status", c.status},
          {"data", Parsed(c.data)},
          {"state", Parsed(c.state)},
          {"dedupe_key", OptText(c.dedupe_key)},
          {"agency", c.agency},
          {"started_by", c.started_by},
          {"started_at", FormatRfc3339(c.started_at)},
          {"updated_at", FormatRfc3339(c.updated_at)},
          {"deadline_at", Time(c.deadline_at)},
          {"clock_paused_at", Time(c.clock_paused_at)},
          {"ended_at", Time(c.ended_at)},
          {"row_version", c.row_version},
          {"parent_case", OptText(c.parent_case)},
          {"parent_activation", c.parent_activation ? json(*c.parent_activation) : json(nullptr)}};
}

json TaskJson(const TaskRecord& t) {
  return {{"id", t.id},
          {"activation", t.activation},
          {"step", t.step},
          {"title", t.title},
          {"role", t.role},
          {"agency", t.agency},
          {"form", Parsed(t.form)},
          {"status", TaskStatusName(t.status)},
          {"assignee", OptText(t.assignee)},
          {"created_at", FormatRfc3339(t.created_at)},
          {"due_at", Time(t.due_at)},
          {"escalated_to", OptText(t.escalated_to)},
          {"completed_by", OptText(t.completed_by)},
          {"completed_at", Time(t.completed_at)},
          {"values", t.values ? Parsed(*t.values) : json(nullptr)}};
}

json IncidentJson(const IncidentRecord& i) {
  return {{"id", i.id},
          {"activation", i.activation},
          {"step", i.step},
          {"message", i.message},
          {"status", i.status == IncidentStatus::kOpen ? "open" : "resolved"},
          {"created_at", FormatRfc3339(i.created_at)},
          {"resolved_at", Time(i.resolved_at)},
          {"resolved_by", OptText(i.resolved_by)}};
}

json WorkJson(const WorkItem& w) {
  return {{"id", w.id},
          {"kind", w.kind},
          {"step", w.step},
          {"activation", w.activation},
          {"payload", Parsed(w.payload)},
          {"state", WorkStateName(w.state)},
          {"run_at", FormatRfc3339(w.run_at)},
          {"attempt", w.attempt},
          {"created_at", FormatRfc3339(w.created_at)}};
}

// Writes `text` and a newline to `out` and the hash.
Status WriteLine(std::ofstream& out, Sha256Stream& hash, const std::string& text,
                 const std::string& path) {
  out << text << '\n';
  hash.Update(text);
  hash.Update("\n");
  if (!out) return Status::Internal(TrFormat("cannot write the archive {0}", path));
  return Status::Ok();
}

Status SyncFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return Status::Internal(TrFormat("cannot flush the archive {0} to disk", path));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace

json HistoryEventJson(const HistoryEvent& e) {
  return {{"case", e.case_id},
          {"seq", e.seq},
          {"at", e.at},
          {"actor", e.actor},
          {"action", e.action},
          {"step", e.step},
          {"details", Parsed(e.details)},
          {"prev_hash", e.prev_hash},
          {"hash", e.hash}};
}

std::optional<HistoryEvent> HistoryEventFromJson(const json& j) {
  if (!j.is_object()) return std::nullopt;
  for (const char* key : {"case", "at", "actor", "action", "step", "prev_hash", "hash"}) {
    if (!j.contains(key) || !j[key].is_string()) return std::nullopt;
  }
  if (!j.contains("seq") || !j["seq"].is_number_integer() || !j.contains("details")) {
    return std::nullopt;
  }
  HistoryEvent e;
  e.case_id = j["case"].get<std::string>();
  e.seq = j["seq"].get<std::int64_t>();
  e.at = j["at"].get<std::string>();
  e.actor = j["actor"].get<std::string>();
  e.action = j["action"].get<std::string>();
  e.step = j["step"].get<std::string>();
  e.details = workflows::DumpJson(j["details"], json::error_handler_t::replace);
  e.prev_hash = j["prev_hash"].get<std::string>();
  e.hash = j["hash"].get<std::string>();
  return e;
}

Result<ArchiveSummary> ArchiveEndedCases(Store& store, Timestamp before, const std::string& path,
                                         Timestamp now) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::exists(path, ec)) {
    return Status::Conflict(TrFormat("the archive {0} exists already; choose another --out", path));
  }
  const std::string partial = path + ".partial";
  // The file holds case data: created 0600 before a byte is written. A partial file left by a
  // run that crashed is replaced (its mode may predate this rule).
  fs::remove(partial, ec);
  if (Status created = CreatePrivateFile(partial); !created.ok()) {
    if (created.code() == ErrorCode::kNotFound) {
      return Status::NotFound(TrFormat("{0}: check the folder exists", created.message()));
    }
    return created;
  }
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) {
    return Status::NotFound(TrFormat("cannot create {0}: check the folder exists", partial));
  }
  Sha256Stream hash;
  ArchiveSummary summary;
  std::vector<ChainHead> heads;  // what the file holds, to remove afterwards
  auto fail = [&](Status status) {
    out.close();
    fs::remove(partial, ec);
    return status;
  };
  json header = {{"archive", std::string(kArchiveFormat)},
                 {"created_at", FormatRfc3339(now)},
                 {"before", FormatRfc3339(before)},
                 {"database", store.redacted_url()}};
  if (Status s = WriteLine(out, hash, header.dump(), path); !s.ok()) return fail(s);

  std::string after;
  for (;;) {
    std::vector<CaseRecord> batch;
    std::vector<std::string> lines;
    Status read = store.Read([&](StoreTx& tx) -> Status {
      auto ended = tx.ListEndedCases(before, after, kArchiveBatch);
      if (!ended) return ended.error();
      batch = std::move(*ended);
      for (const CaseRecord& listed : batch) {
        auto record = tx.GetCase(listed.id);
        if (!record) return record.error();
        TaskFilter tasks_of;
        tasks_of.case_id = listed.id;
        tasks_of.open_only = false;
        auto tasks = tx.ListTasks(tasks_of);
        if (!tasks) return tasks.error();
        auto incidents = tx.ListIncidents(listed.id);
        if (!incidents) return incidents.error();
        auto work = tx.ListWork(listed.id);
        if (!work) return work.error();
        auto history = tx.ListHistory(listed.id);
        if (!history) return history.error();
        json line = {{"case", CaseJson(*record)},
                     {"tasks", json::array()},
                     {"incidents", json::array()},
                     {"work", json::array()},
                     {"history", json::array()}};
        for (const auto& t : *tasks) line["tasks"].push_back(TaskJson(t));
        for (const auto& i : *incidents) line["incidents"].push_back(IncidentJson(i));
        for (const auto& w : *work) line["work"].push_back(WorkJson(w));
        for (const auto& e : *history) line["history"].push_back(HistoryEventJson(e));
        ChainHead head{listed.id, 0, std::string(kGenesisHash)};
        if (!history->empty()) head = {listed.id, history->back().seq, history->back().hash};
        heads.push_back(head);
        summary.events += static_cast<std::int64_t>(history->size());
        lines.push_back(workflows::DumpJson(line, json::error_handler_t::replace));
      }
      return Status::Ok();
    });
    if (!read.ok()) return fail(read);
    for (const std::string& line : lines) {
      if (Status s = WriteLine(out, hash, line, path); !s.ok()) return fail(s);
    }
    summary.cases += static_cast<std::int64_t>(batch.size());
    if (batch.size() < static_cast<size_t>(kArchiveBatch)) break;
    after = batch.back().id;
  }
  if (summary.cases == 0) {
    out.close();
    fs::remove(partial, ec);
    return summary;
  }
  summary.sha256 = hash.HexDigest();
  out << json{{"cases", summary.cases}, {"events", summary.events}, {"sha256", summary.sha256}}
             .dump()
      << '\n';
  out.close();
  if (!out) return fail(Status::Internal(TrFormat("cannot write the archive {0}", path)));
  // Durable in this order before any case leaves the live tables: the file's bytes, then its
  // name (the folder's entry). A crash before the folder is synced may lose the rename; the
  // cases are still in the database then.
  if (Status s = SyncFile(partial); !s.ok()) return fail(s);
  fs::rename(partial, path, ec);
  if (ec) return fail(Status::Internal(TrFormat("cannot rename {0}: {1}", partial, ec.message())));
  if (Status s = SyncParentFolder(path); !s.ok()) {
    fs::remove(path, ec);
    return Status(s.code(),
                  TrFormat("{0}; the archive {1} was removed and every case stays in the database",
                           s.message(), path));
  }

  // The file is complete and on disk under its name: only now do cases leave the live tables.
  const std::string name = fs::path(path).filename().string();
  for (size_t start = 0; start < heads.size(); start += kArchiveBatch) {
    size_t end = std::min(heads.size(), start + kArchiveBatch);
    Status removed = store.Transact([&](StoreTx& tx) -> Status {
      for (size_t i = start; i < end; ++i) {
        Status s = tx.RemoveArchivedCase(ArchivedChain{heads[i], name, summary.sha256, now});
        if (!s.ok()) return s;
      }
      return Status::Ok();
    });
    if (!removed.ok()) {
      return Status(removed.code(),
                    TrFormat("{0} ({1} of {2} cases were removed; the archive {3} holds all of "
                             "them and verifies)",
                             removed.message(), i18n::Number(static_cast<long long>(start)),
                             i18n::Number(static_cast<long long>(heads.size())), path));
    }
  }
  return summary;
}

Result<ArchiveSummary> VerifyArchive(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::NotFound(TrFormat("cannot read the archive {0}", path));
  auto bad = [&](std::int64_t line, const std::string& why) {
    return Status::Invalid(TrFormat("{0}:{1}: {2} (not a wf archive file?)", path, line, why));
  };
  Sha256Stream hash;
  ArchiveSummary summary;
  std::string line, previous;
  std::int64_t number = 0;
  // Each line is judged once the next one shows it is not the trailer.
  auto check_case = [&](const std::string& text, std::int64_t at) -> Status {
    json entry = json::parse(text, nullptr, false);
    if (!entry.is_object() || !entry["case"].is_object() || !entry["history"].is_array()) {
      return bad(at, Tr("expected a case line {\"case\",\"tasks\",...,\"history\"}"));
    }
    const std::string id = entry["case"].value("id", "");
    if (entry["case"].value("status", "") == kCaseOpen) {
      return Status::HistoryBroken(TrFormat("archive {0}: case {1} is open", path, id));
    }
    ChainVerifier verifier;
    for (const json& e : entry["history"]) {
      std::optional<HistoryEvent> event = HistoryEventFromJson(e);
      if (!event) return bad(at, TrFormat("a history event of case {0} lacks a field", id));
      if (event->case_id != id) {
        return Status::HistoryBroken(
            TrFormat("archive {0}: case {1} holds an event of {2}", path, id, event->case_id));
      }
      if (auto failure = verifier.Feed(*event)) {
        return Status::HistoryBroken(TrFormat("archive {0}: {1}", path, failure->Describe()));
      }
      ++summary.events;
    }
    ++summary.cases;
    return Status::Ok();
  };
  while (std::getline(in, line)) {
    ++number;
    if (number == 1) {
      json header = json::parse(line, nullptr, false);
      if (!header.is_object() || header.value("archive", "") != kArchiveFormat) {
        return bad(1, Tr("expected the header {\"archive\":\"wf-archive/1\",...}"));
      }
    } else if (number > 2) {
      if (Status s = check_case(previous, number - 1); !s.ok()) return s;
    }
    if (number > 1) {
      hash.Update(previous);
      hash.Update("\n");
    }
    previous = line;
  }
  if (number < 2) return bad(number, Tr("too short: no trailer"));
  json trailer = json::parse(previous, nullptr, false);
  if (!trailer.is_object() || !trailer["sha256"].is_string()) {
    return bad(number, Tr("expected the trailer {\"cases\",\"events\",\"sha256\"}"));
  }
  summary.sha256 = hash.HexDigest();
  if (trailer["sha256"] != summary.sha256 || trailer.value("cases", -1) != summary.cases ||
      trailer.value("events", -1) != summary.events) {
    return Status::HistoryBroken(
        TrFormat("archive {0} was altered: its lines do not hash or count to its trailer", path));
  }
  return summary;
}

}  // namespace wf::engine
