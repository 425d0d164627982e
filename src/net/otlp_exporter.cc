#include "net/otlp_exporter.h"

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "core/logging.h"
#include "core/metrics.h"
#include "core/text.h"
#include "net/http_client.h"

namespace mpim::net {
namespace {

namespace json = boost::json;
using core::trace::AttributeValue;
using core::trace::SpanData;

constexpr int kMaxInFlight = 2;

struct ExportMetrics {
  core::Counter& exported;
  core::Counter& queue_full;
  core::Counter& failed;
};

ExportMetrics& Metrics() {
  static ExportMetrics m = [] {
    auto& dropped = core::DefaultRegistry().Counter(
        "mpim_trace_spans_dropped_total",
        "Spans not exported: reason queue_full (the exporter's queue was full) or export_failed "
        "(the collector refused or could not be reached).",
        {"reason"});
    return ExportMetrics{
        core::DefaultRegistry()
            .Counter("mpim_trace_spans_exported_total", "Spans the OTLP collector accepted.")
            .With({}),
        dropped.With({"queue_full"}),
        dropped.With({"export_failed"}),
    };
  }();
  return m;
}

// The OTLP JSON mapping: ids in hex, 64-bit integers as decimal strings.
// Written straight into the text (a tree of json::value per span cost
// several times more, on a thread that shares the server's cores).
void AppendValue(std::string& out, const AttributeValue& v) {
  if (auto* str = std::get_if<std::string>(&v)) {
    out += "{\"stringValue\":";
    core::AppendJsonString(out, *str);
  } else if (auto* i = std::get_if<int64_t>(&v)) {
    out += "{\"intValue\":\"";
    out += std::to_string(*i);
    out += '"';
  } else if (auto* d = std::get_if<double>(&v)) {
    out += "{\"doubleValue\":";
    // JSON has no NaN or infinities: those go as 0.
    out += std::isfinite(*d) ? json::serialize(json::value(*d)) : "0";
  } else {
    out += std::get<bool>(v) ? "{\"boolValue\":true" : "{\"boolValue\":false";
  }
  out += '}';
}

void AppendAttributes(std::string& out,
                      const std::vector<std::pair<std::string, AttributeValue>>& attributes) {
  out += '[';
  for (size_t i = 0; i < attributes.size(); ++i) {
    if (i) out += ',';
    out += "{\"key\":";
    core::AppendJsonString(out, attributes[i].first);
    out += ",\"value\":";
    AppendValue(out, attributes[i].second);
    out += '}';
  }
  out += ']';
}

std::string TracesUrl(const HttpUrl& url, std::string_view endpoint) {
  if (url.target != "/") return std::string(endpoint);
  std::string out(endpoint);
  if (!out.empty() && out.back() == '/') out.pop_back();
  return out + "/v1/traces";
}

}  // namespace

std::string EncodeOtlpJson(const std::vector<SpanData>& spans,
                           const std::vector<std::pair<std::string, AttributeValue>>& resource) {
  std::string out;
  out.reserve(256 + spans.size() * 400);
  out += "{\"resourceSpans\":[{\"resource\":{\"attributes\":";
  AppendAttributes(out, resource);
  out += "},\"scopeSpans\":[{\"scope\":{\"name\":\"mpim\"},\"spans\":[";
  for (size_t k = 0; k < spans.size(); ++k) {
    const SpanData& s = spans[k];
    if (k) out += ',';
    out += "{\"traceId\":\"";
    core::AppendHex(out, s.context.trace_id.data(), s.context.trace_id.size());
    out += "\",\"spanId\":\"";
    core::AppendHex(out, s.context.span_id.data(), s.context.span_id.size());
    out += '"';
    if (s.parent_span_id != std::array<uint8_t, 8>{}) {
      out += ",\"parentSpanId\":\"";
      core::AppendHex(out, s.parent_span_id.data(), s.parent_span_id.size());
      out += '"';
    }
    out += ",\"name\":";
    core::AppendJsonString(out, s.name);
    out += ",\"kind\":";
    out += std::to_string(static_cast<int>(s.kind));
    out += ",\"startTimeUnixNano\":\"";
    out += std::to_string(s.start_unix_ns);
    out += "\",\"endTimeUnixNano\":\"";
    out += std::to_string(s.end_unix_ns);
    out += "\",\"attributes\":";
    AppendAttributes(out, s.attributes);
    if (s.error) {
      out += ",\"status\":{\"code\":2,\"message\":";
      core::AppendJsonString(out, s.status_message);
      out += '}';
    }
    out += '}';
  }
  out += "]}]}]}";
  return out;
}

class OtlpExporter::Impl {
 public:
  Impl(OtlpOptions options, std::string url)
      : options_(std::move(options)), url_(std::move(url)), timer_(io_) {}

  core::Status Start() {
    auto client = HttpClient::Make(io_, HttpClientOptions{.max_connections_per_origin = 4});
    if (!client.ok()) return client.status();
    client_ = std::move(*client);
    Arm();
    thread_ = std::thread([this] { io_.run(); });
    return absl::OkStatus();
  }

  void Export(SpanData span) {
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || queue_.size() >= options_.queue_max) {
        Metrics().queue_full.Inc();
        dropped_.fetch_add(1, std::memory_order_relaxed);
        return;
      }
      queue_.push_back(std::move(span));
      wake = queue_.size() >= options_.batch_max && !wake_posted_;
      if (wake) wake_posted_ = true;
    }
    if (wake) boost::asio::post(io_, [this] { Flush(); });
  }

  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    // Flush what is queued, then wait for it (bounded).
    boost::asio::post(io_, [this] {
      timer_.cancel();
      Flush();
    });
    {
      std::unique_lock lock(mu_);
      done_cv_.wait_for(lock, std::chrono::milliseconds(options_.timeout_ms),
                        [this] { return queue_.empty() && in_flight_ == 0; });
    }
    // From this thread, with the io thread running (HttpClient's rule):
    // answers what is still in flight and closes pooled connections.
    client_->Shutdown();
    boost::asio::post(io_, [this] { work_.reset(); });
    if (thread_.joinable()) thread_.join();
  }

  ~Impl() {
    Shutdown();
    client_.reset();
  }

  std::atomic<int64_t> exported_{0};
  std::atomic<int64_t> dropped_{0};

 private:
  void Arm() {
    timer_.expires_after(std::chrono::milliseconds(options_.interval_ms));
    timer_.async_wait([this](boost::system::error_code ec) {
      if (ec) return;
      Flush();
      Arm();
    });
  }

  // On the thread: sends batches while a request slot is free.
  void Flush() {
    for (;;) {
      std::vector<SpanData> batch;
      {
        std::lock_guard lock(mu_);
        wake_posted_ = false;
        if (queue_.empty() || in_flight_ >= kMaxInFlight) return;
        size_t n = std::min(queue_.size(), options_.batch_max);
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
        ++in_flight_;
      }
      Send(std::move(batch));
    }
  }

  void Send(std::vector<SpanData> batch) {
    const size_t n = batch.size();
    std::string body = EncodeOtlpJson(batch, options_.resource);
    client_->Request("POST", url_, Headers{{"Content-Type", "application/json"}}, std::move(body),
                     options_.timeout_ms, [this, n](core::StatusOr<HttpClientResponse> r) {
                       const bool ok = r.ok() && r->status >= 200 && r->status < 300;
                       if (ok) {
                         Metrics().exported.Add(static_cast<double>(n));
                         exported_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
                       } else {
                         Metrics().failed.Add(static_cast<double>(n));
                         dropped_.fetch_add(static_cast<int64_t>(n), std::memory_order_relaxed);
                         LogFailure(r.ok() ? "HTTP " + std::to_string(r->status)
                                           : std::string(r.status().message()));
                       }
                       {
                         std::lock_guard lock(mu_);
                         --in_flight_;
                       }
                       // Shutdown waits for an empty queue with nothing in flight.
                       done_cv_.notify_all();
                       Flush();
                     });
  }

  // At most one line per minute: a collector that is down must not flood
  // the log.
  void LogFailure(const std::string& error) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_log_ < std::chrono::minutes(1)) return;
    last_log_ = now;
    static const core::Logger log("trace");
    log.Warn("spans not exported; dropped", {{"endpoint", url_}, {"error", error}});
  }

  OtlpOptions options_;
  std::string url_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ =
      boost::asio::make_work_guard(io_);
  boost::asio::steady_timer timer_;
  std::unique_ptr<HttpClient> client_;
  std::thread thread_;
  std::chrono::steady_clock::time_point last_log_{};

  std::mutex mu_;
  std::condition_variable done_cv_;
  std::deque<SpanData> queue_;
  int in_flight_ = 0;
  bool wake_posted_ = false;
  bool stopping_ = false;
};

core::StatusOr<std::shared_ptr<OtlpExporter>> OtlpExporter::Make(OtlpOptions options) {
  auto url = ParseHttpUrl(options.endpoint);
  if (!url.ok()) {
    return absl::InvalidArgumentError("tracing.otlp_endpoint: " +
                                      std::string(url.status().message()));
  }
  if (options.queue_max == 0 || options.batch_max == 0 || options.interval_ms <= 0) {
    return absl::InvalidArgumentError("otlp exporter: queue, batch and interval must be > 0");
  }
  std::string traces_url = TracesUrl(*url, options.endpoint);
  auto impl = std::make_unique<Impl>(std::move(options), std::move(traces_url));
  if (core::Status s = impl->Start(); !s.ok()) return s;
  return std::shared_ptr<OtlpExporter>(new OtlpExporter(std::move(impl)));
}

OtlpExporter::OtlpExporter(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
OtlpExporter::~OtlpExporter() = default;

void OtlpExporter::Export(SpanData span) { impl_->Export(std::move(span)); }
void OtlpExporter::Shutdown() { impl_->Shutdown(); }
int64_t OtlpExporter::exported() const { return impl_->exported_.load(); }
int64_t OtlpExporter::dropped() const { return impl_->dropped_.load(); }

}  // namespace mpim::net
