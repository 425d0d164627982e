// The SQLite engine: the embedded default. One database file, WAL, one
// writer thread with group commit, a pool of reader threads (see
// executor.h), migrations at open (schema.h).
#pragma once

#include <memory>

#include "core/status.h"
#include "store/sqlite/options.h"
#include "store/store.h"

namespace mpim::store::sqlite {

// Migrates the database at options.path (creating it) and opens a store on
// it. kInvalidArgument for bad options; kUnavailable if the file cannot be
// opened or written; kFailedPrecondition if its schema is newer than this
// build.
core::StatusOr<std::unique_ptr<Store>> Open(const SqliteOptions& options);

}  // namespace mpim::store::sqlite
