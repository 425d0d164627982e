// AdminService on the store's job queue, users and the route table.
#pragma once

#include <functional>

#include "route/route_table.h"
#include "service/admin_service.h"
#include "store/store.h"

namespace mpim::service {

class AdminServiceImpl final : public AdminService {
 public:
  AdminServiceImpl(store::Store& store, route::RouteTable& routes)
      : store_(store), routes_(routes) {}

  // Called after a dead letter is ready again (the wiring wakes the task
  // worker). Set before use.
  void SetOnJob(std::function<void()> fn) { on_job_ = std::move(fn); }

  void ListJobs(const store::JobFilter& filter,
                core::Callback<store::Page<store::Job>> done) override;
  void GetJob(int64_t job_id, core::Callback<store::Job> done) override;
  void RetryJob(int64_t job_id, core::DoneCallback done) override;
  void DeleteJob(int64_t job_id, core::DoneCallback done) override;
  void Stats(core::Callback<AdminStats> done) override;

 private:
  store::Store& store_;
  route::RouteTable& routes_;
  std::function<void()> on_job_;
};

}  // namespace mpim::service
