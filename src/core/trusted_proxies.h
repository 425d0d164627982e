// Which peers may say who the client is (server.trusted_proxies): a
// gateway behind edges (or any reverse proxy) sees every client as the
// proxy's address; for a peer in this list it takes the client's address
// from X-Forwarded-For instead, for its per-address limits and logs.
// Immutable after Parse; thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace mpim::core {

class TrustedProxies {
 public:
  // Each entry an IPv4 or IPv6 address, or a network in CIDR notation
  // ("10.0.0.0/8", "fd00::/8"). invalid_argument naming a bad entry.
  static StatusOr<TrustedProxies> Parse(const std::vector<std::string>& entries);
  // One entry (for config validation).
  static Status Check(std::string_view entry);

  bool empty() const { return nets_.empty(); }
  bool Contains(std::string_view address) const;

  // The client's address for a request from `peer` carrying
  // `forwarded_for` (the X-Forwarded-For header, possibly empty): `peer`
  // when it is not trusted or the header is empty or unreadable; else the
  // rightmost address in the header that is not a trusted proxy (each
  // proxy appends the address it saw, so entries left of the first
  // untrusted one may be forged), or the leftmost when all are trusted.
  std::string ClientAddress(const std::string& peer, std::string_view forwarded_for) const;

 private:
  struct Net {
    bool v6 = false;
    std::array<uint8_t, 16> bytes{};
    int prefix = 0;
  };
  static bool ParseNet(std::string_view text, Net* net);
  std::vector<Net> nets_;
};

}  // namespace mpim::core
