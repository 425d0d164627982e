// The edge's routes (docs/edge.md, "Routes"): which upstream cluster gets a
// request, by host, path prefix and headers, and how each cluster finds,
// balances and protects its upstreams. Read from edge.routes_file (TOML),
// or built in when none is named: every request to the gateways.
//
//   [upstreams.gateways]
//   role = "gateway"                 # from the cluster's discovery; or
//   # addresses = ["10.0.0.5:8080"]  # a static list; or
//   # dns_srv = "_http._tcp.api.ns.svc.cluster.local"
//   balancer = "bounded_load"        # default edge.balancer
//   hash_key = "user"                # default edge.hash_key
//   protocol = "http1"               # or "h2": HTTP/2 upstreams (gRPC)
//   health_path = "/readyz"          # "" for no active checks
//   health_service = ""              # h2: the gRPC health check's service
//   sticky_cookie = "mpim_edge"      # "" (default) for none
//   retries = 1                      # default edge.retries
//   breaker = { error_rate = 0.5, min_calls = 20, open_ms = 1000 }
//   retry_budget = { ratio = 0.2, min_retries_per_sec = 10 }
//
//   [upstreams.gateways.zones.eu]    # GeoIP (edge.geoip_database): clients
//   addresses = ["10.1.0.5:8080"]    # go to the zone that lists their
//   countries = ["DE", "FR"]         # country, else their continent, else
//   continents = ["EU", "AF"]        # the nearest by coordinates; a zone
//   latitude = 50.1                  # with no healthy upstream passes them
//   longitude = 8.7                  # on to the next (docs/edge.md "GeoIP")
//
//   [[routes]]
//   name = "api"                     # metrics label; default "route<N>"
//   host = "chat.example.com"        # exact, or "*.example.com"; default any
//   path_prefix = "/api"             # default "/"
//   headers = { "X-Canary" = "1" }   # each must be present with this value
//                                    # ("*": present with any value)
//   upstream = "gateways"
//
// The first route that matches wins, in file order. A path prefix matches
// whole segments: "/api" matches "/api", "/api/x" and "/api?q", not
// "/apix"; a prefix ending in "/" matches any path that starts with it.
// Unknown keys, unknown upstream names, bad balancers, hash keys or
// breaker settings are errors that name the key.
//
// Pure data and functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "rpc/policy/circuit_breaker.h"
#include "rpc/policy/retry_budget.h"

namespace mpim::edge {

// A zone of an upstream cluster: which of its upstreams are there (by
// address; for a static cluster a subset of its addresses, which default
// to all its zones' addresses) and whom it serves.
struct ZoneSpec {
  std::string name;
  std::vector<std::string> addresses;   // HOST:PORT each
  std::vector<std::string> countries;   // ISO 3166-1 alpha-2, upper case
  std::vector<std::string> continents;  // AF AN AS EU NA OC SA
  std::optional<double> latitude;       // both or neither
  std::optional<double> longitude;

  bool operator==(const ZoneSpec&) const = default;
};

struct ClusterSpec {
  std::string name;
  // Where the upstreams come from: exactly one of the three.
  std::string role;                    // nodes of this role in the cluster's discovery
  std::vector<std::string> addresses;  // HOST:PORT each
  std::string dns_srv;                 // an SRV name, read again every discovery.dns_refresh_ms
  std::string balancer;
  std::string hash_key;
  // "http1" (HTTP/1.1, keep-alive pooled) or "h2" (cleartext HTTP/2 with
  // prior knowledge, multiplexed: gRPC servers; only HTTP/2 clients' streams
  // go there, h2_upstream.h).
  std::string protocol = "http1";
  std::string health_path = "/readyz";  // http1: GET it; h2: "" turns checks off
  std::string health_service;           // h2: grpc.health.v1 Check of this service
  std::string sticky_cookie;
  int retries = 1;
  rpc::policy::CircuitBreakerConfig breaker;
  rpc::policy::RetryBudgetConfig retry_budget;
  std::vector<ZoneSpec> zones;  // in file order

  bool operator==(const ClusterSpec& o) const;
};

struct RouteSpec {
  std::string name;
  std::string host;  // lower case; "" any; "*.example.com" any subdomain
  std::string path_prefix = "/";
  std::vector<std::pair<std::string, std::string>> headers;  // name, value or "*"
  std::string upstream;

  bool operator==(const RouteSpec&) const = default;
};

struct RoutesSpec {
  std::vector<ClusterSpec> clusters;
  std::vector<RouteSpec> routes;
};

// What a cluster that does not say takes: edge.balancer, edge.hash_key,
// edge.retries.
struct RouteDefaults {
  std::string balancer = "bounded_load";
  std::string hash_key = "user";
  int retries = 1;
};

// Parses a routes file's text; `source` names it in errors.
core::StatusOr<RoutesSpec> ParseRoutes(std::string_view text, std::string_view source,
                                       const RouteDefaults& defaults);
// Reads and parses the file at `path` (unavailable when it cannot be read).
core::StatusOr<RoutesSpec> LoadRoutes(const std::string& path, const RouteDefaults& defaults);
// Without a routes file: cluster "gateways" (role gateway) for every request.
RoutesSpec DefaultRoutes(const RouteDefaults& defaults);

// Does `route` take a request for `host` (the Host header, any port
// dropped, any case) and `target` (path and query)? Headers are looked up
// through `header` (name -> value, empty when absent).
template <typename HeaderLookup>
bool Matches(const RouteSpec& route, std::string_view host, std::string_view target,
             const HeaderLookup& header);

bool HostMatches(std::string_view pattern, std::string_view host);
bool PathMatches(std::string_view prefix, std::string_view target);

template <typename HeaderLookup>
bool Matches(const RouteSpec& route, std::string_view host, std::string_view target,
             const HeaderLookup& header) {
  if (!route.host.empty() && !HostMatches(route.host, host)) return false;
  if (!PathMatches(route.path_prefix, target)) return false;
  for (const auto& [name, value] : route.headers) {
    std::string_view got = header(name);
    if (got.empty()) return false;
    if (value != "*" && got != value) return false;
  }
  return true;
}

}  // namespace mpim::edge
