#include "edge/geoip.h"

#include <maxminddb.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "absl/strings/ascii.h"

namespace mpim::edge {

struct GeoIp::Handle {
  MMDB_s mmdb{};
  bool open = false;  // MMDB_open frees what it took when it fails
  ~Handle() {
    if (open) MMDB_close(&mmdb);
  }
};

core::StatusOr<std::unique_ptr<GeoIp>> GeoIp::Open(const std::string& path) {
  auto handle = std::make_unique<Handle>();
  const int status = MMDB_open(path.c_str(), MMDB_MODE_MMAP, &handle->mmdb);
  if (status != MMDB_SUCCESS) {
    return absl::InvalidArgumentError("geoip database " + path + ": " + MMDB_strerror(status));
  }
  handle->open = true;
  std::unique_ptr<GeoIp> db(new GeoIp(std::move(handle)));
  if (const char* type = db->handle_->mmdb.metadata.database_type) db->type_ = type;
  return db;
}

GeoIp::GeoIp(std::unique_ptr<Handle> handle) : handle_(std::move(handle)) {}
GeoIp::~GeoIp() = default;

namespace {

std::string StringAt(MMDB_entry_s& entry, const char* a, const char* b) {
  MMDB_entry_data_s data{};
  if (MMDB_get_value(&entry, &data, a, b, nullptr) != MMDB_SUCCESS || !data.has_data ||
      data.type != MMDB_DATA_TYPE_UTF8_STRING) {
    return {};
  }
  std::string out(data.utf8_string, data.data_size);
  absl::AsciiStrToUpper(&out);
  return out;
}

std::optional<double> NumberAt(MMDB_entry_s& entry, const char* a, const char* b) {
  MMDB_entry_data_s data{};
  if (MMDB_get_value(&entry, &data, a, b, nullptr) != MMDB_SUCCESS || !data.has_data) {
    return std::nullopt;
  }
  if (data.type == MMDB_DATA_TYPE_DOUBLE) return data.double_value;
  if (data.type == MMDB_DATA_TYPE_FLOAT) return static_cast<double>(data.float_value);
  return std::nullopt;
}

}  // namespace

Location GeoIp::Lookup(const std::string& ip) const {
  Location out;
  int gai_error = 0;
  int mmdb_error = MMDB_SUCCESS;
  MMDB_lookup_result_s r = MMDB_lookup_string(&handle_->mmdb, ip.c_str(), &gai_error, &mmdb_error);
  if (gai_error != 0 || mmdb_error != MMDB_SUCCESS || !r.found_entry) return out;
  out.found = true;
  out.country = StringAt(r.entry, "country", "iso_code");
  if (out.country.empty()) out.country = StringAt(r.entry, "registered_country", "iso_code");
  out.continent = StringAt(r.entry, "continent", "code");
  out.latitude = NumberAt(r.entry, "location", "latitude");
  out.longitude = NumberAt(r.entry, "location", "longitude");
  if (!out.latitude || !out.longitude) out.latitude = out.longitude = std::nullopt;
  return out;
}

double DistanceKm(double lat1, double lon1, double lat2, double lon2) {
  constexpr double kEarthKm = 6371.0;
  constexpr double kRad = M_PI / 180.0;
  const double dlat = (lat2 - lat1) * kRad;
  const double dlon = (lon2 - lon1) * kRad;
  const double h =
      std::sin(dlat / 2) * std::sin(dlat / 2) +
      std::cos(lat1 * kRad) * std::cos(lat2 * kRad) * std::sin(dlon / 2) * std::sin(dlon / 2);
  return 2 * kEarthKm * std::asin(std::min(1.0, std::sqrt(h)));
}

std::vector<size_t> RankZones(const std::vector<ZoneSpec>& zones, const Location& where) {
  if (!where.found || zones.empty()) return {};
  auto contains = [](const std::vector<std::string>& codes, const std::string& code) {
    return !code.empty() && std::find(codes.begin(), codes.end(), code) != codes.end();
  };
  // Lower sorts first: tier (country, continent, other), then distance.
  struct Rank {
    int tier;
    double km;
  };
  std::vector<Rank> ranks;
  ranks.reserve(zones.size());
  for (const ZoneSpec& z : zones) {
    Rank r{2, std::numeric_limits<double>::infinity()};
    if (contains(z.countries, where.country)) {
      r.tier = 0;
    } else if (contains(z.continents, where.continent)) {
      r.tier = 1;
    }
    if (where.latitude && z.latitude) {
      r.km = DistanceKm(*where.latitude, *where.longitude, *z.latitude, *z.longitude);
    }
    ranks.push_back(r);
  }
  std::vector<size_t> order(zones.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (ranks[a].tier != ranks[b].tier) return ranks[a].tier < ranks[b].tier;
    return ranks[a].km < ranks[b].km;
  });
  return order;
}

GeoIpDatabase::GeoIpDatabase(std::string path, int64_t poll_ms, core::MetricsRegistry& metrics)
    : path_(std::move(path)),
      reloads_(metrics.Counter("mpim_edge_geoip_reloads_total",
                               "Reloads of edge.geoip_database, by result: ok (in force) or "
                               "error (the database in force stayed).",
                               {"result"})),
      lookups_(metrics.Counter("mpim_edge_geoip_lookups_total",
                               "Client addresses looked up in the GeoIP database (once per "
                               "connection), by result: found or not_found.",
                               {"result"})),
      found_(lookups_.With({"found"})),
      not_found_(lookups_.With({"not_found"})),
      watcher_({path_}, poll_ms, [this] { Reload("changed"); }) {}

GeoIpDatabase::~GeoIpDatabase() { watcher_.Stop(); }

core::Status GeoIpDatabase::Load() {
  std::lock_guard lock(load_mu_);
  watcher_.Seen(watcher_.Look());
  auto db = GeoIp::Open(path_);
  if (!db.ok()) return db.status();
  std::shared_ptr<const GeoIp> next = std::move(*db);
  std::lock_guard swap(mu_);
  db_ = std::move(next);
  return absl::OkStatus();
}

void GeoIpDatabase::Reload(const char* why) {
  ReportReload(reloads_, Load(), "geoip database", path_, why);
}

std::shared_ptr<const GeoIp> GeoIpDatabase::current() const {
  std::lock_guard lock(mu_);
  return db_;
}

Location GeoIpDatabase::Lookup(const std::string& ip) const {
  std::shared_ptr<const GeoIp> db = current();
  Location where = db ? db->Lookup(ip) : Location{};
  (where.found ? found_ : not_found_).Inc();
  return where;
}

}  // namespace mpim::edge
