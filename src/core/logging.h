// Structured logging: one line per event, as JSON
//   {"ts":"2026-11-21T20:46:40.123Z","level":"info","logger":"http","msg":"...",<fields>}
// or as human-readable text
//   2026-11-21T20:46:40.123Z INFO  http: listening addr=127.0.0.1:8080
// written to stderr through spdlog (which owns the sink and its locking).
//
// Thread-safe: any thread may log. InitLogging is called once at start-up,
// before other threads log; until then lines go out as text at info level.
// Nothing secret (passwords, tokens, keys) is ever passed as a field.
// A line logged while a sampled trace is current on the thread carries its
// trace_id and span_id.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <variant>

namespace mpim::core {

enum class LogLevel { kTrace = 0, kDebug, kInfo, kWarn, kError };

enum class LogFormat { kJson, kText };

// A key/value pair attached to a line, e.g. {"session_id", sid}.
struct LogField {
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  LogField(std::string_view k, int64_t v) : key(k), value(v) {}
  LogField(std::string_view k, int v) : key(k), value(static_cast<int64_t>(v)) {}
  LogField(std::string_view k, uint64_t v) : key(k), value(static_cast<int64_t>(v)) {}
  LogField(std::string_view k, double v) : key(k), value(v) {}
  LogField(std::string_view k, bool v) : key(k), value(v) {}

  std::string_view key;
  std::variant<std::string_view, int64_t, double, bool> value;
};

using LogFields = std::initializer_list<LogField>;

// Parses "trace".."error" and "auto"/"json"/"text" (auto: text when stderr is
// a terminal). Unknown names fall back to info / text; config validation
// rejects them before this is called.
LogLevel ParseLogLevel(std::string_view name);
LogFormat ParseLogFormat(std::string_view name);

void InitLogging(LogLevel level, LogFormat format);
// The lowest level written, from now on (run-time configuration).
void SetLogLevel(LogLevel level);

// Formats one line without writing it (exposed for tests). `trace_id` and
// `span_id` (hex; empty: none) are the trace active on the logging thread
// (core/trace.h), added as the last fields.
std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level,
                          std::string_view logger, std::string_view msg, LogFields fields,
                          std::string_view trace_id = {}, std::string_view span_id = {});

// A named logger; cheap to copy, usually a static or a member.
class Logger {
 public:
  explicit Logger(std::string name) : name_(std::move(name)) {}

  bool Enabled(LogLevel level) const;
  void Log(LogLevel level, std::string_view msg, LogFields fields = {}) const;

  void Trace(std::string_view msg, LogFields fields = {}) const {
    Log(LogLevel::kTrace, msg, fields);
  }
  void Debug(std::string_view msg, LogFields fields = {}) const {
    Log(LogLevel::kDebug, msg, fields);
  }
  void Info(std::string_view msg, LogFields fields = {}) const {
    Log(LogLevel::kInfo, msg, fields);
  }
  void Warn(std::string_view msg, LogFields fields = {}) const {
    Log(LogLevel::kWarn, msg, fields);
  }
  void Error(std::string_view msg, LogFields fields = {}) const {
    Log(LogLevel::kError, msg, fields);
  }

 private:
  std::string name_;
};

}  // namespace mpim::core
