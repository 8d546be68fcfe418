// Liveness tokens (engine/store.hpp, "liveness tokens"): what each engine holds for its whole
// life so that others learn of its death within a second, whatever its leases say. The token
// must die with the process without any help from it (SIGKILL, a power cut of a worker host):
// on PostgreSQL a session-level advisory lock, which the server drops with the session; on
// SQLite an flock(2), which the kernel drops with the last descriptor.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/store.hpp"
#include "engine/store_internal.hpp"
#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

using namespace detail;  // NOLINT: the store's shared internals

std::int64_t LivenessKey(const std::string& owner) { return AdvisoryKey("wf_engine:" + owner); }

// The SQLite database's path, or empty when it has none (in memory, a `file:` URI).
std::string SqlitePath(const DatabaseTarget& target) {
  std::string path = target.connect_string;
  if (path.rfind("db=", 0) == 0) path.erase(0, 3);
  if (path == ":memory:" || path.rfind("file:", 0) == 0) return std::string();
  return path;
}

std::string LockFolder(const std::string& database) { return database + ".engines"; }

// The owner's lock file: named by the key, so that any owner name makes a safe file name.
std::string LockFile(const std::string& database, const std::string& owner) {
  char name[32];
  std::snprintf(name, sizeof name, "/%016" PRIx64 ".lock",
                static_cast<std::uint64_t>(LivenessKey(owner)));
  return LockFolder(database) + name;
}

// `what` is the message, "cannot ... {0}: {1}", translated here.
Status SystemError(const char* what, const std::string& path) {
  return Status::Unavailable(TrFormat(what, path, std::strerror(errno)));
}

}  // namespace

Status Store::HoldLiveness(const std::string& owner) {
  StoreState& state = *state_;
  std::lock_guard lock(state.liveness_mu);
  if (backend() == Backend::kSqlite) {
    if (state.liveness_files.count(owner) > 0) return Status::Ok();  // a descriptor keeps it
    const std::string database = SqlitePath(state.target);
    if (database.empty()) return Status::Ok();
    const std::string folder = LockFolder(database);
    if (::mkdir(folder.c_str(), 0700) != 0 && errno != EEXIST) {
      return SystemError(TrNoop("cannot create the folder {0}: {1}"), folder);
    }
    struct stat info {};
    if (::lstat(folder.c_str(), &info) != 0 || !S_ISDIR(info.st_mode)) {
      return Status::Unavailable(TrFormat("{0} is not a folder", folder));
    }
    const std::string path = LockFile(database, owner);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return SystemError(TrNoop("cannot open {0}: {1}"), path);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const bool held = errno == EWOULDBLOCK;
      Status failed =
          held ? Status::Conflict(TrFormat("a live engine named {0} holds {1}", owner, path))
               : SystemError(TrNoop("cannot lock {0}: {1}"), path);
      ::close(fd);
      return failed;
    }
    state.liveness_files[owner] = fd;
    return Status::Ok();
  }
  // PostgreSQL: a connection of its own, checked on every call, since a dropped connection (the
  // server restarted) shows only when used, and with it every lock on it is gone.
  if (state.liveness) {
    try {
      Exec(*state.liveness, "SELECT 1");
    } catch (const std::exception&) {
      state.liveness.reset();
    }
  }
  if (!state.liveness) {
    state.liveness_locks.clear();
    Result<std::unique_ptr<soci::session>> fresh = Connect(state);
    if (!fresh) return fresh.error();
    state.liveness = std::move(*fresh);
  }
  if (state.liveness_locks.count(owner) > 0) return Status::Ok();
  try {
    int got = 0;
    *state.liveness << "SELECT CASE WHEN pg_try_advisory_lock(" +
                           std::to_string(LivenessKey(owner)) + ") THEN 1 ELSE 0 END",
        soci::into(got);
    // Someone else holds it: an engine of the same name, or one testing whether this engine is
    // alive, which lets go at once; the caller tries again on its next round.
    if (got != 1) {
      return Status::Conflict(TrFormat("the liveness lock of {0} is held elsewhere", owner));
    }
  } catch (const std::exception& e) {
    MappedError mapped =
        MapError(state.liveness.get(), Backend::kPostgres, "take the liveness lock", e);
    state.liveness.reset();
    return mapped.status;
  }
  state.liveness_locks.insert(owner);
  return Status::Ok();
}

void Store::ReleaseLiveness(const std::string& owner) {
  StoreState& state = *state_;
  std::lock_guard lock(state.liveness_mu);
  if (auto it = state.liveness_files.find(owner); it != state.liveness_files.end()) {
    // Removed while still locked: nobody can take it meanwhile.
    ::unlink(LockFile(SqlitePath(state.target), owner).c_str());
    ::close(it->second);
    state.liveness_files.erase(it);
  }
  if (state.liveness_locks.erase(owner) == 0 || !state.liveness) return;
  try {
    Exec(*state.liveness, "SELECT pg_advisory_unlock(" + std::to_string(LivenessKey(owner)) + ")");
  } catch (const std::exception&) {
    state.liveness.reset();  // the session ends and the server drops its locks
    state.liveness_locks.clear();
  }
  if (state.liveness_locks.empty()) state.liveness.reset();
}

Result<bool> Store::IsAlive(const std::string& owner) {
  StoreState& state = *state_;
  if (backend() == Backend::kSqlite) {
    const std::string database = SqlitePath(state.target);
    if (database.empty()) return true;  // one process: nobody else can have died
    const std::string path = LockFile(database, owner);
    int fd = ::open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
      if (errno == ENOENT) return false;  // no token: gone (or never had one)
      return SystemError("open", path);
    }
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) return true;
      errno = error;
      return SystemError("test the lock", path);
    }
    ::unlink(path.c_str());  // its owner is dead: the file is litter
    ::close(fd);
    return false;
  }
  bool alive = false;
  Status status = Run(false, [&](TxContext& ctx) {
    return Guard(ctx, "test an engine's liveness", [&]() -> Status {
      const std::string key = std::to_string(LivenessKey(owner));
      int got = 0;
      ctx.sql << "SELECT CASE WHEN pg_try_advisory_lock(" + key + ") THEN 1 ELSE 0 END",
          soci::into(got);
      alive = got != 1;
      // Got it: its owner is dead. Let go at once (session locks outlive the transaction).
      if (!alive) Exec(ctx.sql, "SELECT pg_advisory_unlock(" + key + ")");
      return Status::Ok();
    });
  });
  if (!status.ok()) return status;
  return alive;
}

}  // namespace wf::engine
