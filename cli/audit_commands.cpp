// wf archive, audit verify/export/keygen/anchor: proving the tamper-evident history was not
// altered, exporting it and archiving ended cases.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "engine/anchor.hpp"
#include "engine/archive.hpp"
#include "engine/calendar.hpp"
#include "engine/history_export.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

// --- audit verify ----------------------------------------------------------------------------

struct VerifyOptions {
  std::string case_id;
  std::string anchor;
  std::string pubkey;
  std::string file;     // an export to verify on its own
  std::string archive;  // an archive to verify on its own
  std::string peer;     // also check the exchanges with this deployment (peer_audit.cpp)
};

// An RFC 3339 UTC time ("2026-11-27T16:59:59.000000Z") for people: as it is in English,
// "27/11/2026 16:59 UTC" in Vietnamese.
std::string UtcForPeople(const std::string& rfc3339) {
  if (!i18n::Vietnamese() || rfc3339.empty() || rfc3339.back() != 'Z') return rfc3339;
  const std::string local = i18n::DateTime(rfc3339);
  return local == rfc3339 ? rfc3339 : local + " UTC";
}

int Broken(const GlobalOptions& globals, const Status& error) {
  if (globals.json && error.code() == ErrorCode::kHistoryBroken) {
    std::cout << json{{"ok", false}, {"error", error.message()}}.dump(2) << '\n';
  }
  return Fail(error);
}

// Recomputes the chains in an export file (JSON Lines or CSV, as `wf audit export` writes them).
// An export taken with --since starts its chains mid-way: those are checked from their first
// exported event on.
int VerifyExportFile(const GlobalOptions& globals, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Fail(Status::NotFound(TrFormat("cannot read {0}: check the path", path)));
  engine::ChainVerifier verifier(/*partial=*/true);
  Status read = engine::ReadExport(in, path, [&](const engine::HistoryEvent& event) -> Status {
    if (auto failure = verifier.Feed(event)) {
      return Status::HistoryBroken(path + ": " + failure->Describe());
    }
    return Status::Ok();
  });
  if (!read.ok()) return Broken(globals, read);
  if (globals.json) {
    std::cout << json{{"ok", true},
                      {"file", path},
                      {"cases", verifier.cases()},
                      {"events", verifier.events()}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << TrFormat("export {0} verifies: {1} cases, {2} events", path,
                          i18n::Number(verifier.cases()), i18n::Number(verifier.events()))
              << '\n';
  }
  return 0;
}

int VerifyArchiveFile(const GlobalOptions& globals, const std::string& path) {
  auto summary = engine::VerifyArchive(path);
  if (!summary) return Broken(globals, summary.error());
  if (globals.json) {
    std::cout << json{{"ok", true},
                      {"archive", path},
                      {"cases", summary->cases},
                      {"events", summary->events},
                      {"sha256", summary->sha256}}
                     .dump(2)
              << '\n';
  } else {
    std::cout << TrFormat("archive {0} verifies: {1} cases, {2} events, sha256 {3}", path,
                          i18n::Number(summary->cases), i18n::Number(summary->events),
                          summary->sha256)
              << '\n';
  }
  return 0;
}

Result<std::string> ReadKeyFile(const std::string& path, const std::string& option) {
  std::string text, error;
  if (!ReadInput(path, &text, &error)) {
    return Status::NotFound(option + " " + path + ": " + error);
  }
  return text;
}

int Verify(const GlobalOptions& globals, const VerifyOptions& options) {
  int sources = !options.file.empty() + !options.archive.empty();
  if (sources > 1 || (sources == 1 && (!options.case_id.empty() || !options.anchor.empty()))) {
    return Fail(Status::Usage(
        Tr("--file and --archive verify a file on its own: give one, without a case or --anchor")));
  }
  if (!options.file.empty()) return VerifyExportFile(globals, options.file);
  if (!options.archive.empty()) return VerifyArchiveFile(globals, options.archive);
  if (options.anchor.empty() != options.pubkey.empty()) {
    return Fail(
        Status::Usage(Tr("--anchor needs --pubkey (the public key of the anchor's signer), "
                         "and --pubkey needs --anchor")));
  }
  std::optional<engine::Anchor> anchor;
  if (!options.anchor.empty()) {
    auto pubkey = ReadKeyFile(options.pubkey, "--pubkey");
    if (!pubkey) return Fail(pubkey.error());
    std::ifstream in(options.anchor, std::ios::binary);
    if (!in) {
      return Fail(Status::NotFound(TrFormat("--anchor {0}: cannot read it", options.anchor)));
    }
    // A file that is no public key is the user's mistake (exit 3), not a broken history.
    if (auto key = engine::KeyFingerprint(*pubkey); !key) {
      if (key.error().code() != ErrorCode::kInvalid) return Broken(globals, key.error());
      return Broken(globals, Status::Invalid(TrFormat(
                                 "--pubkey {0}: the public key is not an Ed25519 key in PEM",
                                 options.pubkey)));
    }
    auto read = engine::ReadAnchor(in, options.anchor, *pubkey);
    if (!read) return Broken(globals, read.error());
    anchor = std::move(*read);
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::Store& store = *(*session)->store;
  std::optional<std::string> which;
  if (!options.case_id.empty()) which = options.case_id;

  engine::ChainVerifier verifier;
  std::optional<engine::AnchorCheck> check;
  if (anchor) check.emplace(*anchor, which);
  engine::HistoryRange range;
  range.case_id = which;
  Status status = store.ForEachHistoryIn(range, [&](const engine::HistoryEvent& event) {
    if (auto failure = verifier.Feed(event)) return Status::HistoryBroken(failure->Describe());
    if (check) {
      if (auto failure = check->Feed(event)) return Status::HistoryBroken(failure->Describe());
    }
    return Status::Ok();
  });
  if (!status.ok()) return Broken(globals, status);
  std::int64_t archived = 0;
  std::string archived_to;
  status = store.ForEachArchivedChain([&](const engine::ArchivedChain& chain) {
    if (which && chain.head.case_id != *which) return Status::Ok();
    ++archived;
    archived_to = chain.archive;
    if (check) {
      if (auto failure = check->FeedArchived(chain.head)) {
        return Status::HistoryBroken(failure->Describe());
      }
    }
    return Status::Ok();
  });
  if (!status.ok()) return Broken(globals, status);
  if (check) {
    if (auto failure = check->Finish()) {
      return Broken(globals, Status::HistoryBroken(failure->Describe()));
    }
  }
  if (which && verifier.events() == 0 && archived == 0) {
    return Fail(Status::NotFound(
        TrFormat("case {0} has no history; `wf cases` lists cases", options.case_id)));
  }
  if (globals.json) {
    json out = {{"ok", true},
                {"cases", verifier.cases()},
                {"events", verifier.events()},
                {"archived_chains", archived}};
    if (anchor) {
      out["anchor"] = {
          {"file", options.anchor}, {"at", anchor->at}, {"chains_checked", check->checked()}};
    }
    std::cout << out.dump(2) << '\n';
    return 0;
  }
  const std::string cases = i18n::Number(verifier.cases());
  const std::string events = i18n::Number(verifier.events());
  if (archived == 0) {
    std::cout << TrFormat("history verifies: {0} cases, {1} events", cases, events);
  } else if (!which) {
    std::cout << TrFormat(
        "history verifies: {0} cases, {1} events; {2} archived chains kept by their heads", cases,
        events, i18n::Number(archived));
  } else {
    std::cout << TrFormat(
        "history verifies: {0} cases, {1} events; {2} archived chains kept by their heads "
        "(in {3})",
        cases, events, i18n::Number(archived), archived_to);
  }
  std::cout << '\n';
  if (anchor) {
    std::cout << TrFormat("anchor {0} of {1} holds: {2} chains have only grown since",
                          options.anchor, UtcForPeople(anchor->at), i18n::Number(check->checked()))
              << '\n';
  }
  return 0;
}

// --- audit export ----------------------------------------------------------------------------

struct ExportOptions {
  std::string since;
  std::string until;
  std::string format = "jsonl";
  std::string case_id;
};

// A --since/--until/--before value: a date (from its midnight UTC) or an RFC 3339 time.
Result<engine::Timestamp> ParseWhen(const std::string& option, const std::string& value) {
  if (auto date = engine::ParseDate(value)) return engine::Timestamp(*date);
  if (auto point = engine::ParseTimestamp(value)) {
    return std::chrono::floor<std::chrono::microseconds>(*point);
  }
  return Status::Usage(
      TrFormat("{0} {1}: write a date (2026-01-31) or an RFC 3339 time (2026-01-31T08:00:00+07:00)",
               option, value));
}

// The same as history's fixed-width RFC 3339 UTC text, which is compared as text.
Result<std::string> HistoryTime(const std::string& option, const std::string& value) {
  auto t = ParseWhen(option, value);
  if (!t) return t.error();
  return engine::FormatRfc3339(*t);
}

int Export(const GlobalOptions& globals, const ExportOptions& options) {
  engine::HistoryRange range;
  if (!options.since.empty()) {
    auto since = HistoryTime("--since", options.since);
    if (!since) return Fail(since.error());
    range.since_at = *since;
  }
  if (!options.until.empty()) {
    auto until = HistoryTime("--until", options.until);
    if (!until) return Fail(until.error());
    range.until_at = *until;
  }
  if (!options.case_id.empty()) range.case_id = options.case_id;
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  const engine::ExportFormat format =
      options.format == "csv" ? engine::ExportFormat::kCsv : engine::ExportFormat::kJsonLines;
  engine::WriteExportHeader(std::cout, format);
  Status status = (*session)->store->ForEachHistoryIn(range, [&](const engine::HistoryEvent& e) {
    engine::WriteExportEvent(std::cout, format, e);
    if (!std::cout) return Status::Internal(Tr("cannot write the export to stdout"));
    return Status::Ok();
  });
  std::cout.flush();
  if (!status.ok()) return Fail(status);
  return 0;
}

// --- audit keygen, audit anchor --------------------------------------------------------------

// Creates `path` with `text`, never replacing a file: kConflict when it exists.
Status CreateFile(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST) {
      return Status::Conflict(
          TrFormat("{0} exists already; move it away or choose another file", path));
    }
    return Status::NotFound(TrFormat("cannot create {0}: {1}", path, std::strerror(errno)));
  }
  ssize_t written = ::write(fd, text.data(), text.size());
  bool ok = written == static_cast<ssize_t>(text.size()) && ::fsync(fd) == 0;
  ::close(fd);
  if (!ok) return Status::Internal(TrFormat("cannot write {0}", path));
  return Status::Ok();
}

int Keygen(const GlobalOptions& globals, const std::string& key_path,
           const std::string& pubkey_path) {
  for (const std::string& path : {key_path, pubkey_path}) {
    if (std::filesystem::exists(path)) {
      return Fail(Status::Conflict(
          TrFormat("{0} exists already; move it away or choose another file", path)));
    }
  }
  auto keys = engine::GenerateSigningKeys();
  if (!keys) return Fail(keys.error());
  if (Status s = CreateFile(key_path, keys->private_pem, 0600); !s.ok()) return Fail(s);
  if (Status s = CreateFile(pubkey_path, keys->public_pem, 0644); !s.ok()) {
    std::filesystem::remove(key_path);
    return Fail(s);
  }
  auto fingerprint = engine::KeyFingerprint(keys->public_pem);
  if (!fingerprint) return Fail(fingerprint.error());
  if (globals.json) {
    std::cout
        << json{{"key", key_path}, {"pubkey", pubkey_path}, {"fingerprint", *fingerprint}}.dump(2)
        << '\n';
  } else {
    std::cout << TrFormat(
                     "Ed25519 key written: {0} (private, mode 0600), {1} (public); fingerprint {2}",
                     key_path, pubkey_path, *fingerprint)
              << '\n';
  }
  return 0;
}

int AnchorCommand(const GlobalOptions& globals, const std::string& key_path,
                  const std::string& out_path) {
  auto key = ReadKeyFile(key_path, "--key");
  if (!key) return Fail(key.error());
  if (!engine::KeyFingerprint(*key)) {
    return Fail(Status::Invalid(
        TrFormat("--key {0}: not an Ed25519 private key in PEM (make one with `wf audit keygen`)",
                 key_path)));
  }
  if (std::filesystem::exists(out_path)) {
    return Fail(Status::Conflict(TrFormat(
        "--out {0} exists already; anchors are never overwritten: choose another file", out_path)));
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  engine::Store& store = *(*session)->store;
  const std::string partial = out_path + ".partial";
  std::ofstream out(partial, std::ios::binary | std::ios::trunc);
  if (!out) {
    return Fail(Status::NotFound(TrFormat("cannot create {0}: check the folder", partial)));
  }
  const std::string at = engine::FormatRfc3339(engine::Now());
  auto chains =
      engine::WriteAnchor(out, *key, at, store.redacted_url(),
                          [&](const std::function<Status(const engine::ChainHead&)>& emit) {
                            return store.ForEachChainHead(
                                [&](const engine::ChainHead& head, bool) { return emit(head); });
                          });
  out.close();
  std::error_code ec;
  if (!chains || !out) {
    std::filesystem::remove(partial, ec);
    return Fail(chains ? Status::Internal(TrFormat("cannot write {0}", partial)) : chains.error());
  }
  std::filesystem::rename(partial, out_path, ec);
  if (ec) {
    return Fail(Status::Internal(TrFormat("cannot rename {0}: {1}", partial, ec.message())));
  }
  if (globals.json) {
    std::cout << json{{"anchor", out_path}, {"at", at}, {"chains", *chains}}.dump(2) << '\n';
  } else {
    std::cout << TrFormat("anchored {0} chains at {1} in {2}; keep it away from the database",
                          i18n::Number(*chains), UtcForPeople(at), out_path)
              << '\n';
  }
  return 0;
}

// --- archive ---------------------------------------------------------------------------------

int Archive(const GlobalOptions& globals, const std::string& before_text,
            const std::string& out_path) {
  auto before = ParseWhen("--before", before_text);
  if (!before) return Fail(before.error());
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  auto summary = engine::ArchiveEndedCases(*(*session)->store,
                                           std::chrono::floor<std::chrono::microseconds>(*before),
                                           out_path, engine::Now());
  if (!summary) return Fail(summary.error());
  if (globals.json) {
    std::cout << json{{"archive", summary->cases > 0 ? json(out_path) : json(nullptr)},
                      {"cases", summary->cases},
                      {"events", summary->events},
                      {"sha256", summary->sha256}}
                     .dump(2)
              << '\n';
  } else if (summary->cases == 0) {
    std::cout << TrFormat("no case ended before {0}; nothing archived", before_text) << '\n';
  } else {
    std::cout << TrFormat(
                     "archived {0} cases ({1} events) to {2}, sha256 {3}; their chain heads stay "
                     "in the database",
                     i18n::Number(summary->cases), i18n::Number(summary->events), out_path,
                     summary->sha256)
              << '\n';
  }
  return 0;
}

}  // namespace

void AddAuditCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand(
        "archive", Tr("move cases that ended before a date, with their history, into a file"));
    auto before = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("--before", *before, Tr("cases that ended before this date or time"))
        ->required();
    cmd->add_option("--out", *out, Tr("the archive file to create"))->required();
    cmd->callback([&globals, before, out, selected] {
      *selected = [&globals, before, out] { return Archive(globals, *before, *out); };
    });
  }
  auto* audit = app.add_subcommand("audit", Tr("prove the history was not altered; export it"));
  audit->require_subcommand(1);
  {
    auto* cmd = audit->add_subcommand("verify", Tr("recompute the history's hash chains"));
    auto options = std::make_shared<VerifyOptions>();
    cmd->add_option("case", options->case_id, Tr("only this case (default: every case)"));
    cmd->add_option("--anchor", options->anchor,
                    Tr("also prove history only grew since this anchor"));
    cmd->add_option("--pubkey", options->pubkey, Tr("the public key that signed the anchor"));
    cmd->add_option("--file", options->file,
                    Tr("verify an export (JSON Lines or CSV) on its own, without the database"));
    cmd->add_option("--archive", options->archive,
                    Tr("verify an archive file on its own, without the database"));
    cmd->add_option("--peer", options->peer,
                    Tr("also check with this other deployment (a department of adapter wf) "
                       "that both histories agree on every exchange"));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] {
        if (!options->peer.empty()) {
          if (!options->file.empty() || !options->archive.empty()) {
            return Fail(
                Status::Usage(Tr("--peer checks the database's exchanges: give it "
                                 "without --file or --archive")));
          }
          if (int local = Verify(globals, *options); local != 0) return local;
          return VerifyPeer(globals, options->peer, options->case_id);
        }
        return Verify(globals, *options);
      };
    });
  }
  {
    auto* cmd = audit->add_subcommand("export", Tr("history events with their hashes, streamed"));
    auto options = std::make_shared<ExportOptions>();
    cmd->add_option("--since", options->since, Tr("only events at or after this time or date"));
    cmd->add_option("--until", options->until, Tr("only events before this time or date"));
    cmd->add_option("--format", options->format, Tr("jsonl (default) or csv"))
        ->check(CLI::IsMember({"jsonl", "csv"}));
    cmd->add_option("--case", options->case_id, Tr("only this case"));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Export(globals, *options); };
    });
  }
  {
    auto* cmd = audit->add_subcommand("keygen", Tr("make an Ed25519 key pair for signing anchors"));
    auto key = std::make_shared<std::string>("wf-audit.key");
    auto pubkey = std::make_shared<std::string>("wf-audit.pub");
    cmd->add_option("--key", *key, Tr("the private key to write (PEM, mode 0600)"))
        ->capture_default_str();
    cmd->add_option("--pubkey", *pubkey, Tr("the public key to write (PEM)"))
        ->capture_default_str();
    cmd->callback([&globals, key, pubkey, selected] {
      *selected = [&globals, key, pubkey] { return Keygen(globals, *key, *pubkey); };
    });
  }
  {
    auto* cmd =
        audit->add_subcommand("anchor", Tr("sign the heads of all chains, now, into a file"));
    auto key = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("--key", *key, Tr("the private key (from wf audit keygen)"))->required();
    cmd->add_option("--out", *out, Tr("the anchor file to create"))->required();
    cmd->callback([&globals, key, out, selected] {
      *selected = [&globals, key, out] { return AnchorCommand(globals, *key, *out); };
    });
  }
}

}  // namespace wf::cli
