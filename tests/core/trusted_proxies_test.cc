// core::TrustedProxies: which peers may name the client in X-Forwarded-For.
#include "core/trusted_proxies.h"

#include <gtest/gtest.h>

namespace mpim::core {
namespace {

TEST(TrustedProxiesTest, AddressesAndNetworks) {
  auto t = TrustedProxies::Parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", "::1"});
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->Contains("10.200.3.4"));
  EXPECT_FALSE(t->Contains("11.0.0.1"));
  EXPECT_TRUE(t->Contains("192.168.1.7"));
  EXPECT_FALSE(t->Contains("192.168.1.8"));
  EXPECT_TRUE(t->Contains("fd12:3456::1"));
  EXPECT_FALSE(t->Contains("fe80::1"));
  EXPECT_TRUE(t->Contains("::1"));
  EXPECT_TRUE(t->Contains("::ffff:10.1.2.3"));  // IPv4-mapped counts as IPv4
  EXPECT_FALSE(t->Contains("not an address"));
  EXPECT_FALSE(t->Contains(""));
  auto odd = TrustedProxies::Parse({"172.16.0.0/12"});
  EXPECT_TRUE(odd->Contains("172.31.255.255"));
  EXPECT_FALSE(odd->Contains("172.32.0.0"));
  EXPECT_TRUE(TrustedProxies::Parse({"0.0.0.0/0"})->Contains("8.8.8.8"));
}

TEST(TrustedProxiesTest, RefusesWhatIsNotAnAddressOrNetwork) {
  for (const char* bad : {"", "10.0.0.0/33", "::/129", "10.0.0/8", "host.example", "1.2.3.4/",
                          "1.2.3.4/x", "1.2.3.4/0008"}) {
    EXPECT_FALSE(TrustedProxies::Check(bad).ok()) << bad;
    EXPECT_FALSE(TrustedProxies::Parse({"127.0.0.1", bad}).ok()) << bad;
  }
  EXPECT_TRUE(TrustedProxies::Check("127.0.0.1/32").ok());
}

TEST(TrustedProxiesTest, TheClientIsTheRightmostUntrustedForwardedAddress) {
  auto t = *TrustedProxies::Parse({"10.0.0.0/8"});
  // An untrusted peer: its header is ignored.
  EXPECT_EQ(t.ClientAddress("203.0.113.1", "198.51.100.1"), "203.0.113.1");
  // A trusted one: the address it saw.
  EXPECT_EQ(t.ClientAddress("10.0.0.2", "198.51.100.1"), "198.51.100.1");
  // Entries left of the first untrusted one from the right may be forged.
  EXPECT_EQ(t.ClientAddress("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.9"), "198.51.100.1");
  // All trusted: the leftmost.
  EXPECT_EQ(t.ClientAddress("10.0.0.2", "10.1.1.1, 10.0.0.9"), "10.1.1.1");
  // Nothing or garbage: the peer.
  EXPECT_EQ(t.ClientAddress("10.0.0.2", ""), "10.0.0.2");
  EXPECT_EQ(t.ClientAddress("10.0.0.2", "unknown"), "10.0.0.2");
  EXPECT_EQ(TrustedProxies().ClientAddress("10.0.0.2", "1.1.1.1"), "10.0.0.2");
}

}  // namespace
}  // namespace mpim::core
