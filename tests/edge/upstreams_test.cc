// edge::Upstreams: the gateways an edge knows, their health (real /readyz
// endpoints: HttpTestServer), and the balancer over the healthy ones.
#include "edge/upstreams.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "core/ports.h"
#include "net/http_test_server.h"
#include "net/io_pool.h"
#include "support/eventually.h"
#include "support/metrics_text.h"

namespace mpim::edge {
namespace {

using Ms = std::chrono::milliseconds;
using testing::HttpTestAnswer;
using testing::HttpTestServer;

using testing::Eventually;

// The upstream Pick chooses (its breaker's permit dropped: breakers stay
// closed in these tests).
std::shared_ptr<Upstream> PickOne(Upstreams& u, const std::optional<std::string>& key,
                                  const Upstream* avoid = nullptr) {
  return u.Pick(key, avoid).upstream;
}

// A /readyz endpoint whose answer the test flips.
struct Gateway {
  Gateway() {
    server.SetHandler([this](const testing::HttpTestRequest&) {
      HttpTestAnswer a;
      a.status = ready.load() ? 200 : 503;
      return a;
    });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server.port()); }
  HttpTestServer server;
  std::atomic<bool> ready{true};
};

class UpstreamsTest : public ::testing::Test {
 protected:
  void SetUp() override { pool_.Start(); }
  void TearDown() override {
    if (upstreams_) upstreams_->Stop();
    pool_.Stop();
  }
  Upstreams& Make(std::string balancer, int64_t health_interval_ms = 50,
                  const std::function<void(UpstreamOptions&)>& tune = nullptr) {
    UpstreamOptions options;
    options.balancer = std::move(balancer);
    options.health_interval_ms = health_interval_ms;
    options.health_timeout_ms = 500;
    options.clock = &clock_;
    if (tune) tune(options);
    auto made = Upstreams::Make(pool_.At(0), options, metrics_);
    EXPECT_TRUE(made.ok()) << made.status();
    upstreams_ = std::move(*made);
    upstreams_->Start();
    return *upstreams_;
  }

  net::IoPool pool_{1};
  core::ManualClock clock_;
  core::MetricsRegistry metrics_;
  std::unique_ptr<Upstreams> upstreams_;
};

TEST_F(UpstreamsTest, AnUnknownBalancerIsRefused) {
  net::IoPool pool(1);
  UpstreamOptions options;
  options.balancer = "nope";
  EXPECT_FALSE(Upstreams::Make(pool.At(0), options, metrics_).ok());
}

TEST_F(UpstreamsTest, NothingKnownNothingPicked) {
  Upstreams& u = Make("round_robin", 0);
  EXPECT_EQ(PickOne(u, std::nullopt), nullptr);
  EXPECT_EQ(u.size(), 0u);
}

TEST_F(UpstreamsTest, AKeyStaysOnOneGatewayAndOnlyAFewMoveWhenOneJoins) {
  Upstreams& u = Make("ring_hash", 0);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.3:80"}});
  std::map<std::string, std::string> placed;
  for (int i = 0; i < 3000; ++i) {
    const std::string key = "u" + std::to_string(i);
    auto first = PickOne(u, key);
    ASSERT_NE(first, nullptr);
    EXPECT_EQ(PickOne(u, key)->address, first->address);
    placed[key] = first->address;
  }
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}, {"10.0.0.3:80"}, {"10.0.0.4:80"}});
  int moved = 0;
  for (const auto& [key, address] : placed) {
    const std::string now = PickOne(u, key)->address;
    if (now != address) {
      ++moved;
      EXPECT_EQ(now, "10.0.0.4:80") << "a key moved between gateways that stayed";
    }
  }
  // About a quarter go to the newcomer (ring with 150 points each).
  EXPECT_GT(moved, 3000 / 4 / 2);
  EXPECT_LT(moved, 3000 / 4 * 3 / 2);
}

TEST_F(UpstreamsTest, AFailedConnectionTakesAGatewayOutUntilItsCheckPasses) {
  Gateway a, b;
  Upstreams& u = Make("round_robin");
  u.Update({{a.address()}, {b.address()}});
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 2; }));
  std::shared_ptr<Upstream> ua;
  for (int i = 0; i < 4 && !ua; ++i) {
    auto p = PickOne(u, std::nullopt);
    if (p->address == a.address()) ua = p;
  }
  ASSERT_NE(ua, nullptr);
  a.ready = false;  // so the next checks keep it out
  u.ReportFailure(ua);
  EXPECT_EQ(u.healthy(), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(PickOne(u, std::nullopt)->address, b.address());
  a.ready = true;
  EXPECT_TRUE(Eventually([&] { return u.healthy() == 2; }));
  bool a_again = false;
  for (int i = 0; i < 4; ++i) a_again = a_again || PickOne(u, std::nullopt)->address == a.address();
  EXPECT_TRUE(a_again);
}

TEST_F(UpstreamsTest, AFailedHealthCheckTakesAGatewayOutAndAllDownStillPicks) {
  Gateway a, b;
  Upstreams& u = Make("round_robin");
  u.Update({{a.address()}, {b.address()}});
  b.ready = false;
  // b out once its checks failed (a's passed): only a is picked.
  ASSERT_TRUE(Eventually([&] {
    for (int i = 0; i < 4; ++i) {
      if (PickOne(u, std::nullopt)->address != a.address()) return false;
    }
    return u.healthy() == 1;
  }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(PickOne(u, std::nullopt)->address, a.address());
  a.ready = false;
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 0; }));
  // None healthy: any of them rather than none.
  EXPECT_NE(PickOne(u, std::nullopt), nullptr);
  // A gateway that is gone (nothing listens) fails its checks too.
  const uint16_t closed = core::FreeLoopbackPort();
  u.Update({{a.address()}, {"127.0.0.1:" + std::to_string(closed)}});
  a.ready = true;
  // A new gateway starts healthy: wait until the checks have put `a` back
  // and the closed one out.
  ASSERT_TRUE(Eventually([&] {
    if (u.healthy() != 1) return false;
    for (int i = 0; i < 4; ++i) {
      if (PickOne(u, std::nullopt)->address != a.address()) return false;
    }
    return true;
  }));
  for (int i = 0; i < 10; ++i) EXPECT_EQ(PickOne(u, std::nullopt)->address, a.address());
}

// One failed check is a blip: an upstream goes out after health_fall (2)
// in a row; a passed check in between starts the count again.
TEST_F(UpstreamsTest, OneFailedCheckDoesNotTakeAGatewayOut) {
  std::atomic<int> checks{0};
  std::atomic<int> fail_from{1 << 30};  // checks from this one on answer 503
  std::atomic<int> fail_until{1 << 30};
  HttpTestServer server;
  server.SetHandler([&](const testing::HttpTestRequest&) {
    HttpTestAnswer a;
    const int n = checks.fetch_add(1);
    a.status = n >= fail_from.load() && n < fail_until.load() ? 503 : 200;
    return a;
  });
  const std::string address = "127.0.0.1:" + std::to_string(server.port());
  Upstreams& u = Make("round_robin", 30);
  u.Update({{address}});
  ASSERT_TRUE(Eventually([&] { return checks.load() >= 2; }));
  // One check fails, the next passes.
  const int from = checks.load() + 1;
  fail_until = from + 1;
  fail_from = from;
  ASSERT_TRUE(Eventually([&] { return checks.load() >= from + 4; }));
  EXPECT_EQ(u.healthy(), 1u) << "one failed check took it out";
  // Two in a row: out.
  const int again = checks.load() + 1;
  fail_until = again + 2;
  fail_from = again;
  EXPECT_TRUE(Eventually([&] { return u.healthy() == 0; }));
  EXPECT_TRUE(Eventually([&] { return u.healthy() == 1; })) << "and back on its next pass";
}

TEST_F(UpstreamsTest, AvoidSkipsTheGatewayARetryFailedOn) {
  Upstreams& u = Make("ring_hash", 0);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}});
  auto first = PickOne(u, std::string("k"));
  auto again = PickOne(u, std::string("k"), first.get());
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again->address, first->address);
}

// Breakers: min 4 calls, half failing trips it for 1 s (the test's clock).
void TightBreaker(UpstreamOptions& o) {
  o.breaker.min_calls = 4;
  o.breaker.error_rate = 0.5;
  o.breaker.open_ms = 1000;
  o.breaker.max_open_ms = 1000;
  o.breaker.half_open_calls = 1;
}

TEST_F(UpstreamsTest, AnOpenBreakerSendsRequestsToTheOthersAndAllOpenIsSaid) {
  Upstreams& u = Make("round_robin", 0, TightBreaker);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}});
  // Every exchange with .1 fails; .2 answers.
  for (int i = 0; i < 8; ++i) {
    Picked p = u.Pick(std::nullopt);
    ASSERT_TRUE(p);
    u.Record(p, p.upstream->address != "10.0.0.1:80");
  }
  for (int i = 0; i < 10; ++i) {
    Picked p = u.Pick(std::nullopt);
    ASSERT_TRUE(p);
    EXPECT_EQ(p.upstream->address, "10.0.0.2:80") << "the open breaker let a request through";
    u.Record(p, true);
  }
  EXPECT_NE(
      metrics_.Exposition().find(
          "mpim_edge_upstream_breaker_state{cluster=\"gateways\",upstream=\"10.0.0.1:80\"} 1"),
      std::string::npos)
      << metrics_.Exposition();
  // .2 fails too (half its window of 10 successes): both open, and Pick
  // says so.
  for (int i = 0; i < 30; ++i) {
    Picked p = u.Pick(std::nullopt);
    if (!p) break;
    u.Record(p, false);
  }
  Picked none = u.Pick(std::nullopt);
  EXPECT_FALSE(none);
  EXPECT_TRUE(none.circuit_open);
  // After the open period one probe goes through; its success closes it.
  clock_.AdvanceMs(1001);
  Picked probe = u.Pick(std::nullopt);
  ASSERT_TRUE(probe);
  u.Record(probe, true);
  Picked after = u.Pick(std::string("any"));
  EXPECT_TRUE(after);
}

TEST_F(UpstreamsTest, AStickyIdFindsItsUpstreamWhileItIsHealthy) {
  Upstreams& u = Make("round_robin", 0);
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}});
  const std::string id = StickyId("10.0.0.2:80");
  EXPECT_EQ(id.size(), 16u);
  EXPECT_NE(id, StickyId("10.0.0.1:80"));
  for (int i = 0; i < 5; ++i) {
    Picked p = u.PickSticky(id);
    ASSERT_TRUE(p);
    EXPECT_EQ(p.upstream->address, "10.0.0.2:80");
    u.Release(p);
  }
  EXPECT_FALSE(u.PickSticky("0123456789abcdef"));
  u.ReportFailure(u.PickSticky(id).upstream);
  EXPECT_FALSE(u.PickSticky(id)) << "an ejected upstream is not stuck to";
}

TEST_F(UpstreamsTest, WithoutActiveChecksAnEjectedUpstreamComesBackAfterEjectMs) {
  Upstreams& u = Make("round_robin", 50, [](UpstreamOptions& o) {
    o.health_path.clear();  // no checks
    o.eject_ms = 200;
  });
  u.Update({{"10.0.0.1:80"}, {"10.0.0.2:80"}});
  std::shared_ptr<Upstream> one = PickOne(u, std::nullopt);
  u.ReportFailure(one);
  EXPECT_EQ(u.healthy(), 1u);
  EXPECT_TRUE(Eventually([&] { return u.healthy() == 2; }, Ms(5000)));
}

// GeoIP zones: a located client goes to its zone's upstreams, balanced
// among them; to the next zone when its own has none healthy (or all its
// breakers refuse); to any upstream when unlocated or no zone serves it.
TEST_F(UpstreamsTest, ZonesServeTheirClientsAndPassThemOnWhenTheirsAreDown) {
  Gateway eu1, eu2, us;
  Upstreams& u = Make("round_robin", 50, [&](UpstreamOptions& o) {
    o.cluster = "gw";
    o.zones = {{.name = "eu",
                .addresses = {eu1.address(), eu2.address()},
                .continents = {"EU"},
                .latitude = 50.1,
                .longitude = 8.7},
               {.name = "us", .addresses = {us.address()}, .countries = {"US"}}};
  });
  u.Update({{eu1.address()}, {eu2.address()}, {us.address()}});
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 3; }));
  const Location berlin{.found = true, .country = "DE", .continent = "EU"};
  const Location texas{.found = true, .country = "US", .continent = "NA"};
  const Location tokyo{.found = true, .country = "JP", .continent = "AS"};
  std::map<std::string, int> seen;
  for (int i = 0; i < 20; ++i) ++seen[u.Pick(std::nullopt, nullptr, &berlin).upstream->address];
  EXPECT_EQ(seen, (std::map<std::string, int>{{eu1.address(), 10}, {eu2.address(), 10}}))
      << "balanced within the zone";
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(u.Pick(std::nullopt, nullptr, &texas).upstream->address, us.address());
  }
  // Tokyo: no zone lists it, and only eu has coordinates (tokyo has none):
  // file order, eu first.
  EXPECT_NE(u.Pick(std::nullopt, nullptr, &tokyo).upstream->address, us.address());
  // Unlocated (not in the database): any of the three.
  const Location nowhere;
  seen.clear();
  for (int i = 0; i < 30; ++i) ++seen[u.Pick(std::nullopt, nullptr, &nowhere).upstream->address];
  EXPECT_EQ(seen.size(), 3u);

  // The US zone's only upstream fails its checks: Texas goes to Europe.
  us.ready = false;
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 2; }));
  for (int i = 0; i < 5; ++i) {
    EXPECT_NE(u.Pick(std::nullopt, nullptr, &texas).upstream->address, us.address());
  }
  us.ready = true;
  ASSERT_TRUE(Eventually([&] { return u.healthy() == 3; }));
  EXPECT_EQ(u.Pick(std::nullopt, nullptr, &texas).upstream->address, us.address());

  // A retry avoiding the zone's only upstream goes elsewhere.
  auto first = u.Pick(std::nullopt, nullptr, &texas).upstream;
  EXPECT_NE(u.Pick(std::nullopt, first.get(), &texas).upstream->address, us.address());

  const std::string text = metrics_.Exposition();
  auto picks = [&](const std::string& zone) {
    return testing::SeriesValue(text,
                                R"(mpim_edge_zone_picks_total{cluster="gw",zone=")" + zone + "\"}");
  };
  EXPECT_EQ(picks("eu"), 20 + 1 + 5 + 1);
  EXPECT_EQ(picks("us"), 5 + 1 + 1);
  EXPECT_EQ(picks("any"), 30);
}

// Each zone's load-aware balancer reads its own members' load (three
// zones: the snapshot's pools are not moved once built; ASan would see it).
TEST_F(UpstreamsTest, ZonesWithALoadAwareBalancerKeepKeysInTheirZone) {
  Upstreams& u = Make("bounded_load", 0, [&](UpstreamOptions& o) {
    o.zones = {{.name = "a", .addresses = {"10.0.1.1:80", "10.0.1.2:80"}, .countries = {"AA"}},
               {.name = "b", .addresses = {"10.0.2.1:80", "10.0.2.2:80"}, .countries = {"BB"}},
               {.name = "c", .addresses = {"10.0.3.1:80"}, .countries = {"CC"}}};
  });
  u.Update({{"10.0.1.1:80"}, {"10.0.1.2:80"}, {"10.0.2.1:80"}, {"10.0.2.2:80"}, {"10.0.3.1:80"}});
  for (const auto& [country, prefix] : std::vector<std::pair<std::string, std::string>>{
           {"AA", "10.0.1."}, {"BB", "10.0.2."}, {"CC", "10.0.3."}}) {
    const Location where{.found = true, .country = country};
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
      Picked p = u.Pick("user" + std::to_string(i), nullptr, &where);
      ASSERT_TRUE(p);
      EXPECT_EQ(p.upstream->address.rfind(prefix, 0), 0u) << country;
      seen.insert(p.upstream->address);
      u.Release(p);
    }
    EXPECT_EQ(seen.size(), country == "CC" ? 1u : 2u) << "keys spread within the zone";
  }
}

}  // namespace
}  // namespace mpim::edge
