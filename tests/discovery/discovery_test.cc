// Discovery engines: static, and etcd against a real etcd (Debian's
// etcd-server, started by the test): registration, node ids unique across
// nodes, joins seen through the watch, a dead node gone within its lease
// TTL, a clean leave at once, and an etcd restart that changes nothing for
// running nodes.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <set>
#include <thread>

#include "discovery/dns_discovery.h"
#include "discovery/etcd_client.h"
#include "discovery/etcd_discovery.h"
#include "discovery/registry.h"
#include "discovery/static_discovery.h"
#include "support/dns_server.h"
#include "support/etcd_server.h"

namespace mpim::discovery {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Polls `pred` until it holds or `deadline` passed; how long it took.
std::optional<milliseconds> WaitFor(const std::function<bool()>& pred, milliseconds deadline) {
  const auto start = Clock::now();
  while (Clock::now() - start < deadline) {
    if (pred()) return std::chrono::duration_cast<milliseconds>(Clock::now() - start);
    std::this_thread::sleep_for(milliseconds(20));  // poll interval, not a sync
  }
  return std::nullopt;
}

std::set<std::string> Names(const std::vector<Node>& nodes) {
  std::set<std::string> out;
  for (const Node& n : nodes) out.insert(n.name);
  return out;
}

Node MakeNode(const std::string& role, const std::string& address, int64_t wish = -1) {
  return Node{role + "@" + address, role, address, wish, 1};
}

TEST(StaticDiscoveryTest, ListsTheConfiguredNodesAndThisOne) {
  StaticDiscovery d({"logic=10.0.0.2:7001", "logic=10.0.0.3:7001", "task=10.0.0.4:7002"});
  std::vector<Node> seen;
  int calls = 0;
  d.Watch([&](const std::vector<Node>& nodes) {
    seen = nodes;
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(seen.size(), 3u);
  EXPECT_EQ(WithRole(seen, "logic").size(), 2u);
  auto id = d.Register(MakeNode("gateway", "10.0.0.1:7000", 7));
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, 7);
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(Names(d.Nodes()), (std::set<std::string>{"gateway@10.0.0.1:7000", "logic@10.0.0.2:7001",
                                                     "logic@10.0.0.3:7001", "task@10.0.0.4:7002"}));
  // A list that names this node too holds it once.
  StaticDiscovery listed({"logic=10.0.0.2:7001"});
  ASSERT_TRUE(listed.Register(MakeNode("logic", "10.0.0.2:7001", 1)).ok());
  EXPECT_EQ(listed.Nodes().size(), 1u);
}

TEST(DiscoveryRegistryTest, OpensByNameAndRefusesOthers) {
  core::DiscoveryConfig config;
  EXPECT_TRUE(OpenDiscovery(config).ok());
  config.engine = "etcd";
  config.etcd_endpoints = {"127.0.0.1:1"};
  EXPECT_TRUE(OpenDiscovery(config).ok());  // opening does not connect
  config.engine = "zookeeper";
  EXPECT_EQ(OpenDiscovery(config).status().code(), absl::StatusCode::kInvalidArgument);
}

class EtcdTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    etcd_ = new testing::EtcdServer();
    ASSERT_TRUE(etcd_->Start()) << etcd_->error();
  }
  static void TearDownTestSuite() {
    delete etcd_;
    etcd_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(etcd_, nullptr);
    if (!etcd_->running()) {
      ASSERT_TRUE(etcd_->Start()) << etcd_->error();
    }
    // Each test in its own key space.
    prefix_ = "/t" + std::to_string(++counter_) + "/";
  }

  EtcdOptions Options() const { return EtcdOptions{{etcd_->Endpoint()}, 2000}; }
  std::unique_ptr<EtcdDiscovery> NewDiscovery(int64_t ttl_s = 2) {
    return std::make_unique<EtcdDiscovery>(EtcdDiscoveryOptions{Options(), prefix_, ttl_s});
  }

  static testing::EtcdServer* etcd_;
  static int counter_;
  std::string prefix_;
};

testing::EtcdServer* EtcdTest::etcd_ = nullptr;
int EtcdTest::counter_ = 0;

TEST_F(EtcdTest, ClientReadsWritesAndHoldsKeysUnderLeases) {
  EtcdClient etcd(Options());
  ASSERT_TRUE(etcd.Put(prefix_ + "a", "1").ok());
  ASSERT_TRUE(etcd.Put(prefix_ + "b", "2").ok());
  ASSERT_TRUE(etcd.Put(prefix_.substr(0, prefix_.size() - 1) + "x", "outside").ok());
  auto range = etcd.GetPrefix(prefix_);
  ASSERT_TRUE(range.ok()) << range.status();
  ASSERT_EQ(range->kvs.size(), 2u);
  EXPECT_EQ(range->kvs[0].value, "1");
  EXPECT_GT(range->revision, 0);

  auto got = etcd.Get(prefix_ + "a");
  ASSERT_TRUE(got.ok() && got->has_value());
  EXPECT_EQ((*got)->value, "1");
  EXPECT_FALSE(etcd.Get(prefix_ + "none")->has_value());

  std::string holder;
  EXPECT_FALSE(*etcd.PutIfAbsent(prefix_ + "a", "other", 0, &holder));
  EXPECT_EQ(holder, "1");
  EXPECT_TRUE(*etcd.PutIfAbsent(prefix_ + "c", "3", 0));
  ASSERT_TRUE(etcd.Delete(prefix_ + "c").ok());
  EXPECT_FALSE(etcd.Get(prefix_ + "c")->has_value());

  auto lease = etcd.GrantLease(5);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_TRUE(etcd.Put(prefix_ + "leased", "x", *lease).ok());
  auto ttl = etcd.KeepAlive(*lease);
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_GT(*ttl, 0);
  ASSERT_TRUE(etcd.RevokeLease(*lease).ok());
  EXPECT_FALSE(etcd.Get(prefix_ + "leased")->has_value()) << "revoking drops the lease's keys";
  EXPECT_EQ(etcd.KeepAlive(*lease).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(EtcdTest, AWatchSeesPutsAndDeletesFromItsRevision) {
  EtcdClient etcd(Options());
  ASSERT_TRUE(etcd.Put(prefix_ + "before", "0").ok());
  auto range = etcd.GetPrefix(prefix_);
  ASSERT_TRUE(range.ok());
  auto watch = etcd.WatchPrefix(prefix_, range->revision + 1);
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(etcd.Put(prefix_ + "k", "v").ok());
  ASSERT_TRUE(etcd.Delete(prefix_ + "k").ok());
  std::vector<EtcdEvent> events;
  while (events.size() < 2) {
    auto next = (*watch)->Next();
    ASSERT_TRUE(next.ok()) << next.status();
    events.insert(events.end(), next->begin(), next->end());
  }
  EXPECT_FALSE(events[0].deleted);
  EXPECT_EQ(events[0].kv.key, prefix_ + "k");
  EXPECT_EQ(events[0].kv.value, "v");
  EXPECT_TRUE(events[1].deleted);
  // Cancel ends a Next() blocked on another thread.
  std::thread canceller([&] {
    std::this_thread::sleep_for(milliseconds(100));
    (*watch)->Cancel();
  });
  auto ended = (*watch)->Next();
  canceller.join();
  EXPECT_EQ(ended.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(EtcdTest, NodesSeeEachOtherWithDistinctNodeIds) {
  auto a = NewDiscovery();
  auto b = NewDiscovery();
  // Both wish for id 5: one gets it, the other the next free one.
  auto id_a = a->Register(MakeNode("logic", "127.0.0.1:7001", 5));
  ASSERT_TRUE(id_a.ok()) << id_a.status();
  std::atomic<int> b_calls{0};
  a->Watch([&](const std::vector<Node>&) { ++b_calls; });
  auto id_b = b->Register(MakeNode("gateway", "127.0.0.1:7000", 5));
  ASSERT_TRUE(id_b.ok()) << id_b.status();
  EXPECT_EQ(*id_a, 5);
  EXPECT_NE(*id_b, *id_a);
  // Each lists both, within a second of the join.
  auto seen =
      WaitFor([&] { return a->Nodes().size() == 2 && b->Nodes().size() == 2; }, milliseconds(1000));
  ASSERT_TRUE(seen) << "a sees " << a->Nodes().size() << ", b sees " << b->Nodes().size();
  EXPECT_GE(b_calls.load(), 2) << "a's watcher was told of the join";
  const std::vector<Node> nodes = a->Nodes();
  ASSERT_EQ(WithRole(nodes, "gateway").size(), 1u);
  EXPECT_EQ(WithRole(nodes, "gateway")[0].node_id, *id_b);
  EXPECT_EQ(WithRole(nodes, "gateway")[0].address, "127.0.0.1:7000");
  b->Stop();
  a->Stop();
}

TEST_F(EtcdTest, ALeavingNodeGoesAtOnceADeadOneWithinItsLease) {
  auto a = NewDiscovery(/*ttl_s=*/2);
  auto b = NewDiscovery(/*ttl_s=*/2);
  auto c = NewDiscovery(/*ttl_s=*/2);
  ASSERT_TRUE(a->Register(MakeNode("logic", "127.0.0.1:7001")).ok());
  ASSERT_TRUE(b->Register(MakeNode("logic", "127.0.0.1:7002")).ok());
  ASSERT_TRUE(c->Register(MakeNode("logic", "127.0.0.1:7003")).ok());
  ASSERT_TRUE(WaitFor([&] { return a->Nodes().size() == 3; }, milliseconds(1000)));

  b->Stop();  // a clean leave: the lease is revoked
  auto left = WaitFor([&] { return a->Nodes().size() == 2; }, milliseconds(1000));
  ASSERT_TRUE(left) << "a clean leave is seen within a second";

  c->Abandon();  // as kill -9: nothing revoked, keep-alives stop
  auto gone = WaitFor([&] { return a->Nodes().size() == 1; }, milliseconds(6000));
  ASSERT_TRUE(gone) << "a dead node is gone within its lease TTL (2 s) and etcd's check";
  EXPECT_GE(gone->count(), 1000) << "not before its lease could expire";
  std::printf("dead node gone after %lld ms (lease TTL 2 s); clean leave after %lld ms\n",
              static_cast<long long>(gone->count()), static_cast<long long>(left->count()));
  a->Stop();
}

TEST_F(EtcdTest, AnEtcdRestartChangesNothingForRunningNodes) {
  auto a = NewDiscovery(/*ttl_s=*/5);
  auto b = NewDiscovery(/*ttl_s=*/5);
  ASSERT_TRUE(a->Register(MakeNode("logic", "127.0.0.1:7001")).ok());
  ASSERT_TRUE(b->Register(MakeNode("gateway", "127.0.0.1:7000")).ok());
  ASSERT_TRUE(WaitFor([&] { return a->Nodes().size() == 2; }, milliseconds(1000)));

  etcd_->Kill();
  // Meanwhile each keeps its last list.
  std::this_thread::sleep_for(milliseconds(500));
  EXPECT_EQ(a->Nodes().size(), 2u);
  ASSERT_TRUE(etcd_->Restart()) << etcd_->error();

  // After it: both still registered, and the watch is back: a node that
  // joins now is seen.
  auto c = NewDiscovery(/*ttl_s=*/5);
  ASSERT_TRUE(c->Register(MakeNode("task", "127.0.0.1:7002")).ok());
  auto joined = WaitFor([&] { return a->Nodes().size() == 3; }, milliseconds(5000));
  ASSERT_TRUE(joined) << "a sees " << a->Nodes().size() << " nodes after the restart";
  // Leases outlive the restart (keep-alives resume): nobody drops out
  // once the old TTL has passed.
  std::this_thread::sleep_for(milliseconds(6000));
  EXPECT_EQ(a->Nodes().size(), 3u);
  EXPECT_EQ(c->Nodes().size(), 3u);
  c->Stop();
  b->Stop();
  a->Stop();
}

TEST_F(EtcdTest, RegisteringWithoutEtcdFailsUnavailableInTime) {
  EtcdDiscovery d(EtcdDiscoveryOptions{EtcdOptions{{"127.0.0.1:1"}, 300}, prefix_, 2});
  const auto start = Clock::now();
  auto id = d.Register(MakeNode("logic", "127.0.0.1:7001"));
  EXPECT_EQ(id.status().code(), absl::StatusCode::kUnavailable) << id.status();
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(5));
}

// Engine dns against a real DNS server (dnsmasq) holding SRV records.
class DnsTest : public ::testing::Test {
 protected:
  using Srv = testing::DnsServer::Srv;
  using Host = testing::DnsServer::Host;
  static constexpr char kLogic[] = "_grpc._tcp.logic.test";

  std::unique_ptr<DnsDiscovery> Make() {
    return std::make_unique<DnsDiscovery>(
        DnsDiscoveryOptions{.srv = {std::string("logic=") + kLogic, "task=_grpc._tcp.task.test"},
                            .servers = {dns_.Endpoint()},
                            .refresh_ms = 100,
                            .timeout_ms = 1000});
  }

  // The nodes of `role`, as "name address weight".
  static std::set<std::string> Of(const std::vector<Node>& nodes, const std::string& role) {
    std::set<std::string> out;
    for (const Node& n : nodes) {
      if (n.role == role) out.insert(n.name + " " + n.address + " " + std::to_string(n.weight));
    }
    return out;
  }

  testing::DnsServer dns_;
};

TEST_F(DnsTest, TheTargetsOfEachRolesSrvRecordAreItsNodesAndChangesAreFollowed) {
  ASSERT_TRUE(dns_.Start({{kLogic, "l1.test", 7001, 1}, {kLogic, "l2.test", 7002, 3}},
                         {{"l1.test", "127.0.0.1"}, {"l2.test", "127.0.0.2"}}))
      << dns_.error();
  auto d = Make();
  Node self{.name = "gateway@127.0.0.1:8080",
            .role = "gateway",
            .address = "127.0.0.1:8080",
            .node_id = 5};
  auto id = d->Register(self);
  ASSERT_TRUE(id.ok()) << id.status();
  EXPECT_EQ(*id, 5);
  // Known when Register returns: a node starts knowing its peers.
  const std::vector<Node> nodes = d->Nodes();
  EXPECT_EQ(Of(nodes, "logic"), (std::set<std::string>{"logic@l1.test:7001 127.0.0.1:7001 1",
                                                       "logic@l2.test:7002 127.0.0.2:7002 3"}));
  EXPECT_TRUE(Of(nodes, "task").empty()) << "a name without records has no nodes";
  EXPECT_EQ(Of(nodes, "gateway"),
            (std::set<std::string>{"gateway@127.0.0.1:8080 127.0.0.1:8080 1"}));

  std::atomic<int> changes{0};
  int watch = d->Watch([&](const std::vector<Node>&) { ++changes; });
  ASSERT_TRUE(dns_.Start({{kLogic, "l2.test", 7002, 3}, {kLogic, "l3.test", 7003, 0}},
                         {{"l2.test", "127.0.0.2"}, {"l3.test", "127.0.0.3"}}))
      << dns_.error();
  const std::set<std::string> after{"logic@l2.test:7002 127.0.0.2:7002 3",
                                    "logic@l3.test:7003 127.0.0.3:7003 1"};
  EXPECT_TRUE(WaitFor([&] { return Of(d->Nodes(), "logic") == after; }, milliseconds(5000)))
      << "the new records were not read";
  EXPECT_GE(changes.load(), 2);  // once at Watch, once for the change
  d->Unwatch(watch);

  // The DNS server gone: lookups fail, the last list stays.
  dns_.Kill();
  std::this_thread::sleep_for(milliseconds(1500));  // pacing: several refreshes fail
  d->Refresh();
  EXPECT_EQ(Of(d->Nodes(), "logic"), after);
  d->Stop();
}

TEST(DnsDiscoveryRegistryTest, EngineDnsOpensByName) {
  core::DiscoveryConfig config;
  config.engine = "dns";
  config.dns_srv = {"logic=_grpc._tcp.logic.test"};
  auto d = OpenDiscovery(config);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_NE(dynamic_cast<DnsDiscovery*>(d->get()), nullptr);
}

}  // namespace
}  // namespace mpim::discovery
