#include "service/task/fanout_job.h"

#include <algorithm>
#include <boost/json/parse.hpp>
#include <chrono>
#include <future>
#include <map>
#include <tuple>

#include "core/trace.h"
#include "store/blocking.h"
#include "store/conv_id.h"

namespace mpim::service {
namespace {

// How long a batch waits at most for the io threads to take it.
constexpr auto kTakenWait = std::chrono::seconds(1);

struct FanoutJob {
  int64_t msg_id = 0;
  bool recall = false;
  bool qos1 = true;
  Priority priority = Priority::kNormal;
  core::trace::SpanContext trace;  // the send's fan-out step, when traced
};

core::StatusOr<FanoutJob> ParsePayload(const std::string& text) {
  boost::system::error_code ec;
  auto payload = boost::json::parse(text, ec);
  if (ec || !payload.is_object()) return absl::InvalidArgumentError("fanout: bad payload");
  const auto& p = payload.get_object();
  const auto* msg_id = p.if_contains("msg_id");
  if (!msg_id || !msg_id->is_int64()) return absl::InvalidArgumentError("fanout: no msg_id");
  FanoutJob job;
  job.msg_id = msg_id->get_int64();
  job.recall = p.contains("recall") && p.at("recall").is_bool() && p.at("recall").get_bool();
  job.qos1 = !p.contains("qos1") || !p.at("qos1").is_bool() || p.at("qos1").get_bool();
  int priority = p.contains("priority") && p.at("priority").is_int64()
                     ? static_cast<int>(p.at("priority").get_int64())
                     : 1;
  job.priority = static_cast<Priority>(priority & 3);
  if (const auto* tp = p.if_contains("traceparent"); tp && tp->is_string()) {
    if (auto parsed = core::trace::SpanContext::Parse(std::string_view(tp->get_string()))) {
      job.trace = *parsed;
    }
  }
  return job;
}

// Calls fn(users) for every page of the group's members. A group that is
// gone has nobody left to tell: OK.
template <typename Fn>
core::Status ForEachMemberPage(store::Store& store, int64_t group_id, int64_t batch, Fn&& fn) {
  int64_t after = 0;
  for (;;) {
    auto page = store::Await<store::Page<store::GroupMember>>([&](auto cb) {
      store.groups().ListMembers(group_id, after,
                                 static_cast<int>(std::min<int64_t>(batch, store::kMaxPageLimit)),
                                 std::move(cb));
    });
    if (!page.ok()) {
      return page.status().code() == absl::StatusCode::kNotFound ? absl::OkStatus() : page.status();
    }
    std::vector<int64_t> users;
    users.reserve(page->items.size());
    for (const auto& m : page->items) users.push_back(m.user_id);
    fn(users);
    if (!page->has_more || page->items.empty()) return absl::OkStatus();
    after = page->items.back().user_id;
  }
}

}  // namespace

TaskWorker::Handler FanoutJobHandler(store::Store& store, Deliverer& deliverer, int64_t batch,
                                     push::PushPlanner* planner) {
  return [&store, &deliverer, batch, planner](const std::vector<store::Job>& jobs) {
    std::vector<core::Status> results(jobs.size());
    std::vector<FanoutJob> parsed(jobs.size());
    // The messages, asked for all at once.
    std::vector<std::future<core::StatusOr<store::Message>>> gets(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      auto job = ParsePayload(jobs[i].payload);
      if (!job.ok()) {
        results[i] = job.status();
        continue;
      }
      parsed[i] = *job;
      gets[i] = store::Begin<store::Message>(
          [&](auto cb) { store.messages().Get(job->msg_id, std::move(cb)); });
    }
    // Messages (not recalls) of one group with the same qos and priority go
    // out together, in seq order: one pass over the members for all.
    using Key = std::tuple<int64_t, bool, int>;
    std::map<Key, std::vector<std::pair<store::Message, size_t>>> sends;
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!gets[i].valid()) continue;
      auto message = gets[i].get();
      if (!message.ok()) {
        // A message deleted with its group has nobody left to tell.
        if (message.status().code() != absl::StatusCode::kNotFound) results[i] = message.status();
        continue;
      }
      auto ref = store::ParseConvId(message->conv_id);
      if (!ref || ref->type != store::ConvType::kGroup) continue;
      const FanoutJob& job = parsed[i];
      if (job.recall) {
        results[i] = ForEachMemberPage(store, ref->a, batch, [&](const std::vector<int64_t>& u) {
          deliverer.Recall(u, message->conv_id, message->seq, message->msg_id);
        });
        continue;
      }
      sends[{ref->a, job.qos1, static_cast<int>(job.priority)}].emplace_back(std::move(*message),
                                                                             i);
    }
    // Traced jobs: a span each for this run, from here to their messages'
    // hand-off.
    std::vector<core::trace::Span> spans(jobs.size());
    for (size_t i = 0; i < jobs.size(); ++i) {
      spans[i] =
          core::trace::Span::Start("fanout job", parsed[i].trace, core::trace::SpanKind::kConsumer);
      if (spans[i].recording()) {
        spans[i].Set("mpim.msg_id", parsed[i].msg_id);
        spans[i].Set("mpim.attempt", static_cast<int64_t>(jobs[i].attempts));
        spans[i].Set("mpim.batch_jobs", static_cast<int64_t>(jobs.size()));
      }
    }
    std::vector<std::future<void>> taken;
    for (auto& [key, entries] : sends) {
      // The deliverer's steps join the first traced job of the batch.
      core::trace::SpanContext trace;
      for (const auto& e : entries) {
        if (spans[e.second].recording()) {
          trace = spans[e.second].context();
          break;
        }
      }
      core::trace::Scope scope(trace);
      std::sort(entries.begin(), entries.end(),
                [](const auto& a, const auto& b) { return a.first.seq < b.first.seq; });
      std::vector<store::Message> msgs;
      msgs.reserve(entries.size());
      for (auto& e : entries) msgs.push_back(std::move(e.first));
      const auto& [group_id, qos1, priority] = key;
      core::Status planned;
      core::Status s =
          ForEachMemberPage(store, group_id, batch, [&](const std::vector<int64_t>& u) {
            auto promise = std::make_shared<std::promise<void>>();
            taken.push_back(promise->get_future());
            deliverer.Messages(u, msgs, qos1, static_cast<Priority>(priority),
                               [promise] { promise->set_value(); });
            if (planner && planned.ok()) {
              planned = store::AwaitStatus([&](auto cb) { planner->Plan(u, msgs, std::move(cb)); });
            }
          });
      // Pushes not queued: the job runs again (members already reached drop
      // what they have; pushes are coalesced per device).
      if (s.ok()) s = planned;
      for (const auto& e : entries) results[e.second] = s;
    }
    // Done once the sessions have them queued: meanwhile the next jobs wait
    // in the queue and go out together (more frames per socket write) rather
    // than piling up as tasks on the io threads. Bounded: io threads that
    // stopped (shutdown) never take them, and the worker must still stop.
    const auto deadline = std::chrono::steady_clock::now() + kTakenWait;
    for (auto& t : taken) t.wait_until(deadline);
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!results[i].ok()) spans[i].SetError(std::string(results[i].message()));
      spans[i].End();
    }
    return results;
  };
}

}  // namespace mpim::service
