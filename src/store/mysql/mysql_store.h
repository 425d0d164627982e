// The MySQL/MariaDB engine (store.engine = "mysql"): the store that several
// MPIM nodes share. One writer connection with group commit and a pool of
// reader connections, each on its own thread (executor.h), prepared
// statements throughout (connection.h), migrations at open (schema.h).
#pragma once

#include <memory>

#include "core/status.h"
#include "store/mysql/options.h"
#include "store/store.h"

namespace mpim::store::mysql {

// Migrates the database and opens a store on it. kInvalidArgument for bad
// options; kUnavailable if the server cannot be reached or refuses the
// login; kFailedPrecondition if its schema is newer than this build.
core::StatusOr<std::unique_ptr<Store>> Open(const MysqlOptions& options);

}  // namespace mpim::store::mysql
