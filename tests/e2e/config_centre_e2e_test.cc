// The configuration centre end to end (issue 20): two `mpim serve` nodes
// with discovery.engine = etcd (a real etcd started here) and the operator's
// `mpim config set|unset|show`. A run-time setting reaches every node
// through etcd's watch and takes effect there; a key that cannot change at
// run time, or a bad value, is refused by the command; a bad value written
// to etcd behind its back is refused by the nodes, which keep their value;
// unset gives every node its own value back; `config show` says where each
// value came from.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>

#include "support/api_client.h"
#include "support/etcd_server.h"
#include "support/server_process.h"

namespace mpim::testing {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kApplyWithin{5000};  // generous for a loaded box; the figure is printed

class ConfigCentreE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(etcd_.Start()) << etcd_.error();
    for (int i = 0; i < 2; ++i) {
      ServerProcess::Options options;
      options.extra_args = Flags();
      nodes_.push_back(std::make_unique<ServerProcess>(options));
      ASSERT_TRUE(nodes_.back()->Start()) << nodes_.back()->error();
    }
  }

  std::vector<std::string> Flags() const {
    return {"--set", "discovery.engine=etcd",
            "--set", "discovery.etcd_endpoints=" + etcd_.Endpoint(),
            "--set", "discovery.etcd_prefix=/cc/",
            "--set", "discovery.lease_ttl_s=2",
            "--set", "log.format=json"};
  }

  // `mpim config ARGS` against the cluster's etcd: its output, and its exit
  // code in `code`.
  std::string Config(const std::string& args, int* code) {
    std::string flags;
    for (const std::string& f : Flags()) flags += " '" + f + "'";
    return RunCommand(MpimBinary() + " config " + args + flags + " 2>&1", code);
  }

  // True when a burst of requests to node i meets a 429 (the per-address
  // request limit is in force).
  bool Limited(int i) {
    ApiClient api(nodes_[static_cast<size_t>(i)]->port());
    for (int k = 0; k < 10; ++k) {
      if (api.Call("GET", "/healthz").status == 429) return true;
    }
    return false;
  }

  // Polls until `pred` holds for every node; the time it took, or nullopt.
  std::optional<milliseconds> OnEveryNode(const std::function<bool(int)>& pred) {
    const auto t0 = Clock::now();
    for (;;) {
      bool all = true;
      for (int i = 0; i < 2; ++i) all = all && pred(i);
      if (all) return std::chrono::duration_cast<milliseconds>(Clock::now() - t0);
      if (Clock::now() - t0 > kApplyWithin) return std::nullopt;
      std::this_thread::sleep_for(milliseconds(20));  // poll interval, not a sync
    }
  }

  EtcdServer etcd_;
  std::vector<std::unique_ptr<ServerProcess>> nodes_;
};

TEST_F(ConfigCentreE2eTest, ARunTimeSettingReachesEveryNodeAndUnsetRestoresTheirOwn) {
  ASSERT_FALSE(Limited(0));
  ASSERT_FALSE(Limited(1));
  int code = -1;
  // A burst of 2 alone changes nothing at 500/s; with 1/s, the tenth
  // request of a burst is refused.
  std::string out = Config("set limits.requests_burst_address 2", &code);
  ASSERT_EQ(code, 0) << out;
  const auto t_set = Clock::now();
  out = Config("set limits.requests_per_sec_address 1", &code);
  ASSERT_EQ(code, 0) << out;
  const auto t_command = Clock::now() - t_set;
  auto applied = OnEveryNode([&](int i) { return Limited(i); });
  ASSERT_TRUE(applied.has_value()) << "the nodes never limited requests";
  std::printf(
      "a run-time setting was in force on both nodes %lld ms after `mpim config set` returned "
      "(the command took %lld ms)\n",
      static_cast<long long>(applied->count()),
      static_cast<long long>(std::chrono::duration_cast<milliseconds>(t_command).count()));

  out = Config("show", &code);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("requests_per_sec_address = 1  # etcd"), std::string::npos) << out;
  EXPECT_NE(out.find("engine = \"etcd\"  # command line"), std::string::npos) << out;

  out = Config("unset limits.requests_per_sec_address", &code);
  ASSERT_EQ(code, 0) << out;
  out = Config("unset limits.requests_burst_address", &code);
  ASSERT_EQ(code, 0) << out;
  // Back to the node's own value (500/s): a burst of 10 passes again (each
  // node's bucket refills within the poll).
  auto restored = OnEveryNode([&](int i) { return !Limited(i); });
  EXPECT_TRUE(restored.has_value()) << "unset did not restore the nodes' own limit";
  for (const auto& node : nodes_) {
    EXPECT_NE(node->Logs().find("\"msg\":\"setting applied\""), std::string::npos);
  }
}

TEST_F(ConfigCentreE2eTest, WhatCannotChangeAtRunTimeOrDoesNotValidateIsRefused) {
  int code = -1;
  std::string out = Config("set store.engine mysql", &code);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("cannot change while a node runs"), std::string::npos) << out;
  out = Config("set limits.send_per_sec lots", &code);
  EXPECT_EQ(code, 2) << out;
  out = Config("set limits.send_per_sec 0", &code);  // below the key's range
  EXPECT_EQ(code, 2) << out;
  out = Config("set rpc.key_balancer round_robin", &code);  // not a hashing balancer
  EXPECT_EQ(code, 2) << out;
  out = Config("set no.such 1", &code);
  EXPECT_EQ(code, 2) << out;

  // Written to etcd behind the command's back: the nodes refuse it, log
  // it, keep their value, and still apply the valid settings next to it.
  out = RunCommand("ETCDCTL_API=3 etcdctl --endpoints=" + etcd_.Endpoint() +
                       " put -- /cc/config/limits.requests_per_sec_address -5 2>&1",
                   &code);
  ASSERT_EQ(code, 0) << out;
  out = Config("set limits.requests_burst_address 2000", &code);
  ASSERT_EQ(code, 0) << out;
  ASSERT_TRUE(OnEveryNode([&](int i) {
    return nodes_[static_cast<size_t>(i)]->Logs().find("\"msg\":\"setting refused") !=
           std::string::npos;
  }));
  EXPECT_FALSE(Limited(0));
  EXPECT_FALSE(Limited(1));
  out = Config("show", &code);
  EXPECT_NE(out.find("requests_per_sec_address = 500"), std::string::npos) << out;
  EXPECT_NE(out.find("requests_burst_address = 2000  # etcd"), std::string::npos) << out;
}

}  // namespace
}  // namespace mpim::testing
