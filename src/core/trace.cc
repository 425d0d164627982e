#include "core/trace.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <mutex>
#include <random>

#include "core/text.h"

namespace mpim::core::trace {
namespace {

thread_local SpanContext t_current;

std::atomic<Exporter*> g_exporter{nullptr};
// 0: off; otherwise the ratio as a threshold on the trace id's last 8 bytes.
std::atomic<uint64_t> g_threshold{0};
std::atomic<bool> g_always{false};

// Installed exporters stay alive to the end of the process: a span that
// ends on another thread may still be handing itself to one being replaced.
std::mutex g_keep_mu;
std::vector<std::shared_ptr<Exporter>>& Kept() {
  static auto* kept = new std::vector<std::shared_ptr<Exporter>>();
  return *kept;
}

uint64_t NextRandom() {
  thread_local std::mt19937_64 rng([] {
    std::random_device rd;
    return (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }());
  return rng();
}

template <size_t N>
void FillRandom(std::array<uint8_t, N>& out) {
  do {
    for (size_t i = 0; i < N; i += 8) {
      uint64_t r = NextRandom();
      for (size_t j = 0; j < 8 && i + j < N; ++j) out[i + j] = static_cast<uint8_t>(r >> (8 * j));
    }
  } while (std::all_of(out.begin(), out.end(), [](uint8_t b) { return b == 0; }));
}

template <size_t N>
bool AllZero(const std::array<uint8_t, N>& a) {
  for (uint8_t b : a) {
    if (b) return false;
  }
  return true;
}

template <size_t N>
std::string Hex(const std::array<uint8_t, N>& a) {
  std::string out;
  out.reserve(2 * N);
  AppendHex(out, a.data(), N);
  return out;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not allowed by the spec
}

template <size_t N>
bool ParseHex(std::string_view text, std::array<uint8_t, N>& out) {
  if (text.size() != 2 * N) return false;
  for (size_t i = 0; i < N; ++i) {
    int hi = HexDigit(text[2 * i]);
    int lo = HexDigit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return true;
}

// The sampling decision for a new trace: its id's last 8 bytes (random in
// ids made here and, per the spec's level 2, in most clients') against the
// ratio.
bool Sampled(const std::array<uint8_t, 16>& trace_id) {
  if (g_always.load(std::memory_order_relaxed)) return true;
  uint64_t v = 0;
  for (size_t i = 8; i < 16; ++i) v = v << 8 | trace_id[i];
  return v < g_threshold.load(std::memory_order_relaxed);
}

std::unique_ptr<SpanData> NewData(std::string_view name, SpanKind kind, int64_t start) {
  auto data = std::make_unique<SpanData>();
  data->name = std::string(name);
  data->kind = kind;
  data->context.sampled = true;
  FillRandom(data->context.span_id);
  data->start_unix_ns = start ? start : NowUnixNs();
  return data;
}

}  // namespace

bool SpanContext::valid() const { return !AllZero(trace_id) && !AllZero(span_id); }

std::string SpanContext::TraceIdHex() const { return Hex(trace_id); }
std::string SpanContext::SpanIdHex() const { return Hex(span_id); }

std::string SpanContext::Traceparent() const {
  return "00-" + Hex(trace_id) + "-" + Hex(span_id) + (sampled ? "-01" : "-00");
}

std::optional<SpanContext> SpanContext::Parse(std::string_view text) {
  // version "-" trace-id "-" parent-id "-" flags; a later version may add
  // "-..." fields, version ff is invalid.
  if (text.size() < 55) return std::nullopt;
  std::array<uint8_t, 1> version{};
  if (!ParseHex(text.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (text[2] != '-' || text[35] != '-' || text[52] != '-') return std::nullopt;
  if (version[0] == 0 && text.size() != 55) return std::nullopt;
  if (version[0] != 0 && text.size() > 55 && text[55] != '-') return std::nullopt;
  SpanContext c;
  std::array<uint8_t, 1> flags{};
  if (!ParseHex(text.substr(3, 32), c.trace_id) || !ParseHex(text.substr(36, 16), c.span_id) ||
      !ParseHex(text.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (!c.valid()) return std::nullopt;
  c.sampled = (flags[0] & 1) != 0;
  return c;
}

SpanContext Current() { return t_current; }

Scope::Scope(const SpanContext& context) : previous_(t_current) { t_current = context; }
Scope::~Scope() { t_current = previous_; }

void Install(std::shared_ptr<Exporter> exporter, double sample_ratio) {
  if (!exporter || !(sample_ratio > 0)) {
    g_exporter.store(nullptr, std::memory_order_release);
    g_threshold.store(0, std::memory_order_relaxed);
    g_always.store(false, std::memory_order_relaxed);
    return;
  }
  {
    std::lock_guard lock(g_keep_mu);
    Kept().push_back(exporter);
  }
  const bool always = sample_ratio >= 1;
  g_always.store(always, std::memory_order_relaxed);
  g_threshold.store(always ? UINT64_MAX : static_cast<uint64_t>(std::ldexp(sample_ratio, 64)),
                    std::memory_order_relaxed);
  g_exporter.store(exporter.get(), std::memory_order_release);
}

bool Enabled() { return g_exporter.load(std::memory_order_relaxed) != nullptr; }

int64_t NowUnixNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Span::Span(Span&& other) noexcept : data_(std::move(other.data_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    End();
    data_ = std::move(other.data_);
  }
  return *this;
}

Span Span::Start(std::string_view name, const SpanContext& parent, SpanKind kind,
                 int64_t start_unix_ns) {
  if (!parent.recording() || !Enabled()) return Span();
  auto data = NewData(name, kind, start_unix_ns);
  data->context.trace_id = parent.trace_id;
  data->parent_span_id = parent.span_id;
  return Span(std::move(data));
}

Span Span::StartRoot(std::string_view name, const std::optional<SpanContext>& remote, SpanKind kind,
                     int64_t start_unix_ns) {
  if (!Enabled()) return Span();
  std::array<uint8_t, 16> trace_id{};
  const bool continued = remote && remote->valid();
  if (continued) {
    if (!remote->sampled) return Span();
    trace_id = remote->trace_id;
  } else {
    FillRandom(trace_id);
  }
  if (!Sampled(trace_id)) return Span();
  auto data = NewData(name, kind, start_unix_ns);
  data->context.trace_id = trace_id;
  if (continued) data->parent_span_id = remote->span_id;
  return Span(std::move(data));
}

SpanContext Span::context() const { return data_ ? data_->context : SpanContext{}; }

namespace {
// Exporters write JSON: text that is not UTF-8 (a client's bytes quoted in
// an error) is replaced rather than sent as is.
std::string_view Utf8OrMarker(std::string_view text) {
  return IsValidUtf8(text) ? text : std::string_view("(not UTF-8)");
}
}  // namespace

void Span::Set(std::string_view key, std::string_view value) {
  if (data_) data_->attributes.emplace_back(std::string(key), std::string(Utf8OrMarker(value)));
}
void Span::Set(std::string_view key, int64_t value) {
  if (data_) data_->attributes.emplace_back(std::string(key), value);
}
void Span::Set(std::string_view key, double value) {
  if (data_) data_->attributes.emplace_back(std::string(key), value);
}
void Span::Set(std::string_view key, bool value) {
  if (data_) data_->attributes.emplace_back(std::string(key), value);
}

void Span::SetError(std::string_view message) {
  if (!data_) return;
  data_->error = true;
  data_->status_message = std::string(Utf8OrMarker(message));
}

void Span::End(int64_t end_unix_ns) {
  if (!data_) return;
  std::unique_ptr<SpanData> data = std::move(data_);
  data->end_unix_ns = end_unix_ns ? end_unix_ns : NowUnixNs();
  if (data->end_unix_ns < data->start_unix_ns) data->end_unix_ns = data->start_unix_ns;
  Exporter* exporter = g_exporter.load(std::memory_order_acquire);
  if (exporter) exporter->Export(std::move(*data));
}

}  // namespace mpim::core::trace
