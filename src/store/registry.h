// Engines by name: config picks the storage engine with a string
// ("sqlite"; "mysql" comes later). This is the one place that knows every
// engine.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/common.h"
#include "store/sqlite/options.h"
#include "store/store.h"

namespace mpim::store {

// Options of every engine; OpenStore reads the named engine's part.
struct StoreOptions {
  sqlite::SqliteOptions sqlite;
  // mysql::MysqlOptions mysql;  (added with the MySQL engine)
};

// Opens a store of the named engine, applying pending migrations first.
// kInvalidArgument for an unknown engine or bad options; kUnavailable if the
// storage cannot be opened or written.
core::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view engine,
                                                 const StoreOptions& options);

// Applies pending migrations only (`mpim migrate`); returns the schema
// version now in place.
core::StatusOr<int> MigrateStore(std::string_view engine, const StoreOptions& options);

// The engine names OpenStore accepts.
std::vector<std::string> StoreEngines();

}  // namespace mpim::store
