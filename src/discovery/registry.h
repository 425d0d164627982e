// Opens the discovery engine that discovery.engine names (engines listed in
// core/engines.cc).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/config.h"
#include "discovery/discovery.h"

namespace mpim::discovery {

// The names this registry opens (tests/app/engines_test.cc checks them
// against core::Engines()).
std::vector<std::string> DiscoveryEngines();

// invalid_argument for an unknown engine (the config schema refuses those
// first).
core::StatusOr<std::unique_ptr<Discovery>> OpenDiscovery(const core::DiscoveryConfig& config);

}  // namespace mpim::discovery
