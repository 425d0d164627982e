#include "edge/routes.h"

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include "absl/strings/ascii.h"
#include "core/config.h"
#include "edge/hash_key.h"
#include "rpc/lb/registry.h"

namespace mpim::edge {
namespace {

using core::Status;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

Status Bad(std::string_view source, const std::string& where, const std::string& problem) {
  return absl::InvalidArgumentError(std::string(source) + ": " + where + ": " + problem);
}

// Reads the keys of one table into typed setters, refusing unknown keys.
class Reader {
 public:
  Reader(std::string_view source, std::string where, const toml::table& table)
      : source_(source), where_(std::move(where)), table_(table) {}

  Status String(std::string_view key, std::string& out) {
    seen_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (!n) return absl::OkStatus();
    auto v = n->value_exact<std::string>();
    if (!v) return Bad(source_, Name(key), "expected a string");
    out = *v;
    return absl::OkStatus();
  }

  Status Int(std::string_view key, int64_t& out) {
    seen_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (!n) return absl::OkStatus();
    auto v = n->value_exact<int64_t>();
    if (!v) return Bad(source_, Name(key), "expected an integer");
    out = *v;
    return absl::OkStatus();
  }

  Status Double(std::string_view key, double& out) {
    seen_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (!n) return absl::OkStatus();
    if (auto i = n->value_exact<int64_t>()) {
      out = static_cast<double>(*i);
      return absl::OkStatus();
    }
    auto v = n->value_exact<double>();
    if (!v) return Bad(source_, Name(key), "expected a number");
    out = *v;
    return absl::OkStatus();
  }

  Status Strings(std::string_view key, std::vector<std::string>& out) {
    seen_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (!n) return absl::OkStatus();
    const toml::array* a = n->as_array();
    if (!a) return Bad(source_, Name(key), "expected an array of strings");
    for (const toml::node& item : *a) {
      auto v = item.value_exact<std::string>();
      if (!v) return Bad(source_, Name(key), "expected an array of strings");
      out.push_back(*v);
    }
    return absl::OkStatus();
  }

  // A nested table (`key = { ... }`); null when absent.
  const toml::table* Table(std::string_view key, Status& status) {
    seen_.insert(std::string(key));
    const toml::node* n = table_.get(key);
    if (!n) return nullptr;
    const toml::table* t = n->as_table();
    if (!t) status = Bad(source_, Name(key), "expected a table");
    return t;
  }

  // Any key not read above is unknown.
  Status Done() const {
    for (const auto& [key, value] : table_) {
      if (!seen_.contains(std::string(key.str()))) {
        return Bad(source_, Name(key.str()), "unknown key");
      }
    }
    return absl::OkStatus();
  }

  std::string Name(std::string_view key) const { return where_ + "." + std::string(key); }

 private:
  std::string_view source_;
  std::string where_;
  const toml::table& table_;
  std::set<std::string> seen_;
};

Status ReadBreaker(std::string_view source, const std::string& where, const toml::table& t,
                   rpc::policy::CircuitBreakerConfig& out) {
  Reader r(source, where, t);
  int64_t buckets = out.buckets;
  for (Status s : {r.Int("window_ms", out.window_ms), r.Int("buckets", buckets),
                   r.Int("min_calls", out.min_calls), r.Double("error_rate", out.error_rate),
                   r.Int("open_ms", out.open_ms), r.Int("max_open_ms", out.max_open_ms),
                   r.Int("half_open_calls", out.half_open_calls), r.Done()}) {
    if (!s.ok()) return s;
  }
  if (buckets < 1 || buckets > 1000) return Bad(source, r.Name("buckets"), "must be 1..1000");
  out.buckets = static_cast<int>(buckets);
  if (Status s = out.Validate(); !s.ok()) return Bad(source, where, std::string(s.message()));
  return absl::OkStatus();
}

Status ReadBudget(std::string_view source, const std::string& where, const toml::table& t,
                  rpc::policy::RetryBudgetConfig& out) {
  Reader r(source, where, t);
  int64_t buckets = out.buckets;
  for (Status s :
       {r.Int("window_ms", out.window_ms), r.Int("buckets", buckets), r.Double("ratio", out.ratio),
        r.Double("min_retries_per_sec", out.min_retries_per_sec), r.Done()}) {
    if (!s.ok()) return s;
  }
  if (buckets < 1 || buckets > 1000) return Bad(source, r.Name("buckets"), "must be 1..1000");
  out.buckets = static_cast<int>(buckets);
  if (Status s = out.Validate(); !s.ok()) return Bad(source, where, std::string(s.message()));
  return absl::OkStatus();
}

const std::set<std::string>& Continents() {
  static const std::set<std::string> codes = {"AF", "AN", "AS", "EU", "NA", "OC", "SA"};
  return codes;
}

Status ReadZone(std::string_view source, const std::string& where, const std::string& name,
                const toml::table& t, ZoneSpec& z) {
  Reader r(source, where, t);
  z.name = name;
  double latitude = 1000, longitude = 1000;
  for (Status s : {r.Strings("addresses", z.addresses), r.Strings("countries", z.countries),
                   r.Strings("continents", z.continents), r.Double("latitude", latitude),
                   r.Double("longitude", longitude), r.Done()}) {
    if (!s.ok()) return s;
  }
  if (z.addresses.empty()) return Bad(source, where + ".addresses", "required (its upstreams)");
  for (const std::string& a : z.addresses) {
    if (auto hp = core::ParseHostPort(a); !hp.ok()) {
      return Bad(source, where + ".addresses", std::string(hp.status().message()));
    }
  }
  for (std::string& c : z.countries) {
    absl::AsciiStrToUpper(&c);
    if (c.size() != 2 || !std::isalpha(static_cast<unsigned char>(c[0])) ||
        !std::isalpha(static_cast<unsigned char>(c[1]))) {
      return Bad(source, where + ".countries", "\"" + c + "\" is no ISO 3166-1 alpha-2 code");
    }
  }
  for (std::string& c : z.continents) {
    absl::AsciiStrToUpper(&c);
    if (!Continents().contains(c)) {
      return Bad(source, where + ".continents",
                 "\"" + c + "\" is no continent code (AF AN AS EU NA OC SA)");
    }
  }
  const bool has_lat = latitude != 1000, has_lon = longitude != 1000;
  if (has_lat != has_lon) return Bad(source, where, "latitude and longitude go together");
  if (has_lat) {
    if (latitude < -90 || latitude > 90) return Bad(source, where + ".latitude", "must be -90..90");
    if (longitude < -180 || longitude > 180) {
      return Bad(source, where + ".longitude", "must be -180..180");
    }
    z.latitude = latitude;
    z.longitude = longitude;
  }
  return absl::OkStatus();
}

// [upstreams.NAME.zones.ZONE] tables, in file order (toml++ keeps keys sorted).
Status ReadZones(std::string_view source, const std::string& where, const toml::table& zones,
                 ClusterSpec& c) {
  std::vector<std::pair<toml::source_position, ZoneSpec>> read;
  std::set<std::string> seen;
  for (const auto& [key, node] : zones) {
    const std::string name(key.str());
    const toml::table* t = node.as_table();
    if (!t) return Bad(source, where + "." + name, "expected a table");
    ZoneSpec z;
    if (Status s = ReadZone(source, where + "." + name, name, *t, z); !s.ok()) return s;
    for (const std::string& a : z.addresses) {
      if (!seen.insert(a).second) {
        return Bad(source, where + "." + name + ".addresses", a + " is in two zones");
      }
    }
    read.emplace_back(node.source().begin, std::move(z));
  }
  std::stable_sort(read.begin(), read.end(), [](const auto& a, const auto& b) {
    return std::tie(a.first.line, a.first.column) < std::tie(b.first.line, b.first.column);
  });
  for (auto& [at, z] : read) c.zones.push_back(std::move(z));
  return absl::OkStatus();
}

Status ReadCluster(std::string_view source, const std::string& name, const toml::table& t,
                   const RouteDefaults& defaults, ClusterSpec& c) {
  const std::string where = "upstreams." + name;
  c.name = name;
  c.balancer = defaults.balancer;
  c.hash_key = defaults.hash_key;
  c.retries = defaults.retries;
  Reader r(source, where, t);
  int64_t retries = c.retries;
  for (Status s : {r.String("role", c.role), r.Strings("addresses", c.addresses),
                   r.String("dns_srv", c.dns_srv), r.String("balancer", c.balancer),
                   r.String("hash_key", c.hash_key), r.String("health_path", c.health_path),
                   r.String("protocol", c.protocol), r.String("health_service", c.health_service),
                   r.String("sticky_cookie", c.sticky_cookie), r.Int("retries", retries)}) {
    if (!s.ok()) return s;
  }
  Status nested;
  if (const toml::table* b = r.Table("breaker", nested)) {
    if (Status s = ReadBreaker(source, where + ".breaker", *b, c.breaker); !s.ok()) return s;
  }
  if (const toml::table* b = r.Table("retry_budget", nested)) {
    if (Status s = ReadBudget(source, where + ".retry_budget", *b, c.retry_budget); !s.ok()) {
      return s;
    }
  }
  if (const toml::table* z = r.Table("zones", nested)) {
    if (Status s = ReadZones(source, where + ".zones", *z, c); !s.ok()) return s;
  }
  if (!nested.ok()) return nested;
  if (Status s = r.Done(); !s.ok()) return s;

  if (c.role.empty() && c.addresses.empty() && c.dns_srv.empty()) {
    // A static cluster may be given by its zones alone.
    for (const ZoneSpec& z : c.zones) {
      c.addresses.insert(c.addresses.end(), z.addresses.begin(), z.addresses.end());
    }
  } else if (!c.addresses.empty()) {
    for (const ZoneSpec& z : c.zones) {
      for (const std::string& a : z.addresses) {
        if (std::find(c.addresses.begin(), c.addresses.end(), a) == c.addresses.end()) {
          return Bad(source, where + ".zones." + z.name + ".addresses",
                     a + " is not one of " + where + ".addresses");
        }
      }
    }
  }
  const int sources = !c.role.empty() + !c.addresses.empty() + !c.dns_srv.empty();
  if (sources != 1) {
    return Bad(source, where, "needs exactly one of role, addresses and dns_srv");
  }
  for (const std::string& a : c.addresses) {
    if (auto hp = core::ParseHostPort(a); !hp.ok()) {
      return Bad(source, where + ".addresses", std::string(hp.status().message()));
    }
  }
  const auto names = rpc::lb::BalancerNames();
  if (std::find(names.begin(), names.end(), c.balancer) == names.end()) {
    return Bad(source, where + ".balancer", "unknown balancer \"" + c.balancer + "\"");
  }
  if (auto k = HashKey::Parse(c.hash_key); !k.ok()) {
    return Bad(source, where + ".hash_key", std::string(k.status().message()));
  }
  if (c.protocol != "http1" && c.protocol != "h2") {
    return Bad(source, where + ".protocol", "must be \"http1\" or \"h2\"");
  }
  if (!c.health_path.empty() && c.health_path.front() != '/') {
    return Bad(source, where + ".health_path", "must start with / (or be empty: no checks)");
  }
  for (char ch : c.sticky_cookie) {
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') {
      return Bad(source, where + ".sticky_cookie", "letters, digits, _ and - only");
    }
  }
  if (retries < 0 || retries > 10) return Bad(source, where + ".retries", "must be 0..10");
  c.retries = static_cast<int>(retries);
  return absl::OkStatus();
}

Status ReadRoute(std::string_view source, size_t index, const toml::table& t, RouteSpec& route) {
  const std::string where = "routes[" + std::to_string(index) + "]";
  Reader r(source, where, t);
  route.name = "route" + std::to_string(index + 1);
  for (Status s :
       {r.String("name", route.name), r.String("host", route.host),
        r.String("path_prefix", route.path_prefix), r.String("upstream", route.upstream)}) {
    if (!s.ok()) return s;
  }
  Status nested;
  if (const toml::table* h = r.Table("headers", nested)) {
    for (const auto& [name, value] : *h) {
      auto v = value.value_exact<std::string>();
      if (!v || v->empty()) {
        return Bad(source, where + ".headers." + std::string(name.str()),
                   "expected a non-empty string (\"*\": any value)");
      }
      route.headers.emplace_back(std::string(name.str()), *v);
    }
  }
  if (!nested.ok()) return nested;
  if (Status s = r.Done(); !s.ok()) return s;
  route.host = Lower(route.host);
  if (route.path_prefix.empty() || route.path_prefix.front() != '/') {
    return Bad(source, where + ".path_prefix", "must start with /");
  }
  if (route.upstream.empty()) return Bad(source, where + ".upstream", "required");
  return absl::OkStatus();
}

}  // namespace

bool ClusterSpec::operator==(const ClusterSpec& o) const {
  auto breaker = [](const rpc::policy::CircuitBreakerConfig& b) {
    return std::tie(b.window_ms, b.buckets, b.min_calls, b.error_rate, b.open_ms, b.max_open_ms,
                    b.half_open_calls);
  };
  auto budget = [](const rpc::policy::RetryBudgetConfig& b) {
    return std::tie(b.window_ms, b.buckets, b.ratio, b.min_retries_per_sec);
  };
  return name == o.name && role == o.role && addresses == o.addresses && dns_srv == o.dns_srv &&
         balancer == o.balancer && hash_key == o.hash_key && health_path == o.health_path &&
         protocol == o.protocol && health_service == o.health_service &&
         sticky_cookie == o.sticky_cookie && retries == o.retries &&
         breaker(this->breaker) == breaker(o.breaker) &&
         budget(retry_budget) == budget(o.retry_budget) && zones == o.zones;
}

core::StatusOr<RoutesSpec> ParseRoutes(std::string_view text, std::string_view source,
                                       const RouteDefaults& defaults) {
  toml::table root;
  try {
    root = toml::parse(text, std::string_view(source));
  } catch (const toml::parse_error& e) {
    std::string where;
    if (e.source().begin) {
      where = " (line " + std::to_string(e.source().begin.line) + ", column " +
              std::to_string(e.source().begin.column) + ")";
    }
    return absl::InvalidArgumentError(std::string(source) + ": " + std::string(e.description()) +
                                      where);
  }
  RoutesSpec spec;
  for (const auto& [key, node] : root) {
    if (key.str() != "upstreams" && key.str() != "routes") {
      return Bad(source, std::string(key.str()), "unknown key (upstreams, routes)");
    }
  }
  const toml::table* upstreams = root["upstreams"].as_table();
  if (!upstreams || upstreams->empty()) {
    return Bad(source, "upstreams", "at least one [upstreams.NAME] table is needed");
  }
  for (const auto& [name, node] : *upstreams) {
    const toml::table* t = node.as_table();
    if (!t) return Bad(source, "upstreams." + std::string(name.str()), "expected a table");
    ClusterSpec c;
    if (Status s = ReadCluster(source, std::string(name.str()), *t, defaults, c); !s.ok()) {
      return s;
    }
    spec.clusters.push_back(std::move(c));
  }
  const toml::array* routes = root["routes"].as_array();
  if (!routes || routes->empty()) {
    return Bad(source, "routes", "at least one [[routes]] entry is needed");
  }
  std::set<std::string> route_names;
  for (size_t i = 0; i < routes->size(); ++i) {
    const toml::table* t = routes->get(i)->as_table();
    if (!t) return Bad(source, "routes[" + std::to_string(i) + "]", "expected a table");
    RouteSpec route;
    if (Status s = ReadRoute(source, i, *t, route); !s.ok()) return s;
    if (std::none_of(spec.clusters.begin(), spec.clusters.end(),
                     [&](const ClusterSpec& c) { return c.name == route.upstream; })) {
      return Bad(source, "routes[" + std::to_string(i) + "].upstream",
                 "no upstream named \"" + route.upstream + "\"");
    }
    if (!route_names.insert(route.name).second) {
      return Bad(source, "routes[" + std::to_string(i) + "].name",
                 "\"" + route.name + "\" is used twice");
    }
    spec.routes.push_back(std::move(route));
  }
  return spec;
}

core::StatusOr<RoutesSpec> LoadRoutes(const std::string& path, const RouteDefaults& defaults) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::UnavailableError("cannot read the routes file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::UnavailableError("cannot read the routes file " + path);
  return ParseRoutes(text.str(), "routes file " + path, defaults);
}

RoutesSpec DefaultRoutes(const RouteDefaults& defaults) {
  RoutesSpec spec;
  ClusterSpec c;
  c.name = "gateways";
  c.role = "gateway";
  c.balancer = defaults.balancer;
  c.hash_key = defaults.hash_key;
  c.retries = defaults.retries;
  spec.clusters.push_back(std::move(c));
  spec.routes.push_back(RouteSpec{.name = "default", .upstream = "gateways"});
  return spec;
}

bool HostMatches(std::string_view pattern, std::string_view host) {
  if (!host.empty() && host.front() == '[') {  // [v6]:port
    host = host.substr(0, host.find(']') + 1);
  } else {
    host = host.substr(0, host.find(':'));
  }
  if (host.size() > 1 && host.back() == '.') host.remove_suffix(1);  // absolute name
  auto ieq = [](std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) ==
                    std::tolower(static_cast<unsigned char>(y));
           });
  };
  if (pattern.rfind("*.", 0) == 0) {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return host.size() > suffix.size() && ieq(host.substr(host.size() - suffix.size()), suffix);
  }
  return ieq(pattern, host);
}

bool PathMatches(std::string_view prefix, std::string_view target) {
  std::string_view path = target.substr(0, target.find_first_of("?#"));
  if (path.rfind(prefix, 0) != 0) return false;
  if (prefix.back() == '/' || path.size() == prefix.size()) return true;
  return path[prefix.size()] == '/';
}

}  // namespace mpim::edge
