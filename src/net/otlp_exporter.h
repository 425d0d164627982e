// Sends finished spans (core/trace.h) to an OpenTelemetry collector over
// OTLP/HTTP with the JSON encoding (POST <endpoint> with a
// ExportTraceServiceRequest, Content-Type application/json), off the hot
// path:
//   - Export() only queues: a bounded queue (queue_max spans) that drops,
//     and counts, what does not fit; it never blocks and never grows.
//   - Its own thread sends the queue in batches of at most batch_max spans
//     every interval_ms (sooner once a batch is full), at most two requests
//     at a time. A batch the collector refuses or that fails is dropped and
//     counted (a collector that is down costs spans, never memory).
//   - Shutdown() sends what is queued (within timeout_ms) and stops.
// Metrics: mpim_trace_spans_exported_total, mpim_trace_spans_dropped_total
// {reason: queue_full | export_failed}.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/trace.h"

namespace mpim::net {

struct OtlpOptions {
  // The traces URL; one without a path (or with "/") gets the standard
  // "/v1/traces".
  std::string endpoint;
  size_t queue_max = 8192;
  size_t batch_max = 512;
  int64_t interval_ms = 500;
  int64_t timeout_ms = 5000;
  // Resource attributes (service.name, service.instance.id, ...).
  std::vector<std::pair<std::string, core::trace::AttributeValue>> resource;
};

// The request body for `spans` (exposed for tests and the fuzz corpus).
std::string EncodeOtlpJson(
    const std::vector<core::trace::SpanData>& spans,
    const std::vector<std::pair<std::string, core::trace::AttributeValue>>& resource);

class OtlpExporter final : public core::trace::Exporter {
 public:
  // kInvalidArgument for a bad endpoint.
  static core::StatusOr<std::shared_ptr<OtlpExporter>> Make(OtlpOptions options);
  ~OtlpExporter() override;

  void Export(core::trace::SpanData span) override;
  // Sends what is queued, waits for it (at most timeout_ms), stops the
  // thread. Spans exported afterwards are dropped (counted). Idempotent.
  void Shutdown();

  int64_t exported() const;
  int64_t dropped() const;

  class Impl;

 private:
  explicit OtlpExporter(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpim::net
