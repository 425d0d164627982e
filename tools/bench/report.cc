#include "bench/report.h"

#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace mpim::bench {

namespace json = boost::json;

namespace {

double Ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// Three significant digits, no exponent.
std::string Num(double v) {
  const double a = std::fabs(v);
  return Fixed(v, a >= 100 ? 0 : a >= 10 ? 1 : a >= 1 ? 2 : 3);
}

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A line chart with a linear x axis and a log10 y axis.
struct Series {
  std::string name;
  std::string color;
  std::vector<std::pair<double, double>> points;  // (x, y > 0)
};

struct Chart {
  std::string title, x_label, y_label;
  std::vector<Series> series;
  // x tick positions and labels; empty: five evenly spaced numbers
  std::vector<std::pair<double, std::string>> x_ticks;
};

std::string Svg(const Chart& c) {
  const double W = 760, H = 420, L = 70, R = 150, T = 40, B = 50;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const auto& s : c.series) {
    for (auto [x, y] : s.points) {
      if (y <= 0) continue;
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  }
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"12\">\n"
    << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    << "<text x=\"" << W / 2 << "\" y=\"22\" text-anchor=\"middle\" font-size=\"15\">"
    << Escape(c.title) << "</text>\n";
  if (x0 > x1) {
    o << "<text x=\"" << W / 2 << "\" y=\"" << H / 2 << "\" text-anchor=\"middle\">no data</text>\n"
      << "</svg>\n";
    return o.str();
  }
  if (!c.x_ticks.empty()) {
    x0 = std::min(x0, c.x_ticks.front().first);
    x1 = std::max(x1, c.x_ticks.back().first);
  }
  if (x1 <= x0) x1 = x0 + 1;
  const double ly0 = std::floor(std::log10(y0)), ly1 = std::max(ly0 + 1, std::ceil(std::log10(y1)));
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (std::log10(y) - ly0) / (ly1 - ly0) * (H - T - B); };
  // axes, grid, ticks
  o << "<g stroke=\"#ccc\">\n";
  for (double e = ly0; e <= ly1; e += 1) {
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(std::pow(10, e))
      << "\" y2=\"" << py(std::pow(10, e)) << "\"/>\n";
  }
  o << "</g>\n";
  for (double e = ly0; e <= ly1; e += 1) {
    o << "<text x=\"" << L - 6 << "\" y=\"" << py(std::pow(10, e)) + 4 << "\" text-anchor=\"end\">"
      << Num(std::pow(10, e)) << "</text>\n";
  }
  std::vector<std::pair<double, std::string>> ticks = c.x_ticks;
  if (ticks.empty()) {
    for (int i = 0; i <= 5; ++i) {
      double x = x0 + (x1 - x0) * i / 5;
      ticks.emplace_back(x, Num(x));
    }
  }
  for (const auto& [x, label] : ticks) {
    o << "<line stroke=\"#ccc\" x1=\"" << px(x) << "\" x2=\"" << px(x) << "\" y1=\"" << T
      << "\" y2=\"" << H - B << "\"/>\n"
      << "<text x=\"" << px(x) << "\" y=\"" << H - B + 16 << "\" text-anchor=\"middle\">"
      << Escape(label) << "</text>\n";
  }
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" fill=\"none\" stroke=\"black\"/>\n"
    << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 12 << "\" text-anchor=\"middle\">"
    << Escape(c.x_label) << "</text>\n"
    << "<text transform=\"translate(18," << (T + H - B) / 2
    << ") rotate(-90)\" text-anchor=\"middle\">" << Escape(c.y_label) << "</text>\n";
  int legend = 0;
  for (const auto& s : c.series) {
    o << "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" << s.color << "\" points=\"";
    for (auto [x, y] : s.points) {
      if (y > 0) o << Fixed(px(x), 1) << ',' << Fixed(py(y), 1) << ' ';
    }
    o << "\"/>\n";
    const double ly = T + 14 + 18 * legend++;
    o << "<line x1=\"" << W - R + 10 << "\" x2=\"" << W - R + 30 << "\" y1=\"" << ly - 4
      << "\" y2=\"" << ly - 4 << "\" stroke=\"" << s.color << "\" stroke-width=\"2\"/>\n"
      << "<text x=\"" << W - R + 36 << "\" y=\"" << ly << "\">" << Escape(s.name) << "</text>\n";
  }
  o << "</svg>\n";
  return o.str();
}

bool WriteFile(const std::filesystem::path& path, const std::string& text, std::string* error) {
  std::ofstream out(path);
  out << text;
  out.close();
  if (!out) {
    *error = "cannot write " + path.string();
    return false;
  }
  return true;
}

}  // namespace

json::object LatencyJson(const Histogram& h) {
  return {{"count", h.count()},
          {"p50_ms", Ms(h.Percentile(50))},
          {"p90_ms", Ms(h.Percentile(90))},
          {"p99_ms", Ms(h.Percentile(99))},
          {"p999_ms", Ms(h.Percentile(99.9))},
          {"max_ms", Ms(h.max())},
          {"mean_ms", h.mean() / 1e6}};
}

std::string LatencyText(const Histogram& h) {
  if (h.count() == 0) return "none";
  return "p50 " + Num(Ms(h.Percentile(50))) + " / p90 " + Num(Ms(h.Percentile(90))) + " / p99 " +
         Num(Ms(h.Percentile(99))) + " / p99.9 " + Num(Ms(h.Percentile(99.9))) + " / max " +
         Num(Ms(h.max())) + " ms";
}

std::string TimelineSvg(const ScenarioResult& s) {
  Chart c;
  c.title = s.name + ": " + s.latency_label + " per second";
  c.x_label = "seconds since the load started";
  c.y_label = "latency (ms, log scale)";
  Series p50{"p50", "#1f77b4", {}}, p99{"p99", "#d62728", {}}, max{"max", "#7f7f7f", {}};
  for (const auto& p : s.timeline) {
    p50.points.emplace_back(p.t_s, p.p50_ms);
    p99.points.emplace_back(p.t_s, p.p99_ms);
    max.points.emplace_back(p.t_s, p.max_ms);
  }
  c.series = {p50, p99, max};
  return Svg(c);
}

std::string DistributionSvg(const ScenarioResult& s) {
  // HdrHistogram's percentile plot: x = log10(1 / (1 - q)), 0 at the median's
  // left edge, 1 at 90%, 2 at 99%, ...
  Chart c;
  c.title = s.name + ": " + s.latency_label + " distribution";
  c.x_label = "percentile";
  c.y_label = "latency (ms, log scale)";
  Series line{s.latency_label, "#d62728", {}};
  const double n = static_cast<double>(s.latency.count());
  double seen = 0;
  double max_x = 1;
  s.latency.ForEachBucket([&](uint64_t, uint64_t highest, uint64_t count) {
    seen += static_cast<double>(count);
    const double q = std::min(seen / n, 1 - 1 / n);  // the last point stays finite
    const double x = std::log10(1 / (1 - q));
    max_x = std::max(max_x, x);
    line.points.emplace_back(x, Ms(std::min(highest, s.latency.max())));
  });
  c.series = {line};
  const char* labels[] = {"0%", "90%", "99%", "99.9%", "99.99%", "99.999%", "99.9999%"};
  for (int i = 0; i <= std::min(6, static_cast<int>(std::ceil(max_x))); ++i) {
    c.x_ticks.emplace_back(i, labels[i]);
  }
  return Svg(c);
}

bool WriteReport(const Report& report, const std::string& dir, const std::string& stem,
                 std::string* error) {
  std::filesystem::path base(dir);
  std::error_code ec;
  std::filesystem::create_directories(base, ec);

  json::array scenarios;
  for (const auto& s : report.scenarios) {
    json::array timeline;
    for (const auto& p : s.timeline) {
      timeline.push_back(json::object{{"t_s", p.t_s},
                                      {"sent", p.sent},
                                      {"delivered", p.delivered},
                                      {"p50_ms", p.p50_ms},
                                      {"p99_ms", p.p99_ms},
                                      {"max_ms", p.max_ms}});
    }
    json::array notes;
    for (const auto& n : s.notes) notes.emplace_back(n);
    scenarios.push_back(json::object{{"name", s.name},
                                     {"ok", s.ok},
                                     {"command", s.command},
                                     {"summary", s.summary},
                                     {"params", s.params},
                                     {"figures", s.figures},
                                     {"timeline", std::move(timeline)},
                                     {"notes", std::move(notes)}});
  }
  json::array commands, notes;
  for (const auto& c : report.commands) commands.emplace_back(c);
  for (const auto& n : report.notes) notes.emplace_back(n);
  json::object doc{{"title", report.title},
                   {"started_at", report.started_at},
                   {"machine", json::object{{"cpus", report.machine.cpus},
                                            {"mem_kib", report.machine.mem_kib},
                                            {"kernel", report.machine.kernel},
                                            {"cpu_model", report.machine.cpu_model},
                                            {"loadavg_at_start", report.machine.load}}},
                   {"server", report.server},
                   {"commands", std::move(commands)},
                   {"notes", std::move(notes)},
                   {"scenarios", std::move(scenarios)}};
  if (!WriteFile(base / (stem + ".json"), json::serialize(doc) + "\n", error)) return false;

  std::ostringstream md;
  md << "# " << report.title << "\n\n"
     << "Started " << report.started_at << ". Server: `" << report.server << "`.\n\n"
     << "## Machine\n\n"
     << "| | |\n|---|---|\n"
     << "| CPUs (nproc) | " << report.machine.cpus << " |\n"
     << "| memory | " << report.machine.mem_kib / 1024 << " MiB |\n"
     << "| CPU | " << report.machine.cpu_model << " |\n"
     << "| kernel | " << report.machine.kernel << " |\n"
     << "| load average at start | " << report.machine.load << " |\n\n"
     << "Server and load generator share these CPUs.\n\n";
  if (!report.notes.empty()) {
    md << "## Notes\n\n";
    for (const auto& n : report.notes) md << "- " << n << "\n";
    md << "\n";
  }
  md << "## Summary\n\n| scenario | metric | measured | target | |\n|---|---|---|---|---|\n";
  for (const auto& s : report.scenarios) {
    for (const auto& f : s.table) {
      if (f.target.empty()) continue;
      md << "| " << s.name << " | " << f.metric << " | " << f.value << " | " << f.target << " | "
         << f.verdict << " |\n";
    }
  }
  md << "\n";
  for (const auto& s : report.scenarios) {
    md << "## " << s.name << "\n\n"
       << s.summary << "\n\n```sh\n"
       << s.command << "\n```\n\n"
       << "| metric | measured | target | |\n|---|---|---|---|\n";
    for (const auto& f : s.table) {
      md << "| " << f.metric << " | " << f.value << " | " << f.target << " | " << f.verdict
         << " |\n";
    }
    md << "\n";
    for (const auto& n : s.notes) md << "- " << n << "\n";
    if (!s.notes.empty()) md << "\n";
    const std::string timeline = stem + "-" + s.name + "-timeline.svg";
    const std::string latency = stem + "-" + s.name + "-latency.svg";
    if (!s.timeline.empty()) {
      if (!WriteFile(base / timeline, TimelineSvg(s), error)) return false;
      md << "![" << s.name << " latency over time](" << timeline << ")\n\n";
    }
    if (s.latency.count()) {
      if (!WriteFile(base / latency, DistributionSvg(s), error)) return false;
      md << "![" << s.name << " latency distribution](" << latency << ")\n\n";
    }
  }
  if (!report.appendix.empty()) md << report.appendix << "\n";
  md << "## Commands\n\n```sh\n";
  for (const auto& c : report.commands) md << c << "\n";
  md << "```\n";
  return WriteFile(base / (stem + ".md"), md.str(), error);
}

}  // namespace mpim::bench
