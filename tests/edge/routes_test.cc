// edge routes: the routes file's format (routes.h), its errors, and which
// route a request matches.
#include "edge/routes.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace mpim::edge {
namespace {

const RouteDefaults kDefaults{.balancer = "ring_hash", .hash_key = "address", .retries = 2};

core::StatusOr<RoutesSpec> Parse(std::string_view text) {
  return ParseRoutes(text, "routes.toml", kDefaults);
}

// The message of a parse that must fail.
std::string Error(std::string_view text) {
  auto spec = Parse(text);
  EXPECT_FALSE(spec.ok()) << text;
  return spec.ok() ? "" : std::string(spec.status().message());
}

constexpr std::string_view kFull = R"(
[upstreams.gateways]
role = "gateway"
sticky_cookie = "mpim_edge"

[upstreams.search]
addresses = ["127.0.0.1:9200", "127.0.0.2:9200"]
balancer = "round_robin"
hash_key = "header:X-User"
health_path = ""
retries = 0
breaker = { error_rate = 0.25, min_calls = 5, open_ms = 2000, max_open_ms = 8000 }
retry_budget = { ratio = 0.1, min_retries_per_sec = 1 }

[upstreams.k8s]
dns_srv = "_http._tcp.api.default.svc.cluster.local"
protocol = "h2"
health_service = "mpim.Logic"

[[routes]]
name = "search"
path_prefix = "/search"
upstream = "search"

[[routes]]
host = "*.Example.com"
headers = { "X-Canary" = "1", "X-Team" = "*" }
upstream = "k8s"

[[routes]]
upstream = "gateways"
)";

TEST(RoutesTest, AFullFileIsReadWithDefaultsWhereItIsSilent) {
  auto spec = Parse(kFull);
  ASSERT_TRUE(spec.ok()) << spec.status();
  ASSERT_EQ(spec->clusters.size(), 3u);
  std::map<std::string, ClusterSpec> by_name;
  for (const auto& c : spec->clusters) by_name[c.name] = c;
  const ClusterSpec& g = by_name.at("gateways");
  EXPECT_EQ(g.role, "gateway");
  EXPECT_EQ(g.balancer, "ring_hash");  // the defaults (edge.*)
  EXPECT_EQ(g.hash_key, "address");
  EXPECT_EQ(g.retries, 2);
  EXPECT_EQ(g.health_path, "/readyz");
  EXPECT_EQ(g.sticky_cookie, "mpim_edge");
  EXPECT_EQ(g.protocol, "http1");
  EXPECT_EQ(g.health_service, "");
  EXPECT_EQ(g.breaker.min_calls, rpc::policy::CircuitBreakerConfig{}.min_calls);
  const ClusterSpec& s = by_name.at("search");
  EXPECT_EQ(s.addresses, (std::vector<std::string>{"127.0.0.1:9200", "127.0.0.2:9200"}));
  EXPECT_EQ(s.balancer, "round_robin");
  EXPECT_EQ(s.hash_key, "header:X-User");
  EXPECT_EQ(s.health_path, "");
  EXPECT_EQ(s.retries, 0);
  EXPECT_DOUBLE_EQ(s.breaker.error_rate, 0.25);
  EXPECT_EQ(s.breaker.min_calls, 5);
  EXPECT_EQ(s.breaker.open_ms, 2000);
  EXPECT_EQ(s.breaker.max_open_ms, 8000);
  EXPECT_DOUBLE_EQ(s.retry_budget.ratio, 0.1);
  EXPECT_DOUBLE_EQ(s.retry_budget.min_retries_per_sec, 1);
  EXPECT_EQ(by_name.at("k8s").dns_srv, "_http._tcp.api.default.svc.cluster.local");
  EXPECT_EQ(by_name.at("k8s").protocol, "h2");
  EXPECT_EQ(by_name.at("k8s").health_service, "mpim.Logic");

  ASSERT_EQ(spec->routes.size(), 3u);
  EXPECT_EQ(spec->routes[0].name, "search");
  EXPECT_EQ(spec->routes[0].path_prefix, "/search");
  EXPECT_EQ(spec->routes[1].name, "route2");  // the default name
  EXPECT_EQ(spec->routes[1].host, "*.example.com");
  EXPECT_EQ(spec->routes[1].headers.size(), 2u);
  EXPECT_EQ(spec->routes[2].path_prefix, "/");
  EXPECT_EQ(spec->routes[2].upstream, "gateways");
}

TEST(RoutesTest, ASpecComparesEqualOnlyWhenNothingChanged) {
  auto a = Parse(kFull);
  auto b = Parse(kFull);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(a->clusters[1] == b->clusters[1]);
  b->clusters[1].breaker.open_ms += 1;
  EXPECT_FALSE(a->clusters[1] == b->clusters[1]);
  auto c = Parse(kFull);
  c->clusters[1].protocol = c->clusters[1].protocol == "h2" ? "http1" : "h2";
  EXPECT_FALSE(a->clusters[1] == c->clusters[1]);
}

TEST(RoutesTest, EveryMistakeNamesTheFileAndTheKey) {
  const std::string route = "\n[[routes]]\nupstream = \"a\"\n";
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nwat = 1\n" + route)
                .find("routes.toml: upstreams.a.wat: unknown key"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\n" + route).find("exactly one of role, addresses and dns_srv"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\naddresses = [\"1.2.3.4:5\"]\n" + route)
                .find("exactly one"),
            std::string::npos);
  EXPECT_NE(
      Error("[upstreams.a]\naddresses = [\"nohost\"]\n" + route).find("upstreams.a.addresses"),
      std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nbalancer = \"best\"\n" + route)
                .find("upstreams.a.balancer: unknown balancer \"best\""),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nhash_key = \"moon\"\n" + route)
                .find("upstreams.a.hash_key"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nbreaker = { error_rate = 2.0 }\n" + route)
                .find("upstreams.a.breaker"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nbreaker = { colour = 1 }\n" + route)
                .find("upstreams.a.breaker.colour: unknown key"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nretries = 11\n" + route)
                .find("upstreams.a.retries"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nsticky_cookie = \"a b\"\n" + route)
                .find("upstreams.a.sticky_cookie"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nprotocol = \"h3\"\n" + route)
                .find("upstreams.a.protocol: must be \"http1\" or \"h2\""),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\nretries = \"x\"\n" + route)
                .find("upstreams.a.retries: expected an integer"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\n").find("at least one [[routes]]"),
            std::string::npos);
  EXPECT_NE(Error(route).find("at least one [upstreams.NAME]"), std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\n[[routes]]\nupstream = \"b\"\n")
                .find("routes[0].upstream: no upstream named \"b\""),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\n[[routes]]\nupstream = \"a\"\n"
                  "path_prefix = \"api\"\n")
                .find("routes[0].path_prefix: must start with /"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a]\nrole = \"gateway\"\n[[routes]]\nname = \"x\"\nupstream = "
                  "\"a\"\n[[routes]]\nname = \"x\"\nupstream = \"a\"\n")
                .find("routes[1].name: \"x\" is used twice"),
            std::string::npos);
  EXPECT_NE(
      Error("[upstreams.a]\nrole = \"gateway\"\n" + route + "[extra]\n").find("extra: unknown key"),
      std::string::npos);
  EXPECT_NE(Error("[upstreams.a\n").find("routes.toml: "), std::string::npos);  // TOML syntax
}

TEST(RoutesTest, ZonesAreReadInFileOrderAndAStaticClusterMayBeGivenByThem) {
  auto spec = Parse(R"(
[upstreams.geo.zones.us]
addresses = ["10.2.0.1:80"]
continents = ["na", "SA"]
latitude = 37.4
longitude = -122

[upstreams.geo.zones.eu]
addresses = ["10.1.0.1:80", "10.1.0.2:80"]
countries = ["de", "FR"]

[upstreams.geo.zones.rest]
addresses = ["10.3.0.1:80"]

[upstreams.gw]
role = "gateway"
[upstreams.gw.zones.a]
addresses = ["127.0.0.1:1"]

[[routes]]
upstream = "geo"
)");
  ASSERT_TRUE(spec.ok()) << spec.status();
  const ClusterSpec& geo = spec->clusters[0].name == "geo" ? spec->clusters[0] : spec->clusters[1];
  ASSERT_EQ(geo.zones.size(), 3u);
  EXPECT_EQ(geo.zones[0].name, "us") << "file order, not the keys' order";
  EXPECT_EQ(geo.zones[1].name, "eu");
  EXPECT_EQ(geo.zones[2].name, "rest");
  EXPECT_EQ(geo.zones[0].continents, (std::vector<std::string>{"NA", "SA"}));
  EXPECT_EQ(geo.zones[0].latitude, 37.4);
  EXPECT_EQ(geo.zones[0].longitude, -122.0);
  EXPECT_EQ(geo.zones[1].countries, (std::vector<std::string>{"DE", "FR"}));
  EXPECT_FALSE(geo.zones[1].latitude);
  EXPECT_EQ(geo.addresses,
            (std::vector<std::string>{"10.2.0.1:80", "10.1.0.1:80", "10.1.0.2:80", "10.3.0.1:80"}))
      << "a static cluster's addresses default to its zones'";

  auto changed = Parse(R"(
[upstreams.geo.zones.us]
addresses = ["10.2.0.1:80"]
[[routes]]
upstream = "geo"
)");
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_FALSE(changed->clusters[0] == geo) << "zones are part of a cluster's spec";
}

TEST(RoutesTest, ZoneMistakesNameTheZoneAndTheKey) {
  const std::string route = "\n[[routes]]\nupstream = \"a\"\n";
  auto zone = [&](const std::string& body, const std::string& cluster = "") {
    return Error("[upstreams.a]\n" + cluster + "[upstreams.a.zones.z]\n" + body + route);
  };
  EXPECT_NE(zone("countries = [\"DE\"]\n").find("upstreams.a.zones.z.addresses: required"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"x\"]\n").find("upstreams.a.zones.z.addresses"), std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\ncountries = [\"DEU\"]\n")
                .find("upstreams.a.zones.z.countries: \"DEU\" is no ISO 3166-1 alpha-2 code"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\ncontinents = [\"XX\"]\n")
                .find("upstreams.a.zones.z.continents: \"XX\" is no continent code"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\nlatitude = 1.0\n")
                .find("latitude and longitude go together"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\nlatitude = 91\nlongitude = 0\n")
                .find("upstreams.a.zones.z.latitude: must be -90..90"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\nlatitude = 0\nlongitude = 181\n")
                .find("upstreams.a.zones.z.longitude: must be -180..180"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\nweather = \"sunny\"\n")
                .find("upstreams.a.zones.z.weather: unknown key"),
            std::string::npos);
  EXPECT_NE(zone("addresses = [\"1.2.3.4:5\"]\n", "addresses = [\"1.2.3.4:6\"]\n")
                .find("1.2.3.4:5 is not one of upstreams.a.addresses"),
            std::string::npos);
  EXPECT_NE(Error("[upstreams.a.zones.y]\naddresses = [\"1.2.3.4:5\"]\n"
                  "[upstreams.a.zones.z]\naddresses = [\"1.2.3.4:5\"]\n" +
                  route)
                .find("1.2.3.4:5 is in two zones"),
            std::string::npos);
}

TEST(RoutesTest, TheBuiltInRoutesSendEverythingToTheGateways) {
  RoutesSpec spec = DefaultRoutes(kDefaults);
  ASSERT_EQ(spec.clusters.size(), 1u);
  EXPECT_EQ(spec.clusters[0].role, "gateway");
  EXPECT_EQ(spec.clusters[0].balancer, "ring_hash");
  ASSERT_EQ(spec.routes.size(), 1u);
  auto none = [](const std::string&) { return std::string_view(); };
  EXPECT_TRUE(Matches(spec.routes[0], "", "/anything?at=all", none));
}

TEST(RoutesTest, HostsMatchExactlyOrAsSubdomainsWithoutPortOrCase) {
  EXPECT_TRUE(HostMatches("chat.example.com", "chat.example.com"));
  EXPECT_TRUE(HostMatches("chat.example.com", "Chat.Example.COM:8443"));
  EXPECT_TRUE(HostMatches("chat.example.com", "chat.example.com."));
  EXPECT_FALSE(HostMatches("chat.example.com", "example.com"));
  EXPECT_FALSE(HostMatches("chat.example.com", ""));
  EXPECT_TRUE(HostMatches("*.example.com", "a.example.com"));
  EXPECT_TRUE(HostMatches("*.example.com", "a.b.example.com:80"));
  EXPECT_FALSE(HostMatches("*.example.com", "example.com"));
  EXPECT_FALSE(HostMatches("*.example.com", "badexample.com"));
  EXPECT_TRUE(HostMatches("[::1]", "[::1]:8080"));
}

TEST(RoutesTest, PathPrefixesMatchWholeSegments) {
  EXPECT_TRUE(PathMatches("/", "/"));
  EXPECT_TRUE(PathMatches("/", "/x"));
  EXPECT_TRUE(PathMatches("/api", "/api"));
  EXPECT_TRUE(PathMatches("/api", "/api/v1/users"));
  EXPECT_TRUE(PathMatches("/api", "/api?x=1"));
  EXPECT_FALSE(PathMatches("/api", "/apix"));
  EXPECT_FALSE(PathMatches("/api", "/ap"));
  EXPECT_FALSE(PathMatches("/api", "/x?/api"));  // the query is not the path
  EXPECT_TRUE(PathMatches("/static/", "/static/app.js"));
  EXPECT_FALSE(PathMatches("/static/", "/static"));
}

TEST(RoutesTest, TheFirstMatchingRouteWinsAndHeadersMustAllFit) {
  auto spec = Parse(kFull);
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto route_for = [&](std::string_view host, std::string_view target,
                       std::map<std::string, std::string> headers) -> std::string {
    auto lookup = [&](const std::string& name) -> std::string_view {
      auto it = headers.find(name);
      return it == headers.end() ? std::string_view() : std::string_view(it->second);
    };
    for (const RouteSpec& r : spec->routes) {
      if (Matches(r, host, target, lookup)) return r.upstream;
    }
    return "none";
  };
  EXPECT_EQ(route_for("x.example.com", "/search/q", {{"X-Canary", "1"}, {"X-Team", "a"}}),
            "search");
  EXPECT_EQ(route_for("x.example.com", "/api", {{"X-Canary", "1"}, {"X-Team", "a"}}), "k8s");
  EXPECT_EQ(route_for("x.example.com", "/api", {{"X-Canary", "2"}, {"X-Team", "a"}}), "gateways");
  EXPECT_EQ(route_for("x.example.com", "/api", {{"X-Canary", "1"}}), "gateways");
  EXPECT_EQ(route_for("other.org", "/api", {{"X-Canary", "1"}, {"X-Team", "a"}}), "gateways");
}

}  // namespace
}  // namespace mpim::edge
