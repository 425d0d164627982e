// The load balancers (src/rpc/lb): the cost of one pick and the balance of
// every balancer at 10, 100 and 1,000 endpoints, and for the hashing ones
// the share of keys that move when one endpoint leaves.
//
//   build/bin/lb_bench
//
// Counters:
//   max_over_mean  the busiest endpoint's load over the mean. Exact for
//                  ring_hash and maglev (their share of the hash space);
//                  from 1,000 picks per endpoint for the others.
//   moved          (BM_Moved) the share of 200,000 keys whose endpoint
//                  changes when one of N leaves; one_over_n beside it.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "rpc/lb/hash.h"
#include "rpc/lb/maglev.h"
#include "rpc/lb/registry.h"
#include "rpc/lb/ring_hash.h"

namespace mpim::rpc::lb {
namespace {

std::vector<Endpoint> Nodes(int64_t n) {
  std::vector<Endpoint> out;
  for (int64_t i = 0; i < n; ++i) out.push_back({"logic-" + std::to_string(i), 1});
  return out;
}

// Loads that change as picks land, so least_loaded and bounded_load work as
// on a live client: each pick adds a call, and calls finish in turn.
class MovingLoad final : public LoadView {
 public:
  explicit MovingLoad(size_t n) : in_flight_(n, 0) {}
  [[nodiscard]] int64_t InFlight(size_t index) const override { return in_flight_[index]; }
  [[nodiscard]] int64_t TotalInFlight(size_t /*n*/) const override { return total_; }
  void Add(int index) {
    ++in_flight_[index];
    ++total_;
    if (++calls_ % 8 == 0) {  // about 8 calls in flight per endpoint
      for (auto& n : in_flight_) {
        if (n > 0) {
          --n;
          --total_;
        }
      }
    }
  }

 private:
  std::vector<int64_t> in_flight_;
  int64_t total_ = 0;
  int64_t calls_ = 0;
};

double MaxOverMean(const std::vector<double>& loads) {
  double sum = 0;
  for (double l : loads) sum += l;
  return *std::max_element(loads.begin(), loads.end()) / (sum / static_cast<double>(loads.size()));
}

void BM_Pick(benchmark::State& state, std::string_view name) {
  std::vector<Endpoint> endpoints = Nodes(state.range(0));
  auto balancer = std::move(*CreateBalancer(name, endpoints));
  constexpr size_t kKeys = 4096;
  std::vector<uint64_t> keys(kKeys);
  for (size_t i = 0; i < kKeys; ++i) keys[i] = KeyHash("g:" + std::to_string(i));
  MovingLoad idle(endpoints.size());
  PickContext context{.has_key = true, .key_hash = 0, .load = &idle};
  size_t i = 0;
  for (auto _ : state) {
    context.key_hash = keys[i++ & (kKeys - 1)];
    benchmark::DoNotOptimize(balancer->Pick(context));
  }
  // Balance, outside the timed loop.
  std::vector<double> loads(endpoints.size(), 0.0);
  if (const auto* ring = dynamic_cast<const RingHash*>(balancer.get());
      ring != nullptr && name == "ring_hash") {
    loads = ring->Shares();
  } else if (const auto* maglev = dynamic_cast<const Maglev*>(balancer.get())) {
    loads = maglev->Shares();
  } else {
    MovingLoad load(endpoints.size());
    context.load = &load;
    for (int64_t k = 0; k < 1000 * state.range(0); ++k) {
      context.key_hash = KeyHash("c:" + std::to_string(k));
      int at = balancer->Pick(context);
      load.Add(at);
      loads[at] += 1;
    }
  }
  state.counters["max_over_mean"] = MaxOverMean(loads);
}

void BM_Moved(benchmark::State& state, std::string_view name) {
  std::vector<Endpoint> all = Nodes(state.range(0));
  std::vector<Endpoint> rest(all.begin() + 1, all.end());
  double moved = 0;
  for (auto _ : state) {
    auto before = std::move(*CreateBalancer(name, all));
    auto after = std::move(*CreateBalancer(name, rest));
    constexpr int kKeys = 200000;
    int changed = 0;
    for (int k = 0; k < kKeys; ++k) {
      PickContext key{.has_key = true, .key_hash = KeyHash("conv:" + std::to_string(k))};
      if (all[before->Pick(key)].name != rest[after->Pick(key)].name) ++changed;
    }
    moved = static_cast<double>(changed) / kKeys;
  }
  state.counters["moved"] = moved;
  state.counters["one_over_n"] = 1.0 / static_cast<double>(state.range(0));
}

void RegisterAll() {
  for (std::string_view name : BalancerNames()) {
    benchmark::RegisterBenchmark(("BM_Pick/" + std::string(name)).c_str(), BM_Pick, name)
        ->Arg(10)
        ->Arg(100)
        ->Arg(1000);
  }
  for (std::string_view name : {"ring_hash", "maglev"}) {
    benchmark::RegisterBenchmark(("BM_Moved/" + std::string(name)).c_str(), BM_Moved, name)
        ->Arg(10)
        ->Arg(100)
        ->Arg(1000)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace
}  // namespace mpim::rpc::lb

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  mpim::rpc::lb::RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
