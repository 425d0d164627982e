// The edge's GeoIP (edge/geoip.h): MaxMind DB files this test writes
// (support/mmdb_writer.h) read through libmaxminddb, the ranking of zones
// for a location, and the database kept live (reloaded on change, a bad
// file keeping the one in force). Zones in routes files: routes_test.cc;
// the choice among upstreams: upstreams_test.cc; end to end:
// edge_routes_e2e_test.cc.
#include "edge/geoip.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/eventually.h"
#include "support/metrics_text.h"
#include "support/mmdb_writer.h"
#include "support/temp_dir.h"

namespace mpim::edge {
namespace {

using testing::MmdbRecord;

std::vector<MmdbRecord> World() {
  return {
      {.prefix = "127.0.0.2/32",
       .country = "DE",
       .continent = "EU",
       .latitude = 52.52,
       .longitude = 13.40},
      {.prefix = "127.0.0.3/32",
       .country = "US",
       .continent = "NA",
       .latitude = 37.77,
       .longitude = -122.42},
      {.prefix = "10.0.0.0/8", .country = "jp"},       // no continent, no location
      {.prefix = "127.0.0.16/28", .continent = "OC"},  // a continent only
  };
}

TEST(GeoIpTest, ReadsWhatTheDatabaseSaysAboutAnAddress) {
  testing::TempDir dir;
  testing::WriteMmdb(dir.File("world.mmdb"), World());
  auto db = GeoIp::Open(dir.File("world.mmdb"));
  ASSERT_TRUE(db.ok()) << db.status();
  EXPECT_EQ((*db)->database_type(), "MPIM-Test-City");

  Location berlin = (*db)->Lookup("127.0.0.2");
  EXPECT_TRUE(berlin.found);
  EXPECT_EQ(berlin.country, "DE");
  EXPECT_EQ(berlin.continent, "EU");
  ASSERT_TRUE(berlin.latitude && berlin.longitude);
  EXPECT_DOUBLE_EQ(*berlin.latitude, 52.52);
  EXPECT_DOUBLE_EQ(*berlin.longitude, 13.40);
  EXPECT_EQ((*db)->Lookup("127.0.0.3").country, "US");

  Location japan = (*db)->Lookup("10.200.3.4");
  EXPECT_TRUE(japan.found);
  EXPECT_EQ(japan.country, "JP") << "codes are upper-cased";
  EXPECT_EQ(japan.continent, "");
  EXPECT_FALSE(japan.latitude);

  for (const char* in : {"127.0.0.16", "127.0.0.31"}) {
    Location oc = (*db)->Lookup(in);
    EXPECT_TRUE(oc.found) << in;
    EXPECT_EQ(oc.continent, "OC") << in;
  }
  for (const char* out :
       {"127.0.0.1", "127.0.0.15", "127.0.0.32", "11.0.0.1", "::1", "not an address", ""}) {
    EXPECT_FALSE((*db)->Lookup(out).found) << out;
  }
}

TEST(GeoIpTest, AMissingOrBrokenFileIsRefusedByName) {
  testing::TempDir dir;
  auto missing = GeoIp::Open(dir.File("nope.mmdb"));
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("nope.mmdb"), std::string::npos);
  std::ofstream(dir.File("junk.mmdb")) << "this is no MaxMind DB at all";
  auto junk = GeoIp::Open(dir.File("junk.mmdb"));
  ASSERT_FALSE(junk.ok());
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kInvalidArgument);
  // A truncated database.
  std::string bytes = testing::BuildMmdb(World());
  std::ofstream(dir.File("cut.mmdb"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  EXPECT_FALSE(GeoIp::Open(dir.File("cut.mmdb")).ok());
}

TEST(GeoIpTest, ZonesRankByCountryThenContinentThenDistance) {
  const std::vector<ZoneSpec> zones = {
      {.name = "eu",
       .countries = {"DE", "FR"},
       .continents = {"EU"},
       .latitude = 50.1,
       .longitude = 8.7},                                                           // Frankfurt
      {.name = "us", .continents = {"NA"}, .latitude = 37.4, .longitude = -122.1},  // California
      {.name = "asia", .latitude = 35.7, .longitude = 139.7},                       // Tokyo
      {.name = "fallback"},
  };
  auto names = [&](const Location& where) {
    std::vector<std::string> out;
    for (size_t i : RankZones(zones, where)) out.push_back(zones[i].name);
    return out;
  };
  using V = std::vector<std::string>;
  // Paris: its country is listed; then by distance.
  EXPECT_EQ(
      names(
          {.found = true, .country = "FR", .continent = "EU", .latitude = 48.9, .longitude = 2.35}),
      (V{"eu", "us", "asia", "fallback"}));
  // Madrid: its continent.
  EXPECT_EQ(names({.found = true, .country = "ES", .continent = "EU"})[0], "eu");
  // Seoul: no code listed; the nearest first, zones without coordinates last.
  EXPECT_EQ(names({.found = true,
                   .country = "KR",
                   .continent = "AS",
                   .latitude = 37.57,
                   .longitude = 126.98}),
            (V{"asia", "eu", "us", "fallback"}));  // Frankfurt 8,600 km, California 9,000
  // Mexico City: its continent first, the others by distance.
  EXPECT_EQ(names({.found = true,
                   .country = "MX",
                   .continent = "NA",
                   .latitude = 19.4,
                   .longitude = -99.1}),
            (V{"us", "eu", "asia", "fallback"}));
  // Known, but nothing to go by: file order.
  EXPECT_EQ(names({.found = true}), (V{"eu", "us", "asia", "fallback"}));
  // Not in the database: no preference.
  EXPECT_TRUE(names({}).empty());
}

TEST(GeoIpTest, DistanceIsGreatCircle) {
  EXPECT_NEAR(DistanceKm(52.52, 13.40, 48.86, 2.35), 878, 5);      // Berlin-Paris
  EXPECT_NEAR(DistanceKm(40.71, -74.01, 51.51, -0.13), 5570, 15);  // New York-London
  EXPECT_NEAR(DistanceKm(0, 179.5, 0, -179.5), 111, 1);            // across the date line
  EXPECT_DOUBLE_EQ(DistanceKm(10, 20, 10, 20), 0);
}

TEST(GeoIpTest, TheDatabaseIsReloadedOnChangeAndABadFileKeepsTheOneInForce) {
  testing::TempDir dir;
  const std::string path = dir.File("geo.mmdb");
  testing::WriteMmdb(path, World());
  core::MetricsRegistry metrics;
  GeoIpDatabase db(path, 50, metrics);
  ASSERT_TRUE(db.Load().ok());
  db.Start();
  EXPECT_EQ(db.Lookup("127.0.0.2").country, "DE");
  EXPECT_FALSE(db.Lookup("127.0.0.9").found);

  testing::WriteMmdb(path, {{.prefix = "127.0.0.2/32", .country = "FR", .continent = "EU"},
                            {.prefix = "127.0.0.9/32", .country = "BR", .continent = "SA"}});
  EXPECT_TRUE(testing::Eventually([&] { return db.Lookup("127.0.0.2").country == "FR"; }));
  EXPECT_EQ(db.Lookup("127.0.0.9").country, "BR");

  {
    std::ofstream junk(path + ".new");
    junk << "garbage";
  }
  std::filesystem::rename(path + ".new", path);
  EXPECT_TRUE(testing::Eventually([&] {
    return testing::SeriesValue(metrics.Exposition(),
                                R"(mpim_edge_geoip_reloads_total{result="error"})") >= 1;
  }));
  EXPECT_EQ(db.Lookup("127.0.0.2").country, "FR") << "the database in force stays";
  db.Stop();
  const std::string text = metrics.Exposition();
  EXPECT_GE(testing::SeriesValue(text, R"(mpim_edge_geoip_reloads_total{result="ok"})"), 1);
  EXPECT_GE(testing::SeriesValue(text, R"(mpim_edge_geoip_lookups_total{result="found"})"), 4);
  EXPECT_EQ(testing::SeriesValue(text, R"(mpim_edge_geoip_lookups_total{result="not_found"})"), 1);
}

}  // namespace
}  // namespace mpim::edge
