#include "core/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <memory>

#include "core/text.h"
#include "core/trace.h"

namespace mpim::core {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::atomic<int> g_format{static_cast<int>(LogFormat::kText)};

// spdlog only carries the finished line to stderr; levels and formatting are
// ours, so the pattern is the bare message.
spdlog::logger& Sink() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l =
        std::make_shared<spdlog::logger>("mpim", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("%v");
    l->set_level(spdlog::level::trace);
    l->flush_on(spdlog::level::trace);
    return l;
  }();
  return *logger;
}

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return "trace";
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    case LogLevel::kError:
      return "error";
  }
  return "info";
}

void AppendTimestamp(std::string& out, int64_t unix_ms) {
  std::time_t secs = static_cast<std::time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  out += buf;
}

void AppendValue(std::string& out, const LogField& f, bool json) {
  if (auto* s = std::get_if<std::string_view>(&f.value)) {
    bool plain = !json && !s->empty() && s->find_first_of(" \"=\n") == std::string_view::npos;
    if (plain) {
      out += *s;
    } else {
      AppendJsonString(out, *s);
    }
  } else if (auto* i = std::get_if<int64_t>(&f.value)) {
    out += std::to_string(*i);
  } else if (auto* d = std::get_if<double>(&f.value)) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6g", *d);
    out += buf;
  } else {
    out += std::get<bool>(f.value) ? "true" : "false";
  }
}

}  // namespace

LogLevel ParseLogLevel(std::string_view name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "warn") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  return LogLevel::kInfo;
}

LogFormat ParseLogFormat(std::string_view name) {
  if (name == "json") return LogFormat::kJson;
  if (name == "text") return LogFormat::kText;
  return isatty(STDERR_FILENO) ? LogFormat::kText : LogFormat::kJson;
}

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
}

void InitLogging(LogLevel level, LogFormat format) {
  g_level.store(static_cast<int>(level), std::memory_order_relaxed);
  g_format.store(static_cast<int>(format), std::memory_order_relaxed);
  Sink();
}

std::string FormatLogLine(LogFormat format, int64_t unix_ms, LogLevel level,
                          std::string_view logger, std::string_view msg, LogFields fields,
                          std::string_view trace_id, std::string_view span_id) {
  std::string out;
  out.reserve(128 + msg.size());
  if (format == LogFormat::kJson) {
    out += "{\"ts\":\"";
    AppendTimestamp(out, unix_ms);
    out += "\",\"level\":\"";
    out += LevelName(level);
    out += "\",\"logger\":";
    AppendJsonString(out, logger);
    out += ",\"msg\":";
    AppendJsonString(out, msg);
    for (const LogField& f : fields) {
      out += ',';
      AppendJsonString(out, f.key);
      out += ':';
      AppendValue(out, f, /*json=*/true);
    }
    if (!trace_id.empty()) {
      out += ",\"trace_id\":\"";
      out += trace_id;
      out += "\",\"span_id\":\"";
      out += span_id;
      out += '"';
    }
    out += '}';
    return out;
  }
  AppendTimestamp(out, unix_ms);
  out += ' ';
  std::string name(LevelName(level));
  for (char& c : name) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  name.resize(5, ' ');
  out += name;
  out += ' ';
  out += logger;
  out += ": ";
  out += msg;
  for (const LogField& f : fields) {
    out += ' ';
    out += f.key;
    out += '=';
    AppendValue(out, f, /*json=*/false);
  }
  if (!trace_id.empty()) {
    out += " trace_id=";
    out += trace_id;
    out += " span_id=";
    out += span_id;
  }
  return out;
}

bool Logger::Enabled(LogLevel level) const {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

void Logger::Log(LogLevel level, std::string_view msg, LogFields fields) const {
  if (!Enabled(level)) return;
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  auto format = static_cast<LogFormat>(g_format.load(std::memory_order_relaxed));
  const trace::SpanContext context = trace::Current();
  std::string line = context.recording() ? FormatLogLine(format, now, level, name_, msg, fields,
                                                         context.TraceIdHex(), context.SpanIdHex())
                                         : FormatLogLine(format, now, level, name_, msg, fields);
  Sink().info(std::string_view(line));
}

}  // namespace mpim::core
