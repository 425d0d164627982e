// A local OpenTelemetry collector for tests of tracing (core/trace.h,
// net/otlp_exporter.h): a real HTTP/1.1 server (net::HttpServer) on a free
// loopback port that takes OTLP/HTTP JSON export requests at POST
// /v1/traces, checks their shape as the OTLP JSON mapping defines it (hex
// ids of the right length, nanosecond times as decimal strings, attribute
// values typed), and records every span with its resource's attributes.
// A request that is not valid OTLP JSON is answered 400 and counted.
//
// Thread-safe: requests arrive on the server's io thread; the test reads
// what was recorded from its own thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace mpim::testing {

struct ReceivedSpan {
  std::string trace_id;        // 32 hex digits
  std::string span_id;         // 16 hex digits
  std::string parent_span_id;  // empty: a root
  std::string name;
  int kind = 0;
  int64_t start_ns = 0;
  int64_t end_ns = 0;
  bool error = false;
  // Attribute values as text (ints and bools too: "42", "true").
  std::map<std::string, std::string> attributes;
  std::map<std::string, std::string> resource;  // service.name, mpim.role, ...

  std::string Attr(const std::string& key) const;
  std::string Role() const { return Resource("mpim.role"); }
  std::string Resource(const std::string& key) const;
};

class OtlpReceiver {
 public:
  // (how many requests came before it) -> HTTP status to answer.
  using Policy = std::function<int(size_t index)>;

  OtlpReceiver();
  ~OtlpReceiver();

  // "http://127.0.0.1:<port>" (the exporter adds /v1/traces).
  std::string endpoint() const;
  void SetPolicy(Policy policy);

  std::vector<ReceivedSpan> Spans() const;
  // The spans of one trace.
  std::vector<ReceivedSpan> Trace(const std::string& trace_id) const;
  size_t requests() const;
  size_t bad_requests() const;
  // Waits until `pred(spans)` holds, at most `deadline`.
  bool WaitFor(const std::function<bool(const std::vector<ReceivedSpan>&)>& pred,
               std::chrono::milliseconds deadline = std::chrono::seconds(20)) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Checks that `spans` form one connected tree: one root (or, with
// `remote_parent`, every span without a parent in the set has that
// parent), every other span's parent among them, one trace id. Empty when
// they do; otherwise what is wrong.
std::string CheckConnected(const std::vector<ReceivedSpan>& spans,
                           const std::string& remote_parent = "");

}  // namespace mpim::testing
