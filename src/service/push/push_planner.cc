#include "service/push/push_planner.h"

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <memory>
#include <mutex>
#include <unordered_set>

#include "core/logging.h"
#include "core/metrics.h"
#include "core/trace.h"
#include "service/push/notification.h"
#include "service/task/task_worker.h"

namespace mpim::service::push {
namespace {

const core::Logger& Log() {
  static const core::Logger log("push");
  return log;
}

// Each Plan's end: pushes queued, none to queue, or failed.
void CountPlan(const char* result) {
  static core::CounterFamily& plans = core::DefaultRegistry().Counter(
      "mpim_push_plans_total",
      "Stored messages whose offline pushes were planned, by result (queued, none, failed).",
      {"result"});
  plans.With({result}).Inc();
}

// Joins `n` chunks' results into one: the first error wins, counts add up.
class Join {
 public:
  Join(size_t n, core::Callback<size_t> done) : left_(n), done_(std::move(done)) {}
  void One(core::StatusOr<size_t> r) {
    {
      std::lock_guard lock(mu_);
      if (!r.ok()) {
        if (first_.ok()) first_ = r.status();
      } else {
        queued_ += *r;
      }
      if (--left_ > 0) return;
    }
    if (!first_.ok()) return std::move(done_)(first_);
    std::move(done_)(queued_);
  }

 private:
  std::mutex mu_;  // guards left_, first_ and queued_
  size_t left_;
  core::Status first_;
  size_t queued_ = 0;
  core::Callback<size_t> done_;
};

std::optional<std::string> PreviewOfMessage(const store::Message& m) {
  if (m.type != "text") return std::nullopt;
  boost::system::error_code ec;
  auto body = boost::json::parse(m.body, ec);
  if (ec || !body.is_object()) return std::nullopt;
  const auto* text = body.get_object().if_contains("text");
  if (!text || !text->is_string()) return std::nullopt;
  return PreviewOf(std::string_view(text->get_string()));
}

}  // namespace

std::string EncodePayload(const PushPayload& p) {
  boost::json::object o{{"device_id", p.device_id},
                        {"conv_id", p.conv_id},
                        {"seq", p.seq},
                        {"msg_id", p.msg_id},
                        {"from", p.from}};
  if (p.preview) o["preview"] = *p.preview;
  if (!p.traceparent.empty()) o["traceparent"] = p.traceparent;
  return boost::json::serialize(o);
}

core::StatusOr<PushPayload> DecodePayload(const std::string& json) {
  boost::system::error_code ec;
  auto v = boost::json::parse(json, ec);
  if (ec || !v.is_object()) return absl::InvalidArgumentError("push: the payload is not JSON");
  const auto& o = v.get_object();
  auto int_of = [&](const char* key) -> std::optional<int64_t> {
    const auto* x = o.if_contains(key);
    if (!x || !x->is_int64()) return std::nullopt;
    return x->get_int64();
  };
  PushPayload p;
  auto device = int_of("device_id");
  auto seq = int_of("seq");
  auto msg = int_of("msg_id");
  auto from = int_of("from");
  const auto* conv = o.if_contains("conv_id");
  if (!device || !seq || !msg || !from || !conv || !conv->is_string()) {
    return absl::InvalidArgumentError("push: the payload lacks a field");
  }
  p.device_id = *device;
  p.seq = *seq;
  p.msg_id = *msg;
  p.from = *from;
  p.conv_id = std::string(conv->get_string());
  if (const auto* preview = o.if_contains("preview"); preview && preview->is_string()) {
    p.preview = std::string(preview->get_string());
  }
  if (const auto* tp = o.if_contains("traceparent"); tp && tp->is_string()) {
    p.traceparent = std::string(tp->get_string());
  }
  return p;
}

PushPlanner::PushPlanner(store::Store& store, route::RouteTable& routes,
                         const core::PushConfig& config, std::set<std::string> platforms)
    : store_(store), routes_(routes), config_(config), platforms_(std::move(platforms)) {}

void PushPlanner::Plan(const std::vector<int64_t>& members, const std::vector<store::Message>& msgs,
                       core::DoneCallback done) {
  if (platforms_.empty() || msgs.empty()) return std::move(done)(absl::OkStatus());
  const store::Message& last = msgs.back();
  if (last.type == "system") return std::move(done)(absl::OkStatus());
  std::vector<int64_t> users;
  users.reserve(members.size());
  for (int64_t u : members) {
    if (u != last.sender) users.push_back(u);
  }
  if (users.empty()) return std::move(done)(absl::OkStatus());
  const size_t chunk = store::kMaxPageLimit;
  const size_t chunks = (users.size() + chunk - 1) / chunk;
  // Traced: the offline devices' lookup and their push jobs, which carry
  // the trace on to the task role.
  auto span = core::trace::Span::Start("push plan", core::trace::Current());
  span.Set("mpim.recipients", static_cast<int64_t>(users.size()));
  const std::string traceparent = span.recording() ? span.context().Traceparent() : "";
  auto join = std::make_shared<Join>(chunks, [done = std::move(done), span = std::move(span)](
                                                 core::StatusOr<size_t> queued) mutable {
    CountPlan(!queued.ok() ? "failed" : *queued > 0 ? "queued" : "none");
    if (queued.ok()) span.Set("mpim.push_jobs", static_cast<int64_t>(*queued));
    if (!queued.ok()) span.SetError(std::string(queued.status().message()));
    span.End();
    std::move(done)(queued.status());
  });
  for (size_t i = 0; i < users.size(); i += chunk) {
    std::vector<int64_t> part(
        users.begin() + static_cast<ptrdiff_t>(i),
        users.begin() + static_cast<ptrdiff_t>(std::min(users.size(), i + chunk)));
    PlanChunk(std::move(part), last, traceparent,
              [join](core::StatusOr<size_t> n) { join->One(std::move(n)); });
  }
}

void PushPlanner::PlanChunk(std::vector<int64_t> users, const store::Message& msg,
                            std::string traceparent, core::Callback<size_t> done) {
  store_.sessions().DevicesOf(
      users, [this, msg, traceparent = std::move(traceparent),
              done = std::move(done)](core::StatusOr<std::vector<store::Device>> devices) mutable {
        if (!devices.ok()) return std::move(done)(devices.status());
        std::erase_if(*devices,
                      [this](const store::Device& d) { return !platforms_.contains(d.platform); });
        if (devices->empty()) return std::move(done)(size_t{0});
        std::vector<int64_t> owners;
        for (const store::Device& d : *devices) owners.push_back(d.user_id);
        std::sort(owners.begin(), owners.end());
        owners.erase(std::unique(owners.begin(), owners.end()), owners.end());
        auto shared = std::make_shared<std::vector<store::Device>>(std::move(*devices));
        routes_.Lookup(owners, [this, msg, shared, owners, traceparent = std::move(traceparent),
                                done = std::move(done)](
                                   core::StatusOr<std::vector<route::Route>> routes) mutable {
          if (routes.ok()) {
            std::unordered_set<int64_t> live;
            for (const route::Route& r : *routes) live.insert(r.session_id);
            std::erase_if(*shared,
                          [&](const store::Device& d) { return live.contains(d.session_id); });
          } else {
            Log().Warn("route table unreachable; pushing to every device",
                       {{"error", std::string(routes.status().message())}});
          }
          if (shared->empty()) return std::move(done)(size_t{0});
          store_.conversations().MutedAmong(
              msg.conv_id, owners,
              [this, msg, shared, traceparent = std::move(traceparent),
               done = std::move(done)](core::StatusOr<std::vector<int64_t>> muted) mutable {
                if (!muted.ok()) return std::move(done)(muted.status());
                std::erase_if(*shared, [&](const store::Device& d) {
                  return std::binary_search(muted->begin(), muted->end(), d.user_id);
                });
                Enqueue(std::move(*shared), msg, std::move(traceparent), std::move(done));
              });
        });
      });
}

void PushPlanner::Enqueue(std::vector<store::Device> devices, const store::Message& msg,
                          std::string traceparent, core::Callback<size_t> done) {
  if (devices.empty()) return std::move(done)(size_t{0});
  PushPayload payload{.conv_id = msg.conv_id,
                      .seq = msg.seq,
                      .msg_id = msg.msg_id,
                      .from = msg.sender,
                      .traceparent = std::move(traceparent)};
  if (config_.preview) payload.preview = PreviewOfMessage(msg);
  std::vector<store::NewJob> jobs;
  jobs.reserve(devices.size());
  for (const store::Device& d : devices) {
    payload.device_id = d.device_id;
    store::NewJob job;
    job.kind = kPushJobKind;
    job.payload = EncodePayload(payload);
    job.max_attempts = static_cast<int>(config_.max_attempts);
    job.backoff_base_ms = config_.retry_base_ms;
    job.coalesce_key = "push:" + std::to_string(d.device_id);
    job.coalesce_ms = config_.coalesce_ms;
    jobs.push_back(std::move(job));
  }
  const size_t n = jobs.size();
  store_.jobs().EnqueueMany(
      jobs, [this, n, done = std::move(done)](core::StatusOr<std::vector<int64_t>> ids) mutable {
        if (!ids.ok()) {
          Log().Warn("push jobs not queued", {{"error", std::string(ids.status().message())}});
          return std::move(done)(ids.status());
        }
        CountEnqueued(kPushJobKind, n);
        if (on_job_) on_job_();
        std::move(done)(n);
      });
}

}  // namespace mpim::service::push
