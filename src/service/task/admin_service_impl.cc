#include "service/task/admin_service_impl.h"

#include <memory>

#include "service/errors.h"

namespace mpim::service {
namespace {

// Not found stays what it is; the rest is the storage's trouble.
core::Status JobError(const core::Status& s) {
  return s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kInvalidArgument
             ? s
             : StorageError(s);
}

}  // namespace

void AdminServiceImpl::ListJobs(const store::JobFilter& filter,
                                core::Callback<store::Page<store::Job>> done) {
  store_.jobs().List(
      filter, [done = std::move(done)](core::StatusOr<store::Page<store::Job>> page) mutable {
        if (!page.ok()) return std::move(done)(JobError(page.status()));
        std::move(done)(std::move(*page));
      });
}

void AdminServiceImpl::GetJob(int64_t job_id, core::Callback<store::Job> done) {
  store_.jobs().Get(job_id, [done = std::move(done)](core::StatusOr<store::Job> job) mutable {
    if (!job.ok()) return std::move(done)(JobError(job.status()));
    std::move(done)(std::move(*job));
  });
}

void AdminServiceImpl::RetryJob(int64_t job_id, core::DoneCallback done) {
  store_.jobs().Requeue(job_id, [this, done = std::move(done)](core::Status s) mutable {
    if (s.ok() && on_job_) on_job_();
    std::move(done)(s.ok() ? s : JobError(s));
  });
}

void AdminServiceImpl::DeleteJob(int64_t job_id, core::DoneCallback done) {
  store_.jobs().Delete(job_id, [done = std::move(done)](core::Status s) mutable {
    std::move(done)(s.ok() ? s : JobError(s));
  });
}

void AdminServiceImpl::Stats(core::Callback<AdminStats> done) {
  // Three reads, one after the other (an admin call, not a hot path).
  auto stats = std::make_shared<AdminStats>();
  store_.jobs().Count([this, stats, done = std::move(done)](
                          core::StatusOr<std::vector<store::JobCount>> counts) mutable {
    if (!counts.ok()) return std::move(done)(StorageError(counts.status()));
    for (const store::JobCount& c : *counts) {
      switch (c.state) {
        case store::JobState::kReady:
          stats->ready += c.count;
          break;
        case store::JobState::kLeased:
          stats->leased += c.count;
          break;
        case store::JobState::kDead:
          stats->dead += c.count;
          break;
      }
    }
    store_.users().Count(
        [this, stats, done = std::move(done)](core::StatusOr<int64_t> users) mutable {
          if (!users.ok()) return std::move(done)(StorageError(users.status()));
          stats->users = *users;
          routes_.CountConnections(
              [stats, done = std::move(done)](core::StatusOr<int64_t> sessions) mutable {
                if (!sessions.ok()) {
                  return std::move(done)(absl::UnavailableError("the route table did not answer"));
                }
                stats->sessions = *sessions;
                std::move(done)(*stats);
              });
        });
  });
}

}  // namespace mpim::service
