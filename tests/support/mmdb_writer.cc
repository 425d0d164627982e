#include "support/mmdb_writer.h"

#include <arpa/inet.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

namespace mpim::testing {
namespace {

// The data section's encoding: a control byte (type << 5 | size), an
// extended type byte for types above 7, then size bytes past 28.
class Encoder {
 public:
  std::string& out() { return out_; }

  void Control(int type, size_t size) {
    const int bits = size < 29 ? static_cast<int>(size) : size < 285 ? 29 : size < 65821 ? 30 : 31;
    if (type <= 7) {
      out_ += static_cast<char>((type << 5) | bits);
    } else {
      out_ += static_cast<char>(bits);
      out_ += static_cast<char>(type - 7);
    }
    if (bits == 29) out_ += static_cast<char>(size - 29);
    if (bits == 30) Big(size - 285, 2);
    if (bits == 31) Big(size - 65821, 3);
  }
  void String(const std::string& s) {
    Control(2, s.size());
    out_ += s;
  }
  void Double(double d) {
    Control(3, 8);
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    Big(bits, 8);
  }
  void Unsigned(int type, uint64_t v) {  // 5 uint16, 6 uint32, 9 uint64
    size_t n = 0;
    for (uint64_t x = v; x != 0; x >>= 8) ++n;
    Control(type, n);
    Big(v, n);
  }
  void Map(size_t pairs) { Control(7, pairs); }
  void Array(size_t items) { Control(11, items); }

 private:
  void Big(uint64_t v, size_t n) {
    for (size_t i = n; i-- > 0;) out_ += static_cast<char>((v >> (8 * i)) & 0xff);
  }
  std::string out_;
};

void EncodeRecord(Encoder& e, const MmdbRecord& r) {
  const bool location = r.latitude && r.longitude;
  e.Map(!r.continent.empty() + !r.country.empty() + location);
  if (!r.continent.empty()) {
    e.String("continent");
    e.Map(1);
    e.String("code");
    e.String(r.continent);
  }
  if (!r.country.empty()) {
    e.String("country");
    e.Map(1);
    e.String("iso_code");
    e.String(r.country);
  }
  if (location) {
    e.String("location");
    e.Map(2);
    e.String("latitude");
    e.Double(*r.latitude);
    e.String("longitude");
    e.Double(*r.longitude);
  }
}

// A record of the search tree: another node, no data, or a data offset.
struct Ref {
  enum Kind { kEmpty, kNode, kData } kind = kEmpty;
  uint32_t value = 0;
};

}  // namespace

std::string BuildMmdb(const std::vector<MmdbRecord>& records, const std::string& database_type) {
  std::vector<std::pair<Ref, Ref>> nodes(1);  // the root
  Encoder data;
  for (const MmdbRecord& r : records) {
    const auto slash = r.prefix.find('/');
    if (slash == std::string::npos) throw std::invalid_argument("prefix without /len: " + r.prefix);
    in_addr addr{};
    if (inet_pton(AF_INET, r.prefix.substr(0, slash).c_str(), &addr) != 1) {
      throw std::invalid_argument("not an IPv4 prefix: " + r.prefix);
    }
    const int len = std::stoi(r.prefix.substr(slash + 1));
    if (len < 1 || len > 32) throw std::invalid_argument("prefix length 1..32: " + r.prefix);
    const uint32_t ip = ntohl(addr.s_addr);
    const auto offset = static_cast<uint32_t>(data.out().size());
    EncodeRecord(data, r);
    uint32_t node = 0;
    for (int depth = 0; depth < len; ++depth) {
      const bool right = (ip >> (31 - depth)) & 1;
      Ref& ref = right ? nodes[node].second : nodes[node].first;
      if (depth == len - 1) {
        if (ref.kind != Ref::kEmpty) throw std::invalid_argument("overlapping: " + r.prefix);
        ref = {Ref::kData, offset};
        break;
      }
      if (ref.kind == Ref::kData) throw std::invalid_argument("overlapping: " + r.prefix);
      if (ref.kind == Ref::kEmpty) {
        ref = {Ref::kNode, static_cast<uint32_t>(nodes.size())};
        nodes.emplace_back();  // `ref` may dangle from here on
      }
      node = (right ? nodes[node].second : nodes[node].first).value;
    }
  }

  const auto node_count = static_cast<uint32_t>(nodes.size());
  auto value = [&](const Ref& ref) -> uint32_t {
    switch (ref.kind) {
      case Ref::kNode:
        return ref.value;
      case Ref::kData:
        return node_count + 16 + ref.value;
      case Ref::kEmpty:
        break;
    }
    return node_count;
  };
  std::string out;
  for (const auto& [left, right] : nodes) {
    for (uint32_t v : {value(left), value(right)}) {  // 24-bit records, big-endian
      out += static_cast<char>((v >> 16) & 0xff);
      out += static_cast<char>((v >> 8) & 0xff);
      out += static_cast<char>(v & 0xff);
    }
  }
  out += std::string(16, '\0');  // the data section separator
  out += data.out();

  out += "\xAB\xCD\xEFMaxMind.com";
  Encoder meta;
  meta.Map(9);
  meta.String("binary_format_major_version");
  meta.Unsigned(5, 2);
  meta.String("binary_format_minor_version");
  meta.Unsigned(5, 0);
  meta.String("build_epoch");
  meta.Unsigned(9, 1764806400);
  meta.String("database_type");
  meta.String(database_type);
  meta.String("description");
  meta.Map(1);
  meta.String("en");
  meta.String("MPIM test database");
  meta.String("ip_version");
  meta.Unsigned(5, 4);
  meta.String("languages");
  meta.Array(1);
  meta.String("en");
  meta.String("node_count");
  meta.Unsigned(6, node_count);
  meta.String("record_size");
  meta.Unsigned(5, 24);
  out += meta.out();
  return out;
}

void WriteMmdb(const std::string& path, const std::vector<MmdbRecord>& records) {
  const std::string tmp = path + ".new";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    const std::string bytes = BuildMmdb(records);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace mpim::testing
