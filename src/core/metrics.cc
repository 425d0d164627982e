#include "core/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <string>
#include <utility>

namespace mpim::core {
namespace {

// Integral doubles up to 2^53 are exact as integers.
constexpr double kMaxExactInteger = 9007199254740992.0;

[[noreturn]] void Die(std::string_view what, std::string_view name) {
  std::fprintf(stderr, "metrics: %.*s: %.*s\n", static_cast<int>(name.size()), name.data(),
               static_cast<int>(what.size()), what.data());
  std::abort();
}

// Go's strconv.FormatFloat(v, 'g', -1, 64) as Prometheus writes it, except
// that integral values print without an exponent up to 2^53.
void AppendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    std::to_chars_result r;
    if (v == std::trunc(v) && std::fabs(v) <= kMaxExactInteger) {
      r = std::to_chars(buf, buf + sizeof(buf), static_cast<int64_t>(v));
    } else {
      r = std::to_chars(buf, buf + sizeof(buf), v);  // shortest round-trip form
    }
    out.append(buf, r.ptr);
  }
}

void AppendUint(std::string& out, uint64_t v) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, r.ptr);
}

// HELP text escapes \ and newline; label values also escape ".
void AppendEscaped(std::string& out, std::string_view s, bool quotes) {
  for (char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quotes && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
}

// name{l1="v1",l2="v2"[,le="bound"]} -- braces only if there are labels.
void AppendSeries(std::string& out, std::string_view name, std::string_view suffix,
                  const std::vector<std::string>& label_names,
                  const std::vector<std::string>& label_values, const double* le) {
  out += name;
  out += suffix;
  if (label_names.empty() && le == nullptr) return;
  out += '{';
  for (size_t i = 0; i < label_names.size(); ++i) {
    if (i > 0) out += ',';
    out += label_names[i];
    out += "=\"";
    AppendEscaped(out, label_values[i], /*quotes=*/true);
    out += '"';
  }
  if (le != nullptr) {
    if (!label_names.empty()) out += ',';
    out += "le=\"";
    AppendValue(out, *le);
    out += '"';
  }
  out += '}';
}

bool IsNameChar(char c, bool first, bool colon_ok) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
  if (colon_ok && c == ':') return true;
  return !first && c >= '0' && c <= '9';
}

bool IsValidName(std::string_view s, bool colon_ok) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (!IsNameChar(s[i], i == 0, colon_ok)) return false;
  }
  return true;
}

constexpr std::string_view TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

template <typename T>
constexpr MetricType TypeOf() {
  if constexpr (std::is_same_v<T, Counter>) {
    return MetricType::kCounter;
  } else if constexpr (std::is_same_v<T, Gauge>) {
    return MetricType::kGauge;
  } else {
    return MetricType::kHistogram;
  }
}

}  // namespace

// --- Counter ---------------------------------------------------------------

std::atomic<uint64_t>& Counter::Slot() {
  static std::atomic<size_t> next_thread{0};
  thread_local const size_t slot = next_thread.fetch_add(1, std::memory_order_relaxed) % kSlots;
  return whole_[slot].value;
}

void Counter::Add(double v) {
  if (!(v >= 0)) return;  // negative or NaN
  if (v == std::trunc(v) && v <= kMaxExactInteger) {
    Slot().fetch_add(static_cast<uint64_t>(v), std::memory_order_relaxed);
  } else {
    fraction_.fetch_add(v, std::memory_order_relaxed);
  }
}

void Counter::Set(double v) {
  for (Padded& p : whole_) p.value.store(0, std::memory_order_relaxed);
  fraction_.store(v, std::memory_order_relaxed);
}

double Counter::Value() const {
  uint64_t whole = 0;
  for (const Padded& p : whole_) whole += p.value.load(std::memory_order_relaxed);
  return static_cast<double>(whole) + fraction_.load(std::memory_order_relaxed);
}

// --- Histogram -------------------------------------------------------------

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {}

void Histogram::Observe(double v) {
  // First bound >= v; NaN compares false everywhere and lands in +Inf.
  size_t i = 0;
  if (!std::isnan(v)) {
    i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  } else {
    i = bounds_.size();
  }
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.cumulative.resize(bounds_.size() + 1);
  uint64_t running = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    running += counts_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> DefaultLatencyBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  if (!(start > 0) || !(factor > 1) || count < 1) Die("bad exponential buckets", "");
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i, start *= factor) bounds.push_back(start);
  return bounds;
}

// --- MetricFamily ----------------------------------------------------------

template <typename T>
MetricFamily<T>::MetricFamily(std::string name, std::string help,
                              std::vector<std::string> label_names, std::vector<double> bounds)
    : MetricFamilyBase(std::move(name), std::move(help), std::move(label_names), TypeOf<T>()),
      bounds_(std::move(bounds)) {}

template <typename T>
T& MetricFamily<T>::With(std::initializer_list<std::string_view> label_values) {
  return WithKey(std::vector<std::string>(label_values.begin(), label_values.end()));
}

template <typename T>
T& MetricFamily<T>::With(std::span<const std::string> label_values) {
  return WithKey(std::vector<std::string>(label_values.begin(), label_values.end()));
}

template <typename T>
T& MetricFamily<T>::WithKey(std::vector<std::string> key) {
  if (key.size() != label_names().size()) {
    Die("With() got " + std::to_string(key.size()) + " label values for " +
            std::to_string(label_names().size()) + " label names",
        name());
  }
  std::lock_guard<std::mutex> lock(mu_);
  auto it = children_.find(key);
  if (it == children_.end()) {
    std::unique_ptr<T> child;
    if constexpr (std::is_same_v<T, Histogram>) {
      child = std::make_unique<T>(bounds_);
    } else {
      child = std::make_unique<T>();
    }
    it = children_.emplace(std::move(key), std::move(child)).first;
  }
  return *it->second;
}

template <typename T>
void MetricFamily<T>::Render(std::string& out) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (children_.empty()) return;
  out += "# HELP ";
  out += name();
  out += ' ';
  AppendEscaped(out, help(), /*quotes=*/false);
  out += "\n# TYPE ";
  out += name();
  out += ' ';
  out += TypeName(type());
  out += '\n';
  for (const auto& [values, child] : children_) {
    if constexpr (std::is_same_v<T, Histogram>) {
      const Histogram::Snapshot s = child->Collect();
      for (size_t i = 0; i <= bounds_.size(); ++i) {
        const double le = i < bounds_.size() ? bounds_[i] : std::numeric_limits<double>::infinity();
        AppendSeries(out, name(), "_bucket", label_names(), values, &le);
        out += ' ';
        AppendUint(out, s.cumulative[i]);
        out += '\n';
      }
      AppendSeries(out, name(), "_sum", label_names(), values, nullptr);
      out += ' ';
      AppendValue(out, s.sum);
      out += '\n';
      AppendSeries(out, name(), "_count", label_names(), values, nullptr);
      out += ' ';
      AppendUint(out, s.count);
      out += '\n';
    } else {
      AppendSeries(out, name(), "", label_names(), values, nullptr);
      out += ' ';
      AppendValue(out, child->Value());
      out += '\n';
    }
  }
}

template class MetricFamily<Counter>;
template class MetricFamily<Gauge>;
template class MetricFamily<Histogram>;

// --- MetricsRegistry -------------------------------------------------------

template <typename F>
F& MetricsRegistry::Register(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names, std::vector<double> bounds) {
  constexpr bool kIsHistogram = std::is_same_v<F, HistogramFamily>;
  if (!IsValidName(name, /*colon_ok=*/true)) Die("invalid metric name", name);
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!IsValidName(label, /*colon_ok=*/false) || label.starts_with("__")) {
      Die("invalid label name \"" + label + "\"", name);
    }
    if (kIsHistogram && label == "le") Die("histograms cannot have a label \"le\"", name);
    if (std::find(label_names.begin(), label_names.begin() + static_cast<ptrdiff_t>(i), label) !=
        label_names.begin() + static_cast<ptrdiff_t>(i)) {
      Die("duplicate label name \"" + label + "\"", name);
    }
  }
  if (kIsHistogram) {
    if (!bounds.empty() && bounds.back() == std::numeric_limits<double>::infinity()) {
      bounds.pop_back();
    }
    for (size_t i = 0; i < bounds.size(); ++i) {
      if (!std::isfinite(bounds[i]) || (i > 0 && !(bounds[i - 1] < bounds[i]))) {
        Die("histogram bounds must be finite and strictly increasing", name);
      }
    }
  }

  std::lock_guard<std::mutex> lock(mu_);
  auto it = families_.find(name);
  if (it != families_.end()) {
    auto* existing = dynamic_cast<F*>(it->second.get());
    if (existing == nullptr || existing->label_names() != label_names ||
        existing->bounds() != bounds) {
      Die("registered again with another type, labels or buckets", name);
    }
    return *existing;
  }
  auto family = std::make_unique<F>(std::string(name), std::string(help), std::move(label_names),
                                    std::move(bounds));
  F& ref = *family;
  if (ref.label_names().empty()) ref.With({});  // exposed as 0 from the start
  families_.emplace(std::string(name), std::move(family));
  return ref;
}

CounterFamily& MetricsRegistry::Counter(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names) {
  return Register<CounterFamily>(name, help, std::move(label_names), {});
}

GaugeFamily& MetricsRegistry::Gauge(std::string_view name, std::string_view help,
                                    std::vector<std::string> label_names) {
  return Register<GaugeFamily>(name, help, std::move(label_names), {});
}

HistogramFamily& MetricsRegistry::Histogram(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names,
                                            std::vector<double> bounds) {
  return Register<HistogramFamily>(name, help, std::move(label_names), std::move(bounds));
}

void MetricsRegistry::AddCollector(std::function<void()> collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Exposition() {
  std::lock_guard<std::mutex> scrape_lock(scrape_mu_);
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();  // without mu_: they may register

  std::string out;
  std::lock_guard<std::mutex> lock(mu_);
  out.reserve(families_.size() * 256);
  for (const auto& [name, family] : families_) family->Render(out);
  return out;
}

MetricsRegistry& DefaultRegistry() {
  static MetricsRegistry* const registry = new MetricsRegistry();
  return *registry;
}

}  // namespace mpim::core
