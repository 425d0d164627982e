// Completion callbacks for asynchronous APIs (stores, services): invoked
// exactly once, with the result. Move-only, so they may own what they carry.
#pragma once

#include "absl/functional/any_invocable.h"
#include "core/status.h"

namespace mpim::core {

template <typename T>
using Callback = absl::AnyInvocable<void(StatusOr<T>) &&>;

using DoneCallback = absl::AnyInvocable<void(Status) &&>;

}  // namespace mpim::core
