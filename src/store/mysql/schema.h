// The MySQL schema and its migrations, kept in the binary and versioned like
// the SQLite engine's (schema_version holds the number applied).
//
// Several nodes may start at once against one empty database: migrations run
// under the advisory lock GET_LOCK('mpim_migrate'), so one node applies them
// while the others wait, then find them applied. DDL commits by itself in
// MySQL, so each migration is a list of statements that can run again after
// a crash halfway (IF NOT EXISTS), and schema_version moves after each one.
#pragma once

#include "core/status.h"
#include "store/mysql/connection.h"
#include "store/mysql/options.h"

namespace mpim::store::mysql {

int LatestSchemaVersion();

// Brings the schema to LatestSchemaVersion(); returns the version in place.
// kFailedPrecondition if the database is newer than this build.
core::StatusOr<int> ApplyMigrations(Connection& conn);

// Opens a connection and applies pending migrations (`mpim migrate`).
core::StatusOr<int> Migrate(const MysqlOptions& options);

}  // namespace mpim::store::mysql
