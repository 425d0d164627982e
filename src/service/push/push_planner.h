// Who gets an offline push for a stored message (protocol.md section 4):
// every device of the conversation's members whose login session has no
// live WebSocket at that moment, except the sender's own devices and
// members who muted the conversation, on a platform whose provider is
// configured. One durable "push" job per device, coalesced per device
// (store::NewJob::coalesce_key "push:<device_id>", push.coalesce_ms), run
// by the task worker (push_job.h).
//
// Called by the fan-out: for a private chat or a small group right after
// the live delivery, off the send's reply path; for a large group by the
// fan-out job for each page of members it delivers to, which waits for the
// push jobs to be durable before it is acked (so a crash re-plans them).
// A push planned off the reply path is lost if the process dies between the
// message's commit and the push job's (the message itself is durable; the
// client finds it by sync); "no live WebSocket" is read from the route
// table a moment after the commit, so a session that opens or closes in
// that moment may count either way; and a route table that cannot be
// reached counts every session as offline (a push too many rather than one
// missing).
//
// Metrics: mpim_push_plans_total{result} (queued, none, failed) per planned
// message; mpim_jobs_enqueued_total{kind="push"}.
//
// Thread-safe; never blocks; `done` runs once on a store or route thread.
#pragma once

#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "core/callback.h"
#include "core/config.h"
#include "route/route_table.h"
#include "store/store.h"

namespace mpim::service::push {

inline constexpr char kPushJobKind[] = "push";

// A push job's payload: which device, and the message it announces (the
// badge is counted when it is sent).
struct PushPayload {
  int64_t device_id = 0;
  std::string conv_id;
  int64_t seq = 0;
  int64_t msg_id = 0;
  int64_t from = 0;
  std::optional<std::string> preview;
  std::string traceparent;  // the send's trace, when traced (core/trace.h)
};
std::string EncodePayload(const PushPayload& p);
core::StatusOr<PushPayload> DecodePayload(const std::string& json);

class PushPlanner {
 public:
  // `platforms`: those with a configured provider (others are left out).
  PushPlanner(store::Store& store, route::RouteTable& routes, const core::PushConfig& config,
              std::set<std::string> platforms);

  // `msgs` (one conversation's, in seq order) to `members`: the devices to
  // push announce the last of them. OK once their jobs are durable (or
  // there were none); the first error otherwise.
  void Plan(const std::vector<int64_t>& members, const std::vector<store::Message>& msgs,
            core::DoneCallback done);

  // Called after push jobs are durable (the wiring wakes the task worker).
  void SetOnJob(std::function<void()> fn) { on_job_ = std::move(fn); }
  bool enabled() const { return !platforms_.empty(); }

 private:
  // Both answer how many push jobs they queued.
  void PlanChunk(std::vector<int64_t> users, const store::Message& msg, std::string traceparent,
                 core::Callback<size_t> done);
  void Enqueue(std::vector<store::Device> devices, const store::Message& msg,
               std::string traceparent, core::Callback<size_t> done);

  store::Store& store_;
  route::RouteTable& routes_;
  const core::PushConfig config_;
  const std::set<std::string> platforms_;
  std::function<void()> on_job_;
};

}  // namespace mpim::service::push
