// wf erase, keys rotate: citizens' personal data (DESIGN.md "Personal data"; README, Personal
// data): erasing an ended case's personal values by destroying its data key, and rotating the
// key-encryption key of the key file.
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.hpp"
#include "cli/output.hpp"
#include "cli/session.hpp"
#include "workflows/i18n.hpp"

namespace wf::cli {

namespace {

using nlohmann::json;

// On PostgreSQL, kNotPermitted unless the login holds wf_auditor or wf_admin (the grants would
// refuse anyway; this says so in words). SQLite's one operator does everything.
Status RequireAuditorOrAdmin(Session& session, const std::string& command) {
  if (session.store->backend() != engine::Backend::kPostgres) return Status::Ok();
  bool may = false;
  Status read = session.store->Read([&](engine::StoreTx& tx) {
    for (const char* group : {"wf_auditor", "wf_admin"}) {
      auto holds = tx.LoginHolds(group);
      if (!holds) return holds.error();
      may = may || *holds;
    }
    return Status::Ok();
  });
  if (!read.ok()) return read;
  if (may) return Status::Ok();
  return Status::NotPermitted(TrFormat(
      "`wf {0}` is for auditors and admins: login {1} holds neither wf_auditor nor wf_admin",
      command, session.login));
}

struct EraseOptions {
  std::string case_id;
  std::string reason;
  bool expired = false;
};

int Erase(const GlobalOptions& globals, const EraseOptions& options) {
  if (options.expired == !options.case_id.empty()) {
    return Fail(Status::Usage(
        Tr("give either a CASE to erase or --expired for every case past its retention")));
  }
  std::string reason = options.reason;
  if (options.expired && reason.empty()) reason = Tr("retention period ended");
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos) {
    return Fail(Status::Usage(Tr("--reason is required: say why the personal data is erased")));
  }
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if (Status may = RequireAuditorOrAdmin(**session, "erase"); !may.ok()) return Fail(may);
  const std::string actor = ActorOrAnonymous(**session);
  std::vector<std::string> erased;
  if (options.expired) {
    auto swept = (*session)->runtime->EraseExpired(reason, actor);
    if (!swept) return Fail(swept.error());
    erased = std::move(*swept);
  } else {
    if (Status s = (*session)->runtime->EraseCase(options.case_id, reason, actor); !s.ok()) {
      return Fail(s);
    }
    erased.push_back(options.case_id);
  }
  if (globals.json) {
    PrintJson(json{{"erased", erased}, {"reason", reason}});
    return 0;
  }
  if (erased.empty()) {
    std::cout << Tr("no ended case is past its retention period") << '\n';
    return 0;
  }
  for (const std::string& id : erased) {
    std::cout << TrFormat("case {0}: personal data erased ({1})", id, reason) << '\n';
  }
  return 0;
}

struct RotateOptions {
  bool drop_old = false;
};

// A new KEK becomes current, every case's data key is wrapped again under it in one
// transaction, and the old KEKs are dropped from the file only with --drop-old, once no data key
// is wrapped under them (an engine that still runs with the old file may have wrapped one since).
int RotateKeys(const GlobalOptions& globals, const RotateOptions& options) {
  auto session = OpenSession(globals);
  if (!session) return Fail(session.error());
  if (Status may = RequireAuditorOrAdmin(**session, "keys rotate"); !may.ok()) return Fail(may);
  engine::KeySource& keys = (*session)->store->keys();
  auto ring = keys.Ring(true);
  if (!ring) return Fail(ring.error());
  if (Status added = (*ring)->AddKek(); !added.ok()) return Fail(added);
  const std::string current = (*ring)->current_id();
  int rewrapped = 0;
  int still_old = 0;
  Status status = (*session)->store->Transact([&](engine::StoreTx& tx) -> Status {
    rewrapped = 0;
    auto all = tx.ListCaseKeys();
    if (!all) return all.error();
    for (const auto& [case_id, wrapped] : *all) {
      if (wrapped.rfind(current + ":", 0) == 0) continue;
      auto key = (*ring)->Unwrap(wrapped);
      if (!key) return key.error();
      if (Status s = tx.UpdateCaseKey(case_id, (*ring)->Wrap(*key)); !s.ok()) return s;
      ++rewrapped;
    }
    return Status::Ok();
  });
  if (!status.ok()) return Fail(status);
  bool dropped = false;
  if (options.drop_old) {
    Status checked = (*session)->store->Read([&](engine::StoreTx& tx) -> Status {
      auto all = tx.ListCaseKeys();
      if (!all) return all.error();
      for (const auto& [case_id, wrapped] : *all) {
        if (wrapped.rfind(current + ":", 0) != 0) ++still_old;
      }
      return Status::Ok();
    });
    if (!checked.ok()) return Fail(checked);
    if (still_old > 0) {
      return Fail(Status::Conflict(
          TrFormat("{0} data keys were wrapped under an old KEK meanwhile (an engine still runs "
                   "with the old "
                   "key file); restart the engines and run `wf keys rotate --drop-old` again",
                   std::to_string(still_old))));
    }
    if (Status s = (*ring)->DropOldKeks(); !s.ok()) return Fail(s);
    dropped = true;
  }
  if (globals.json) {
    PrintJson(json{{"key_file", keys.path()},
                   {"kek", current},
                   {"rewrapped", rewrapped},
                   {"old_keks_dropped", dropped}});
    return 0;
  }
  std::cout << TrFormat("key file {0}: KEK {1} is current; {2} data keys wrapped again under it",
                        keys.path().empty() ? Tr("(in memory)") : keys.path(), current,
                        std::to_string(rewrapped))
            << '\n';
  std::cout << (dropped ? Tr("the old KEKs were dropped from the key file")
                        : Tr("the old KEKs stay in the key file until `wf keys rotate --drop-old`"))
            << '\n';
  return 0;
}

}  // namespace

void AddPersonalCommands(CLI::App& app, const GlobalOptions& globals, CommandAction* selected) {
  {
    auto* cmd = app.add_subcommand(
        "erase",
        Tr("erase the personal data of an ended case, or of every case past its retention"));
    auto options = std::make_shared<EraseOptions>();
    cmd->add_option("case", options->case_id, Tr("the case id"));
    cmd->add_option("--reason", options->reason, Tr("why, for the history"));
    cmd->add_flag("--expired", options->expired,
                  Tr("every ended case past its procedure's retention period"));
    cmd->callback([&globals, options, selected] {
      *selected = [&globals, options] { return Erase(globals, *options); };
    });
  }
  {
    auto* keys = app.add_subcommand("keys", Tr("the key file of personal data"));
    keys->require_subcommand(1);
    auto* rotate = keys->add_subcommand(
        "rotate", Tr("make a new key-encryption key current and wrap every data key under it"));
    auto options = std::make_shared<RotateOptions>();
    rotate->add_flag("--drop-old", options->drop_old,
                     Tr("then remove the old key-encryption keys from the key file"));
    rotate->callback([&globals, options, selected] {
      *selected = [&globals, options] { return RotateKeys(globals, *options); };
    });
  }
}

}  // namespace wf::cli
