#include "service/fanout.h"

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/logging.h"
#include "core/trace.h"
#include "service/task/task_worker.h"

namespace mpim::service {

void Fanout::SmallRecipients(const store::ConvRef& ref, core::Callback<MemberList> done) {
  if (ref.type == store::ConvType::kPrivate) {
    return std::move(done)(
        std::make_shared<const std::vector<int64_t>>(std::vector<int64_t>{ref.a, ref.b}));
  }
  members_.Get(ref.a, std::move(done));
}

void Fanout::Message(const store::Message& m, route::ConnId origin_conn, bool qos1,
                     Priority priority, core::DoneCallback done) {
  auto ref = store::ParseConvId(m.conv_id);
  if (!ref) return std::move(done)(absl::InternalError("stored message has a bad conv_id"));
  // Traced: the recipients' lookup and the hand-off (to the deliverer, or
  // to a job for a large group), the deliverer's steps inside it.
  auto span = core::trace::Span::Start("fan-out", core::trace::Current());
  span.Set("mpim.conv_id", m.conv_id);
  SmallRecipients(*ref, [this, m, origin_conn, qos1, priority, span = std::move(span),
                         done = std::move(done)](core::StatusOr<MemberList> members) mutable {
    core::trace::Scope scope(span.context());
    if (!members.ok()) {
      span.SetError(std::string(members.status().message()));
      return std::move(done)(members.status());
    }
    if (*members) {
      span.Set("mpim.recipients", static_cast<int64_t>((*members)->size()));
      span.Set("mpim.mode", "direct");
      deliverer_.Message(**members, origin_conn, m, qos1, priority);
      if (planner_) {
        // Off the reply path (push_planner.h says what that costs).
        planner_->Plan(**members, {m}, [](core::Status s) {
          if (s.ok()) return;
          static const core::Logger log("push");
          log.Warn("offline pushes not planned", {{"error", std::string(s.message())}});
        });
      }
      span.End();
      return std::move(done)(absl::OkStatus());
    }
    span.Set("mpim.mode", "job");
    EnqueueJob(m, /*recall=*/false, qos1, priority,
               [span = std::move(span), done = std::move(done)](core::Status s) mutable {
                 if (!s.ok()) span.SetError(std::string(s.message()));
                 span.End();
                 std::move(done)(std::move(s));
               });
  });
}

void Fanout::Recall(const store::Message& m, core::DoneCallback done) {
  auto ref = store::ParseConvId(m.conv_id);
  if (!ref) return std::move(done)(absl::InternalError("stored message has a bad conv_id"));
  SmallRecipients(*ref,
                  [this, m, done = std::move(done)](core::StatusOr<MemberList> members) mutable {
                    if (!members.ok()) return std::move(done)(members.status());
                    if (*members) {
                      deliverer_.Recall(**members, m.conv_id, m.seq, m.msg_id);
                      return std::move(done)(absl::OkStatus());
                    }
                    EnqueueJob(m, /*recall=*/true, false, Priority::kHigh, std::move(done));
                  });
}

void Fanout::EnqueueJob(const store::Message& m, bool recall, bool qos1, Priority priority,
                        core::DoneCallback done) {
  boost::json::object payload{{"msg_id", m.msg_id},
                              {"recall", recall},
                              {"qos1", qos1},
                              {"priority", static_cast<int>(priority)}};
  // The job's run joins the trace that made it.
  if (const core::trace::SpanContext trace = core::trace::Current(); trace.recording()) {
    payload["traceparent"] = trace.Traceparent();
  }
  store::NewJob job;
  job.kind = kJobKind;
  job.payload = boost::json::serialize(payload);
  job.max_attempts = 10;
  job.backoff_base_ms = 200;
  job.backoff_max_ms = 30000;
  store_.jobs().Enqueue(job, [this, done = std::move(done)](core::StatusOr<int64_t> id) mutable {
    if (id.ok()) CountEnqueued(kJobKind, 1);
    if (id.ok() && on_job_) on_job_();
    if (!id.ok()) {
      static const core::Logger log("fanout");
      log.Warn("fan-out job not enqueued; members will find the message by sync",
               {{"error", std::string(id.status().message())}});
    }
    std::move(done)(id.status());
  });
}

}  // namespace mpim::service
