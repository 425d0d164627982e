// A small MaxMind DB (.mmdb, format 2.0) writer for the edge's GeoIP tests:
// an IPv4 database mapping prefixes to City-like records (country.iso_code,
// continent.code, location.latitude / longitude), written from the format's
// specification (24-bit records, a data section of maps, strings and
// doubles, the metadata map). Loopback prefixes (127.0.0.2/32, ...) let a
// test client on 127.0.0.0/8 come from "Germany" or "the US".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mpim::testing {

struct MmdbRecord {
  std::string prefix;  // "A.B.C.D/len"
  std::string country;
  std::string continent;
  std::optional<double> latitude;
  std::optional<double> longitude;
};

// The database's bytes; records must not overlap.
std::string BuildMmdb(const std::vector<MmdbRecord>& records,
                      const std::string& database_type = "MPIM-Test-City");

// Writes it to `path` (via a rename, so a watcher sees one change).
void WriteMmdb(const std::string& path, const std::vector<MmdbRecord>& records);

}  // namespace mpim::testing
