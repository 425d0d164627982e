// Storage engines by name: config's store.engine picks one (core/engines.cc
// holds the names). This file maps each name to the engine's Open and
// Migrate; each engine builds its own options from the configuration.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "store/store.h"

namespace mpim::store {

// Opens a store of config.store.engine, applying pending migrations first.
// kInvalidArgument for an unknown engine or bad options; kUnavailable if the
// storage cannot be opened or written.
core::StatusOr<std::unique_ptr<Store>> OpenStore(const core::Config& config);

// Applies pending migrations only (`mpim migrate`); returns the schema
// version now in place.
core::StatusOr<int> MigrateStore(const core::Config& config);

// The engine names this registry can open.
std::vector<std::string> StoreEngines();

}  // namespace mpim::store
