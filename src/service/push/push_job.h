// The "push" job (push_planner.h queues them): one notification to one
// device, sent by the provider of the device's platform. The jobs of a
// lease batch go out together, each provider's at once (APNs multiplexes
// them on one connection). Outcomes (protocol.md section 4):
//   delivered                -> job done;
//   token gone (410/404)     -> the device is removed, job done;
//   retry (429, 5xx, timeout, connection) -> ready again after about
//       push.retry_base_ms * 2^(attempt-1), jittered +-25 %, or the
//       provider's Retry-After if longer; a dead letter after
//       push.max_attempts attempts (store::JobStore);
//   rejected (other 4xx)     -> a dead letter at once.
// A device that is gone (deleted, logged out) ends its job quietly. Retries
// wait in the durable queue, never in memory.
//
// Metrics: mpim_push_deliveries_total{provider,outcome},
// mpim_push_provider_seconds{provider}.
#pragma once

#include "core/config.h"
#include "service/push/registry.h"
#include "service/task/task_worker.h"
#include "store/store.h"

namespace mpim::service::push {

TaskWorker::Handler PushJobHandler(store::Store& store, const Providers& providers,
                                   const core::PushConfig& config);

// The delay before retry number `attempt` (1: the first retry), jittered.
int64_t RetryDelayMs(int64_t base_ms, int attempt);

}  // namespace mpim::service::push
