// The admin API's service (protocol.md section 5): the task role's durable
// jobs (fan-out, push, indexing) listed, inspected, retried and deleted,
// and a few counts.
//
// Asynchronous; callbacks run once on an internal thread. Errors:
// invalid_argument (bad page size), not_found (no such job; retry of a job
// that is not a dead letter), unavailable.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every call may be a network round trip and also fails
// with unavailable when no logic node answers in time.
#pragma once

#include <cstdint>

#include "core/callback.h"
#include "store/job_store.h"

namespace mpim::service {

struct AdminStats {
  int64_t ready = 0;
  int64_t leased = 0;
  int64_t dead = 0;
  int64_t sessions = 0;  // live WebSocket sessions, cluster-wide
  int64_t users = 0;
};

class AdminService {
 public:
  virtual ~AdminService() = default;

  virtual void ListJobs(const store::JobFilter& filter,
                        core::Callback<store::Page<store::Job>> done) = 0;
  virtual void GetJob(int64_t job_id, core::Callback<store::Job> done) = 0;
  // A dead letter runs again with a fresh attempt budget.
  virtual void RetryJob(int64_t job_id, core::DoneCallback done) = 0;
  virtual void DeleteJob(int64_t job_id, core::DoneCallback done) = 0;
  virtual void Stats(core::Callback<AdminStats> done) = 0;
};

}  // namespace mpim::service
