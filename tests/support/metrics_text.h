// Reading one series out of a Prometheus text exposition (GET /metrics,
// core::MetricsRegistry::Exposition), for tests.
#pragma once

#include <string>
#include <string_view>

namespace mpim::testing {

// The value of `series`, written as in the exposition (`name` or
// `name{label="v",...}`); 0 when absent.
inline double SeriesValue(std::string_view exposition, std::string_view series) {
  for (size_t at = 0; at < exposition.size();) {
    size_t end = exposition.find('\n', at);
    if (end == std::string_view::npos) end = exposition.size();
    std::string_view line = exposition.substr(at, end - at);
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      return std::stod(std::string(line.substr(series.size() + 1)));
    }
    at = end + 1;
  }
  return 0;
}

}  // namespace mpim::testing
