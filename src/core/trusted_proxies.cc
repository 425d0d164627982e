#include "core/trusted_proxies.h"

#include <arpa/inet.h>

#include <cstring>

namespace mpim::core {
namespace {

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// An address as 16 bytes (IPv4 in the last 4, v6 false); IPv4-mapped IPv6
// addresses count as IPv4.
bool ParseAddress(std::string_view text, bool* v6, std::array<uint8_t, 16>* bytes) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  if (text.empty() || text.size() > 45) return false;
  char buf[46];
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  bytes->fill(0);
  in_addr a4{};
  if (::inet_pton(AF_INET, buf, &a4) == 1) {
    *v6 = false;
    std::memcpy(bytes->data() + 12, &a4, 4);
    return true;
  }
  in6_addr a6{};
  if (::inet_pton(AF_INET6, buf, &a6) != 1) return false;
  std::memcpy(bytes->data(), &a6, 16);
  static constexpr uint8_t kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  *v6 = std::memcmp(bytes->data(), kMapped, 12) != 0;
  if (!*v6) std::memset(bytes->data(), 0, 12);
  return true;
}

}  // namespace

bool TrustedProxies::ParseNet(std::string_view text, Net* net) {
  text = Trim(text);
  const size_t slash = text.find('/');
  if (!ParseAddress(text.substr(0, slash), &net->v6, &net->bytes)) return false;
  const int max = net->v6 ? 128 : 32;
  net->prefix = max;
  if (slash != std::string_view::npos) {
    std::string_view digits = text.substr(slash + 1);
    if (digits.empty() || digits.size() > 3) return false;
    int prefix = 0;
    for (char c : digits) {
      if (c < '0' || c > '9') return false;
      prefix = prefix * 10 + (c - '0');
    }
    if (prefix > max) return false;
    net->prefix = prefix;
  }
  return true;
}

Status TrustedProxies::Check(std::string_view entry) {
  Net net;
  if (!ParseNet(entry, &net)) {
    return absl::InvalidArgumentError("expected an IP address or a CIDR network, got \"" +
                                      std::string(entry) + "\"");
  }
  return absl::OkStatus();
}

StatusOr<TrustedProxies> TrustedProxies::Parse(const std::vector<std::string>& entries) {
  TrustedProxies t;
  for (const std::string& e : entries) {
    Net net;
    if (!ParseNet(e, &net)) return Check(e);
    t.nets_.push_back(net);
  }
  return t;
}

bool TrustedProxies::Contains(std::string_view address) const {
  if (nets_.empty()) return false;
  bool v6 = false;
  std::array<uint8_t, 16> bytes{};
  if (!ParseAddress(Trim(address), &v6, &bytes)) return false;
  for (const Net& n : nets_) {
    if (n.v6 != v6) continue;
    const int offset = v6 ? 0 : 12;  // IPv4 prefixes count from byte 12
    int bits = n.prefix;
    bool match = true;
    for (int i = offset; bits > 0 && match; ++i, bits -= 8) {
      const uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
      match = (bytes[i] & mask) == (n.bytes[i] & mask);
    }
    if (match) return true;
  }
  return false;
}

std::string TrustedProxies::ClientAddress(const std::string& peer,
                                          std::string_view forwarded_for) const {
  if (forwarded_for.empty() || !Contains(peer)) return peer;
  std::string_view rest = forwarded_for;
  std::string_view leftmost;
  while (!rest.empty()) {  // right to left
    const size_t comma = rest.rfind(',');
    std::string_view entry = Trim(comma == std::string_view::npos ? rest : rest.substr(comma + 1));
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(0, comma);
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    if (!ParseAddress(entry, &v6, &bytes)) return peer;  // unreadable: trust nothing in it
    if (!Contains(entry)) return std::string(entry);
    leftmost = entry;
  }
  return leftmost.empty() ? peer : std::string(leftmost);
}

}  // namespace mpim::core
