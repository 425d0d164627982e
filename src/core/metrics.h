// Metrics: counters, gauges and histograms in labelled families, rendered in
// the Prometheus text exposition format 0.0.4 (served at GET /metrics).
//
// Use:
//   auto& requests = registry.Counter("mpim_http_requests_total",
//                                     "HTTP requests handled.", {"method", "code"});
//   Counter& get_ok = requests.With({"GET", "200"});  // cache this reference
//   get_ok.Inc();                                      // hot path
//
// Threads: everything here is thread-safe. The hot path (Counter::Inc/Add,
// Gauge::Set/Add, Histogram::Observe) is relaxed atomics: no lock, no
// allocation. Registering a family and With() take a mutex and may allocate;
// call them at start-up or cache what they return. References returned by a
// registry or family stay valid for the registry's lifetime (children are
// never removed).
//
// Failures: metric names, label names and bucket bounds are constants in our
// code, so a bad one (invalid name, re-registering a name with another type,
// labels or buckets, With() with the wrong number of label values) is a bug:
// the process prints the problem to stderr and aborts. Label *values* may be
// anything (they are escaped on output). Negative or NaN counter increments
// are ignored.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mpim::core {

// The Content-Type of MetricsRegistry::Exposition().
inline constexpr std::string_view kExpositionContentType =
    "text/plain; version=0.0.4; charset=utf-8";

// A monotonically increasing value (requests served, bytes sent).
// Increments land in one of a few cache-line-sized slots picked by the
// calling thread, so io threads counting frames do not fight over one line.
class Counter {
 public:
  void Inc() { Slot().fetch_add(1, std::memory_order_relaxed); }
  // Adds `v`; ignored if `v` is negative or NaN.
  void Add(double v);
  // Replaces the value. Only for collectors mirroring a counter kept
  // elsewhere (CPU seconds from /proc); never mix with Inc/Add.
  void Set(double v);
  double Value() const;

 private:
  static constexpr size_t kSlots = 8;
  struct alignas(64) Padded {
    std::atomic<uint64_t> value{0};
  };
  std::atomic<uint64_t>& Slot();

  std::array<Padded, kSlots> whole_;  // integral increments: one fetch_add
  std::atomic<double> fraction_{0.0};
};

// A value that goes up and down (connections open, queue depth).
class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  void Sub(double v) { value_.fetch_sub(v, std::memory_order_relaxed); }
  void Inc() { Add(1.0); }
  void Dec() { Sub(1.0); }
  double Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Observations counted into buckets with fixed upper bounds (latencies in
// seconds, sizes in bytes). An observation v lands in the first bucket with
// v <= bound; above every bound, or NaN, in the implicit +Inf bucket.
class Histogram {
 public:
  // `bounds` as validated by the registry: finite, strictly increasing.
  explicit Histogram(std::vector<double> bounds);

  void Observe(double v);

  struct Snapshot {
    std::vector<uint64_t> cumulative;  // one per bound, then +Inf (== count)
    double sum = 0.0;
    uint64_t count = 0;
  };
  // Not atomic as a whole while observations race with it, but cumulative
  // counts are always non-decreasing and count equals the +Inf bucket.
  Snapshot Collect() const;

  const std::vector<double>& bounds() const { return bounds_; }

 private:
  const std::vector<double> bounds_;
  const std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // per bucket, +Inf last
  std::atomic<double> sum_{0.0};
};

// 0.5 ms .. 10 s: suits request and delivery latencies, in seconds.
std::vector<double> DefaultLatencyBuckets();
// `count` bounds: start, start*factor, ... (start > 0, factor > 1, count >= 1).
std::vector<double> ExponentialBuckets(double start, double factor, int count);

enum class MetricType { kCounter, kGauge, kHistogram };

// What all families share; the registry renders them through this.
class MetricFamilyBase {
 public:
  virtual ~MetricFamilyBase() = default;

  const std::string& name() const { return name_; }
  const std::string& help() const { return help_; }
  const std::vector<std::string>& label_names() const { return label_names_; }
  MetricType type() const { return type_; }

  // Appends this family's HELP, TYPE and sample lines; nothing if the family
  // has no children yet.
  virtual void Render(std::string& out) const = 0;

 protected:
  MetricFamilyBase(std::string name, std::string help, std::vector<std::string> label_names,
                   MetricType type)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        type_(type) {}

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const MetricType type_;
};

// One metric name with its children, one child per distinct label values.
// T is Counter, Gauge or Histogram.
template <typename T>
class MetricFamily final : public MetricFamilyBase {
 public:
  MetricFamily(std::string name, std::string help, std::vector<std::string> label_names,
               std::vector<double> bounds);

  // The child for these label values (in label_names() order), created on
  // first use. The reference is stable: cache it. Aborts if the number of
  // values differs from the number of label names. A family without labels
  // has one child: With({}).
  T& With(std::initializer_list<std::string_view> label_values);
  T& With(std::span<const std::string> label_values);

  void Render(std::string& out) const override;

  // Histogram families only: the bucket bounds.
  const std::vector<double>& bounds() const { return bounds_; }

 private:
  T& WithKey(std::vector<std::string> key);

  const std::vector<double> bounds_;
  mutable std::mutex mu_;  // guards children_ (the map; children are atomics)
  std::map<std::vector<std::string>, std::unique_ptr<T>> children_;
};

extern template class MetricFamily<Counter>;
extern template class MetricFamily<Gauge>;
extern template class MetricFamily<Histogram>;

using CounterFamily = MetricFamily<Counter>;
using GaugeFamily = MetricFamily<Gauge>;
using HistogramFamily = MetricFamily<Histogram>;

// Owns families and collectors and renders them.
class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Registers a family, or returns the existing one if `name` was registered
  // before with the same type and label names (and bounds); the first help
  // text wins. Names: [a-zA-Z_:][a-zA-Z0-9_:]*; label names:
  // [a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", distinct, and not "le"
  // for histograms. Anything else aborts (see top of file).
  CounterFamily& Counter(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& Gauge(std::string_view name, std::string_view help,
                     std::vector<std::string> label_names = {});
  // `bounds`: finite and strictly increasing; a trailing +Inf is dropped.
  HistogramFamily& Histogram(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names = {},
                             std::vector<double> bounds = DefaultLatencyBuckets());

  // Adds a callback run by every Exposition() before rendering, on the
  // scraping thread, one scrape at a time; it typically sets gauges it
  // captured from this registry. It may register families; it must not call
  // Exposition(). Collectors live as long as the registry.
  void AddCollector(std::function<void()> collector);

  // Runs the collectors, then renders every family sorted by name (children
  // sorted by label values) in the text format 0.0.4. Serves
  // kExpositionContentType.
  std::string Exposition();

 private:
  template <typename F>
  F& Register(std::string_view name, std::string_view help, std::vector<std::string> label_names,
              std::vector<double> bounds);

  std::mutex scrape_mu_;   // one Exposition() at a time; taken before mu_
  mutable std::mutex mu_;  // guards families_ and collectors_
  std::map<std::string, std::unique_ptr<MetricFamilyBase>, std::less<>> families_;
  std::vector<std::function<void()>> collectors_;
};

// The process-wide registry (never destroyed). Libraries register here unless
// given a registry; GET /metrics renders it.
MetricsRegistry& DefaultRegistry();

}  // namespace mpim::core
