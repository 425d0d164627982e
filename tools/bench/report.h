// Results of a benchmark run: JSON for machines, a Markdown page for people,
// and two SVG charts per scenario (latency over time, latency distribution),
// written without any plotting dependency.
#pragma once

#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "bench/histogram.h"
#include "bench/setup.h"

namespace mpim::bench {

// One row of a scenario's Markdown table.
struct Figure {
  std::string metric;
  std::string value;
  std::string target;   // "" when there is none
  std::string verdict;  // "met", "missed" or ""
};

struct TimelinePoint {
  double t_s = 0;        // seconds since the load started
  double sent = 0;       // sends scheduled in that second
  double delivered = 0;  // deliveries received in that second
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
};

struct ScenarioResult {
  std::string name;     // unique in the run ("chat-20k")
  std::string command;  // how to run it alone
  std::string summary;  // one sentence: what was done
  boost::json::object params;
  boost::json::object figures;  // machine-readable numbers
  std::vector<Figure> table;
  std::vector<TimelinePoint> timeline;
  Histogram latency;  // nanoseconds; drives the distribution chart
  std::string latency_label;
  std::vector<std::string> notes;
  bool ok = true;  // the run itself worked (not: the target was met)
};

struct Report {
  std::string title;
  std::string started_at;  // UTC, ISO 8601
  Machine machine;
  std::string server;  // binary or URL
  std::vector<std::string> commands;
  std::vector<std::string> notes;
  std::vector<ScenarioResult> scenarios;
  std::string appendix;  // Markdown after the scenarios (e.g. nodes side by side)
};

// A JSON object of a histogram's summary in milliseconds.
boost::json::object LatencyJson(const Histogram& h);
// "p50 1.2 / p99 3.4 / max 9.9 ms"
std::string LatencyText(const Histogram& h);

// Writes <dir>/<stem>.json, <stem>.md and <stem>-<scenario>-{timeline,latency}.svg.
// False (with `error`) when a file cannot be written.
bool WriteReport(const Report& report, const std::string& dir, const std::string& stem,
                 std::string* error);

// The SVG charts, exposed for tests.
std::string TimelineSvg(const ScenarioResult& s);
std::string DistributionSvg(const ScenarioResult& s);

}  // namespace mpim::bench
