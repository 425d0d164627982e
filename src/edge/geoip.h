// Where a client is, for the edge's choice of the nearest upstream zone
// (docs/edge.md, "GeoIP"): a MaxMind DB file (.mmdb, GeoIP2/GeoLite2 City
// or Country, or any database with the same fields) read through
// libmaxminddb, and the ranking of a cluster's zones for a location.
//
// The fields read: country.iso_code, continent.code, location.latitude and
// location.longitude (registered_country.iso_code when country is absent).
//
// GeoIpDatabase keeps edge.geoip_database live: opened at start (an error
// there stops the edge from starting), opened again when the file changes
// (FileWatcher); a file that fails to open on reload leaves the one in
// force, logged and counted (mpim_edge_geoip_reloads_total{result}).
//
// Threads: Lookup from any thread (a database in force is never closed
// while a lookup holds it).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"
#include "edge/file_watcher.h"
#include "edge/routes.h"

namespace mpim::edge {

struct Location {
  bool found = false;     // the address is in the database
  std::string country;    // ISO 3166-1 alpha-2, upper case; "" unknown
  std::string continent;  // AF AN AS EU NA OC SA; "" unknown
  std::optional<double> latitude;
  std::optional<double> longitude;
};

// One opened .mmdb file.
class GeoIp {
 public:
  // invalid_argument naming the file when it cannot be opened or is no
  // MaxMind DB.
  static core::StatusOr<std::unique_ptr<GeoIp>> Open(const std::string& path);
  ~GeoIp();
  GeoIp(const GeoIp&) = delete;
  GeoIp& operator=(const GeoIp&) = delete;

  // The location of `ip` (IPv4 or IPv6 text); not found when the address is
  // not in the database, is not an address, or the database cannot answer
  // for its family.
  Location Lookup(const std::string& ip) const;

  const std::string& database_type() const { return type_; }

 private:
  struct Handle;
  explicit GeoIp(std::unique_ptr<Handle> handle);
  std::unique_ptr<Handle> handle_;
  std::string type_;
};

// The order in which `zones` serve a client at `where`: first the zones
// that list its country, then those that list its continent, then the
// others nearest first (great-circle distance, when both the client's and
// the zone's coordinates are known; zones without coordinates last), file
// order breaking ties. Empty when the location is unknown: no preference.
std::vector<size_t> RankZones(const std::vector<ZoneSpec>& zones, const Location& where);

// Great-circle distance in km.
double DistanceKm(double lat1, double lon1, double lat2, double lon2);

class GeoIpDatabase {
 public:
  GeoIpDatabase(std::string path, int64_t poll_ms,
                core::MetricsRegistry& metrics = core::DefaultRegistry());
  ~GeoIpDatabase();

  [[nodiscard]] core::Status Load();
  void Reload(const char* why);
  void Start() { watcher_.Start(); }
  void Stop() { watcher_.Stop(); }

  // The location of `ip` in the database in force (counted by result).
  Location Lookup(const std::string& ip) const;

 private:
  std::shared_ptr<const GeoIp> current() const;

  const std::string path_;
  core::CounterFamily& reloads_;
  core::CounterFamily& lookups_;
  core::Counter& found_;
  core::Counter& not_found_;
  mutable std::mutex mu_;  // guards db_
  std::shared_ptr<const GeoIp> db_;
  std::mutex load_mu_;  // one load at a time
  FileWatcher watcher_;
};

}  // namespace mpim::edge
