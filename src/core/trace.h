// Distributed tracing: W3C Trace Context (traceparent) and spans, recorded
// into whatever exporter the process installed (net/otlp_exporter.h sends
// them to an OpenTelemetry collector). docs/operations.md, "Tracing".
//
// Use:
//   trace::Span span = trace::Span::Start("store append", parent);  // parent: a SpanContext
//   span.Set("conv_id", conv);      // no-ops when the span does not record
//   ... span.End();                 // or let it go out of scope
//
// Head sampling: a trace that starts here (StartRoot) is sampled with
// tracing.sample_ratio, decided on the trace id (so every process agrees
// on it); a child is sampled when its parent is. Only sampled contexts
// are ever propagated, so a trace that is not sampled costs one branch per
// step. With no exporter installed (tracing off: the default) nothing
// records at all.
//
// The current context of a thread (Current, set by a Scope) is what log
// lines carry as trace_id/span_id and what code that hands work on (a
// gRPC call, a bus envelope, a job) stamps on it; code that crosses
// threads captures it and sets a Scope where the work resumes.
//
// Threads: everything here may be used from any thread. A Span belongs to
// one owner at a time (move-only); End() may run on another thread than
// Start().
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace mpim::core::trace {

struct SpanContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  bool sampled = false;

  // A non-zero trace and span id.
  bool valid() const;
  // Valid and sampled: worth recording and propagating.
  bool recording() const { return sampled && valid(); }

  std::string TraceIdHex() const;
  std::string SpanIdHex() const;
  // "00-<32 hex>-<16 hex>-<01|00>".
  std::string Traceparent() const;
  // A version-00 traceparent (or a later version's first four fields, as
  // the W3C spec asks); nullopt when malformed or all-zero.
  static std::optional<SpanContext> Parse(std::string_view traceparent);

  friend bool operator==(const SpanContext&, const SpanContext&) = default;
};

// This thread's current context (invalid when none).
SpanContext Current();

// Makes `context` current until destroyed, then restores the previous one.
class Scope {
 public:
  explicit Scope(const SpanContext& context);
  ~Scope();
  Scope(const Scope&) = delete;
  Scope& operator=(const Scope&) = delete;

 private:
  SpanContext previous_;
};

enum class SpanKind : uint8_t {
  kInternal = 1,
  kServer = 2,
  kClient = 3,
  kProducer = 4,
  kConsumer = 5,
};

using AttributeValue = std::variant<std::string, int64_t, double, bool>;

// A finished span, as exporters get it.
struct SpanData {
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  SpanContext context;
  std::array<uint8_t, 8> parent_span_id{};  // zero: a root
  int64_t start_unix_ns = 0;
  int64_t end_unix_ns = 0;
  std::vector<std::pair<std::string, AttributeValue>> attributes;
  bool error = false;
  std::string status_message;  // with error
};

// Where finished spans go. Export must not block (queue and return).
class Exporter {
 public:
  virtual ~Exporter() = default;
  virtual void Export(SpanData span) = 0;
};

// Installs the process's exporter and sampling ratio (0..1); null or a
// ratio of 0 turns tracing off. Not while spans are being started on other
// threads: at start-up, and in tests.
void Install(std::shared_ptr<Exporter> exporter, double sample_ratio);
// True when an exporter is installed and the ratio is above 0.
bool Enabled();

// Wall-clock nanoseconds since the epoch (span timestamps).
int64_t NowUnixNs();

class Span {
 public:
  Span() = default;  // records nothing
  Span(Span&& other) noexcept;
  Span& operator=(Span&& other) noexcept;
  ~Span() { End(); }

  // A child of `parent`: records when the parent is a recording context
  // and tracing is on. `start_unix_ns` (0: now) backdates the start, for
  // a step whose beginning was noted before it was known to be traced.
  static Span Start(std::string_view name, const SpanContext& parent,
                    SpanKind kind = SpanKind::kInternal, int64_t start_unix_ns = 0);
  // Where a trace enters the system (a client's request): continues the
  // trace of `remote` (a client's traceparent; may be null or invalid) or
  // starts a new one; sampled by tracing.sample_ratio either way (a
  // client's flag 00 is respected, its flag 01 is not a licence to trace
  // more than the ratio allows).
  static Span StartRoot(std::string_view name, const std::optional<SpanContext>& remote,
                        SpanKind kind = SpanKind::kServer, int64_t start_unix_ns = 0);

  bool recording() const { return data_ != nullptr; }
  // This span's context (invalid when not recording): the parent of its
  // children, what goes on the wire.
  SpanContext context() const;

  void Set(std::string_view key, std::string_view value);
  void Set(std::string_view key, const char* value) { Set(key, std::string_view(value)); }
  void Set(std::string_view key, const std::string& value) { Set(key, std::string_view(value)); }
  void Set(std::string_view key, int64_t value);
  void Set(std::string_view key, int value) { Set(key, static_cast<int64_t>(value)); }
  void Set(std::string_view key, uint64_t value) { Set(key, static_cast<int64_t>(value)); }
  void Set(std::string_view key, double value);
  void Set(std::string_view key, bool value);
  // Marks the span failed with `message` (an error's text, never a body).
  void SetError(std::string_view message);

  // Records the span (once; later calls do nothing).
  void End(int64_t end_unix_ns = 0);

 private:
  explicit Span(std::unique_ptr<SpanData> data) : data_(std::move(data)) {}
  std::unique_ptr<SpanData> data_;
};

}  // namespace mpim::core::trace
