#include "core/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <string>

namespace mpim::core {
namespace {

StatusOr<std::string> ReadFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError(std::string("cannot open ") + path);
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

std::optional<uint64_t> ParseUint(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

// "btime <seconds>" from /proc/stat.
StatusOr<uint64_t> BootTimeSeconds() {
  StatusOr<std::string> text = ReadFile("/proc/stat");
  if (!text.ok()) return text.status();
  std::string_view rest = *text;
  while (!rest.empty()) {
    const size_t eol = rest.find('\n');
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.starts_with("btime ")) {
      if (auto v = ParseUint(line.substr(6))) return *v;
      break;
    }
  }
  return absl::InvalidArgumentError("no btime line in /proc/stat");
}

StatusOr<uint64_t> CountOpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return absl::UnavailableError("cannot open /proc/self/fd");
  uint64_t count = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++count;  // counts the fd opendir uses, as Prometheus does
  }
  closedir(dir);
  return count;
}

}  // namespace

StatusOr<ProcStat> ParseProcStat(std::string_view text) {
  // "pid (comm) state f4 f5 ...": comm ends at the last ')'.
  const size_t close = text.rfind(')');
  if (close == std::string_view::npos) return absl::InvalidArgumentError("stat: no ')'");
  std::string_view rest = text.substr(close + 1);
  // Fields after comm, numbered from 3 (state).
  ProcStat stat;
  int field = 3;
  while (field <= 24) {
    const size_t start = rest.find_first_not_of(" \n");
    if (start == std::string_view::npos) break;
    rest = rest.substr(start);
    const size_t end = std::min(rest.find_first_of(" \n"), rest.size());
    const std::string_view token = rest.substr(0, end);
    rest = rest.substr(end);
    uint64_t* dest = nullptr;
    switch (field) {
      case 14:
        dest = &stat.utime_ticks;
        break;
      case 15:
        dest = &stat.stime_ticks;
        break;
      case 22:
        dest = &stat.starttime_ticks;
        break;
      case 23:
        dest = &stat.vsize_bytes;
        break;
      case 24:
        dest = &stat.rss_pages;
        break;
      default:
        break;
    }
    if (dest != nullptr) {
      std::optional<uint64_t> v = ParseUint(token);
      if (!v) {
        return absl::InvalidArgumentError("stat: field " + std::to_string(field) +
                                          " is not a number: " + std::string(token));
      }
      *dest = *v;
    }
    ++field;
  }
  if (field <= 24) {
    return absl::InvalidArgumentError("stat: only " + std::to_string(field - 1) + " fields");
  }
  return stat;
}

StatusOr<ProcessStats> ReadProcessStats() {
  StatusOr<std::string> text = ReadFile("/proc/self/stat");
  if (!text.ok()) return text.status();
  StatusOr<ProcStat> stat = ParseProcStat(*text);
  if (!stat.ok()) return stat.status();
  StatusOr<uint64_t> boot = BootTimeSeconds();
  if (!boot.ok()) return boot.status();
  StatusOr<uint64_t> fds = CountOpenFds();
  if (!fds.ok()) return fds.status();

  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  ProcessStats s;
  s.resident_memory_bytes = static_cast<double>(stat->rss_pages) * page;
  s.virtual_memory_bytes = static_cast<double>(stat->vsize_bytes);
  s.open_fds = static_cast<double>(*fds);
  s.cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / ticks;
  s.start_time_seconds =
      static_cast<double>(*boot) + static_cast<double>(stat->starttime_ticks) / ticks;
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    s.max_fds = limit.rlim_cur == RLIM_INFINITY ? std::numeric_limits<double>::infinity()
                                                : static_cast<double>(limit.rlim_cur);
  }
  return s;
}

void RegisterProcessMetrics(MetricsRegistry& registry) {
  Gauge& rss =
      registry.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.").With({});
  Gauge& vsize =
      registry.Gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.").With({});
  Gauge& open_fds = registry.Gauge("process_open_fds", "Number of open file descriptors.").With({});
  Gauge& max_fds =
      registry.Gauge("process_max_fds", "Maximum number of open file descriptors.").With({});
  Counter& cpu =
      registry
          .Counter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.")
          .With({});
  Gauge& start = registry
                     .Gauge("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.")
                     .With({});
  registry.AddCollector([&rss, &vsize, &open_fds, &max_fds, &cpu, &start] {
    StatusOr<ProcessStats> s = ReadProcessStats();
    if (!s.ok()) return;  // keep the previous values
    rss.Set(s->resident_memory_bytes);
    vsize.Set(s->virtual_memory_bytes);
    open_fds.Set(s->open_fds);
    max_fds.Set(s->max_fds);
    cpu.Set(s->cpu_seconds);
    start.Set(s->start_time_seconds);
  });
}

}  // namespace mpim::core
