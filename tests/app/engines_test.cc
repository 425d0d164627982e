// The engine names (core/engines.cc) and the registries agree: every name
// the config schema accepts opens, and no registry knows a name the schema
// does not list.
#include "core/engines.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "app/node.h"
#include "cache/registry.h"
#include "discovery/registry.h"
#include "route/registry.h"
#include "rpc/lb/registry.h"
#include "store/registry.h"

namespace mpim {
namespace {

std::vector<std::string> Names(std::string_view part) {
  std::vector<std::string> out;
  for (std::string_view n : core::EngineNames(part)) out.emplace_back(n);
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(EnginesTest, EveryRegistryKnowsExactlyTheListedNames) {
  EXPECT_EQ(Names("store.engine"), Sorted(store::StoreEngines()));
  EXPECT_EQ(Names("cache.engine"), Sorted(cache::CacheEngines()));
  EXPECT_EQ(Names("route.engine"), Sorted(route::RouteEngines()));
  EXPECT_EQ(Names("bus.engine"), Sorted(app::DelivererEngines()));
  EXPECT_EQ(Names("discovery.engine"), Sorted(discovery::DiscoveryEngines()));
}

// rpc.balancer takes every balancer the RPC client knows; rpc.key_balancer
// the hashing ones (a key must land on one node).
TEST(EnginesTest, TheBalancerKeysNameTheRegistrysBalancers) {
  std::vector<std::string> all;
  std::vector<std::string> hashing;
  for (std::string_view name : rpc::lb::BalancerNames()) {
    all.emplace_back(name);
    if (rpc::lb::IsHashing(name)) hashing.emplace_back(name);
  }
  EXPECT_EQ(Names("rpc.balancer"), Sorted(all));
  EXPECT_EQ(Names("rpc.key_balancer"), Sorted(hashing));
  core::Config config;
  EXPECT_EQ(config.rpc.balancer, core::EngineNames("rpc.balancer").front());
  EXPECT_EQ(config.rpc.key_balancer, core::EngineNames("rpc.key_balancer").front());
}

TEST(EnginesTest, DefaultsAreTheFirstListed) {
  core::Config config;
  EXPECT_EQ(config.store.engine, core::EngineNames("store.engine").front());
  EXPECT_EQ(config.cache.engine, core::EngineNames("cache.engine").front());
  EXPECT_EQ(config.route.engine, core::EngineNames("route.engine").front());
  EXPECT_EQ(config.bus.engine, core::EngineNames("bus.engine").front());
  EXPECT_EQ(config.discovery.engine, core::EngineNames("discovery.engine").front());
}

TEST(EnginesTest, TheConfigSchemaRefusesUnknownEngines) {
  for (const char* key :
       {"store.engine", "cache.engine", "route.engine", "bus.engine", "discovery.engine"}) {
    core::ConfigSources sources;
    sources.overrides.emplace_back(key, "nosuch");
    auto config = core::LoadConfig(sources);
    EXPECT_FALSE(config.ok()) << key;
    if (!config.ok()) {
      EXPECT_NE(config.status().message().find(key), std::string_view::npos)
          << config.status().message();
    }
  }
}

}  // namespace
}  // namespace mpim
