// The standard Prometheus process metrics, read from /proc at scrape time:
//   process_resident_memory_bytes  gauge    resident set size
//   process_virtual_memory_bytes   gauge    virtual memory size
//   process_open_fds               gauge    entries in /proc/self/fd
//   process_max_fds                gauge    RLIMIT_NOFILE soft limit
//   process_cpu_seconds_total      counter  user + system CPU time
//   process_start_time_seconds     gauge    start time, seconds since the Unix epoch
//
// Linux only. If /proc cannot be read at a scrape, the metrics keep their
// previous values (0 before the first good read); nothing is logged.
#pragma once

#include <cstdint>
#include <string_view>

#include "core/metrics.h"
#include "core/status.h"

namespace mpim::core {

// Registers the metrics above and a collector that refreshes them on every
// registry.Exposition(). Call once per registry, at start-up, from any
// thread (a second call would add a second, redundant collector).
void RegisterProcessMetrics(MetricsRegistry& registry);

// The fields of /proc/<pid>/stat the metrics need, in the kernel's units.
struct ProcStat {
  uint64_t utime_ticks = 0;      // field 14
  uint64_t stime_ticks = 0;      // field 15
  uint64_t starttime_ticks = 0;  // field 22, since boot
  uint64_t vsize_bytes = 0;      // field 23
  uint64_t rss_pages = 0;        // field 24
};

// Parses the contents of /proc/<pid>/stat; the command name (field 2) may
// hold spaces and parentheses. InvalidArgument if fields are missing or not
// numbers. Pure and thread-safe.
[[nodiscard]] StatusOr<ProcStat> ParseProcStat(std::string_view text);

// A snapshot of this process, in the metrics' units.
struct ProcessStats {
  double resident_memory_bytes = 0;
  double virtual_memory_bytes = 0;
  double open_fds = 0;
  double max_fds = 0;
  double cpu_seconds = 0;
  double start_time_seconds = 0;
};

// Reads /proc/self/stat, /proc/stat (boot time), /proc/self/fd and the fd
// limit. Unavailable if /proc cannot be read; InvalidArgument if it reads
// something unexpected. Thread-safe (blocking file reads: keep it off io
// threads except at scrape time).
[[nodiscard]] StatusOr<ProcessStats> ReadProcessStats();

}  // namespace mpim::core
