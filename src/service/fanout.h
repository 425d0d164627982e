// Fan-out: who gets an event of a conversation (architecture.md section 4,
// step 4). Private chats: the two users. Groups up to groups.fanout_threshold:
// every member, from the member cache, in the caller's path. Larger groups:
// one durable "fanout" job, which the task worker pages through (see
// service/task/task_worker.h); offline members find everything through
// hello and sync, and nothing is written per member per message. Members
// without a live session get an offline push (push/push_planner.h) when a
// planner is set.
//
// Thread-safe; never blocks.
#pragma once

#include <functional>
#include <optional>

#include "core/config.h"
#include "service/deliverer.h"
#include "service/group/member_cache.h"
#include "service/push/push_planner.h"
#include "store/conv_id.h"
#include "store/store.h"

namespace mpim::service {

class Fanout {
 public:
  Fanout(store::Store& store, Deliverer& deliverer, MemberCache& members)
      : store_(store), deliverer_(deliverer), members_(members) {}

  // The conversation's members when it is small (private or up to the
  // threshold); null for a large group.
  void SmallRecipients(const store::ConvRef& ref, core::Callback<MemberList> done);

  // A stored message to every member's connections (not `origin_conn`).
  // Completes once it is delivered (small) or its job is durable (large).
  void Message(const store::Message& m, route::ConnId origin_conn, bool qos1, Priority priority,
               core::DoneCallback done);
  // A recall event to every member.
  void Recall(const store::Message& m, core::DoneCallback done);

  // Offline pushes for the messages this fans out (null: none). Set before
  // SetOnJob and before use.
  void SetPushPlanner(push::PushPlanner* planner) { planner_ = planner; }
  // Called after a fan-out job (or a push job) is durable (the wiring wakes
  // the task worker).
  void SetOnJob(std::function<void()> fn) {
    if (planner_) planner_->SetOnJob(fn);
    on_job_ = std::move(fn);
  }

  static constexpr char kJobKind[] = "fanout";

 private:
  void EnqueueJob(const store::Message& m, bool recall, bool qos1, Priority priority,
                  core::DoneCallback done);

  store::Store& store_;
  Deliverer& deliverer_;
  MemberCache& members_;
  push::PushPlanner* planner_ = nullptr;
  std::function<void()> on_job_;
};

}  // namespace mpim::service
