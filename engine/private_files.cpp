#include "engine/private_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "workflows/i18n.hpp"

namespace wf::engine {

namespace {

constexpr mode_t kPrivateFileMode = 0600;

// Creates `path` empty with mode 0600; 0 or the errno. O_EXCL also refuses a symbolic link at
// `path`, dangling or not.
int CreateExclusively(const std::string& path) {
  int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, kPrivateFileMode);
  if (fd < 0) return errno;
  ::close(fd);
  return 0;
}

}  // namespace

Status CreatePrivateFile(const std::string& path) {
  int error = CreateExclusively(path);
  if (error == 0) return Status::Ok();
  std::string message = TrFormat("cannot create {0}: {1}", path, std::strerror(error));
  if (error == EEXIST) return Status::Conflict(TrFormat("{0} exists already", path));
  if (error == ENOENT || error == ENOTDIR) return Status::NotFound(message);
  if (error == EACCES || error == EPERM || error == EROFS) return Status::NotPermitted(message);
  return Status::Internal(message);
}

Status PrepareSqliteFile(const DatabaseTarget& target) {
  if (target.backend != Backend::kSqlite) return Status::Ok();
  // ParseDatabaseUrl writes "db=PATH" exactly when PATH holds '=', so a connect string that
  // starts with "db=" always carries the prefix.
  std::string path = target.connect_string;
  if (path.rfind("db=", 0) == 0) path.erase(0, 3);
  if (path.empty() || path == ":memory:" || path.rfind("file:", 0) == 0) return Status::Ok();
  int error = CreateExclusively(path);
  if (error == 0 || error == EEXIST) return Status::Ok();
  return Status::Unavailable(
      TrFormat("cannot create the SQLite database {0}: {1}", path, std::strerror(error)));
}

Status SyncParentFolder(const std::string& path) {
  std::filesystem::path folder = std::filesystem::path(path).parent_path();
  if (folder.empty()) folder = ".";
  int fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    std::string reason = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    return Status::Internal(
        TrFormat("cannot flush the folder {0} to disk: {1}", folder.string(), reason));
  }
  ::close(fd);
  return Status::Ok();
}

}  // namespace wf::engine
