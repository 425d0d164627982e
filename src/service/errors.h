// How services report storage failures to clients: `unavailable` (safe to
// retry), except `internal`, which stays a bug. Codes that carry meaning
// (not_found, already_exists, ...) are mapped by each service before this.
#pragma once

#include "core/status.h"

namespace mpim::service {

core::Status StorageError(const core::Status& status);

}  // namespace mpim::service
