// The SQLite schema as numbered migrations, applied in order at open (and by
// `mpim migrate`). The version in place is kept in the schema_version table.
//
// Adding a migration: append one to the list in schema.cc; never edit one
// that has shipped.
#pragma once

#include "core/status.h"
#include "store/sqlite/connection.h"
#include "store/sqlite/options.h"

namespace mpim::store::sqlite {

// The version the code's migrations lead to.
int LatestSchemaVersion();

// Applies the pending migrations on `conn` in one transaction; returns the
// version now in place. kFailedPrecondition if the file is newer than the
// code.
core::StatusOr<int> ApplyMigrations(Connection& conn);

// Opens the database at options.path (creating it) and migrates it.
core::StatusOr<int> Migrate(const SqliteOptions& options);

}  // namespace mpim::store::sqlite
