#include "service/errors.h"

namespace mpim::service {

core::Status StorageError(const core::Status& status) {
  if (status.code() == absl::StatusCode::kInternal) return status;
  return absl::UnavailableError("storage unavailable; retry later");
}

}  // namespace mpim::service
