#pragma once

// Files that hold case data (the SQLite database, archives) are readable by their owner only
// (DESIGN.md, "Stage 2 contracts": "SQLite ... its files are created 0600"): they are created
// with mode 0600 from the start, never made private by a chmod afterwards, so there is no moment
// in which another user can open them. The umask can only take bits away from 0600. Plain
// functions on the calling thread (blocking system calls on small files); none throws.

#include <string>

#include "engine/dialect.hpp"
#include "workflows/status.hpp"

namespace wf::engine {

// Creates the SQLite database file of `target` empty with mode 0600 when it does not exist yet,
// so that SQLite opens an existing file instead of creating one 0644 (less the umask); SQLite
// gives the -wal and -shm files it creates beside it the database file's mode. An existing file
// is left as it is, mode included. Nothing for PostgreSQL, `:memory:` or a `file:` URI. A
// symbolic link at the path is not followed. kUnavailable "cannot create the SQLite database
// PATH: reason" (the folder missing or not writable), which is what SQLite would answer too.
// Call it before the first connection opens the file.
Status PrepareSqliteFile(const DatabaseTarget& target);

// Creates `path` empty with mode 0600, never replacing or following anything already there:
// kConflict when something exists at `path`; kNotFound (folder missing) or kNotPermitted
// otherwise, naming the path and the system's reason.
Status CreatePrivateFile(const std::string& path);

// Makes the creation, rename or removal of a file in `path`'s folder durable: fsync of the
// folder. kInternal naming the folder when it cannot be opened or synced.
Status SyncParentFolder(const std::string& path);

}  // namespace wf::engine
