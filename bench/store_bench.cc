// Storage microbenchmarks: appends per second through each engine's group
// commit (one conversation, and spread over 1,000), by number of callers,
// appends in flight per caller and batch size; and range reads.
//
// Every append is acknowledged only after its batch committed: on SQLite
// with synchronous = normal (survives a process kill) unless the name says
// full; on MariaDB (names ending in Mysql) with durable commits
// (innodb_flush_log_at_trx_commit = 1: the redo log is flushed to disk per
// commit), on a mariadbd the bench starts in a temp dir
// (tests/support/mariadb_server.h), so both engines are measured in one run
// on one machine.
//
//   build/bin/store_bench --benchmark_filter=Append
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdio>
#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <random>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "store/blocking.h"
#include "store/conv_id.h"
#include "store/mysql/mysql_store.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"
#include "support/mariadb_server.h"

namespace mpim::store {
namespace {

constexpr int kAppendsPerIteration = 20'000;

// A fresh database on a mariadbd this process starts once (in a temp dir,
// durable commits: tests/support/mariadb_server.h).
core::StatusOr<std::unique_ptr<Store>> OpenMysql(int batch_max) {
  static int databases = 0;
  static auto* server = [] {
    auto* s = new ::mpim::testing::MariaDbServer();
    if (!s->Start()) std::fprintf(stderr, "store_bench: mariadbd: %s\n", s->error().c_str());
    return s;
  }();
  if (!server->running()) return absl::UnavailableError("no mariadbd");
  auto options =
      mysql::ParseMysqlUrl(server->CreateDatabase("bench_" + std::to_string(databases++)));
  if (!options.ok()) return options.status();
  options->batch_max = batch_max;
  return mysql::Open(*options);
}

// A store in a fresh temp dir (SQLite, removed afterwards) or a fresh
// database (MariaDB), with 1,001 users.
class BenchStore {
 public:
  BenchStore(int batch_max, const std::string& synchronous, bool mysql = false) {
    std::string pattern = (std::filesystem::temp_directory_path() / "mpim-bench-XXXXXX").string();
    dir_ = mkdtemp(pattern.data()) != nullptr ? pattern : "";
    core::StatusOr<std::unique_ptr<Store>> store = absl::UnknownError("");
    if (mysql) {
      store = OpenMysql(batch_max);
    } else {
      sqlite::SqliteOptions options;
      options.path = dir_ + "/bench.db";
      options.batch_max = batch_max;
      options.synchronous = synchronous;
      store = sqlite::Open(options);
    }
    if (!store.ok()) {
      std::fprintf(stderr, "store_bench: %s\n", std::string(store.status().message()).c_str());
      return;
    }
    store_ = std::move(*store);
    for (int i = 0; i < 1001; ++i) {
      std::string name = "user";
      name += std::to_string(i);
      users_.push_back(
          Call(store_->users(), &UserStore::Create, NewUser{name, "h", "", ""})->user_id);
    }
  }
  ~BenchStore() {
    store_.reset();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return store_ != nullptr; }
  Store& store() { return *store_; }
  // The conversation of user 0 with user 1 + (i % n).
  std::string Conv(int64_t i, int n) const {
    return PrivateConvId(users_[0], users_[1 + static_cast<size_t>(i % n)]);
  }
  int64_t sender() const { return users_[0]; }

 private:
  std::string dir_;
  std::unique_ptr<Store> store_;
  std::vector<int64_t> users_;
};

// CPU seconds used by the whole process so far (all threads).
double ProcessCpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

// `callers` threads append kAppendsPerIteration messages in all, each keeping
// up to `window` in flight, over `convs` conversations.
void RunAppends(benchmark::State& state, const std::string& synchronous, int convs,
                bool mysql = false) {
  const int callers = static_cast<int>(state.range(0));
  const int window = static_cast<int>(state.range(1));
  const int batch_max = static_cast<int>(state.range(2));
  BenchStore bench(batch_max, synchronous, mysql);
  if (!bench.ok()) {
    state.SkipWithError("cannot open the store");
    return;
  }
  std::atomic<int64_t> next_id{1};
  std::atomic<int64_t> errors{0};
  const double cpu_start = ProcessCpuSeconds();
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int c = 0; c < callers; ++c) {
      threads.emplace_back([&] {
        auto slots = std::make_shared<std::counting_semaphore<>>(window);
        for (int i = 0; i < kAppendsPerIteration / callers; ++i) {
          slots->acquire();
          AppendRequest r;
          r.msg_id = next_id.fetch_add(1);
          r.conv_id = bench.Conv(r.msg_id, convs);
          r.sender = bench.sender();
          r.recipient = 0;
          r.body = "{\"text\":\"hello, this is a benchmark message\"}";
          r.ts = r.msg_id;
          r.client_msg_id = std::to_string(r.msg_id);
          bench.store().messages().Append(r, [slots, &errors](core::StatusOr<AppendResult> res) {
            if (!res.ok()) errors.fetch_add(1);
            slots->release();
          });
        }
        for (int i = 0; i < window; ++i) slots->acquire();
      });
    }
    for (auto& t : threads) t.join();
  }
  const double cpu_used = ProcessCpuSeconds() - cpu_start;
  if (errors.load() != 0) state.SkipWithError("appends failed");
  const int64_t appends = state.iterations() * (kAppendsPerIteration / callers) * callers;
  state.SetItemsProcessed(appends);
  // Process CPU (every thread) per append: steadier than the rate when the
  // machine is shared.
  state.counters["cpu_us_per_append"] = cpu_used * 1e6 / static_cast<double>(appends);
  state.counters["callers"] = callers;
  state.counters["in_flight"] = callers * window;
  state.counters["batch_max"] = batch_max;
}

void AppendArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"callers", "window", "batch"});
  b->Args({1, 1, 512});  // one caller waiting for each append: latency bound
  b->Args({8, 1, 512});  // 8 synchronous callers
  b->Args({8, 16, 512});
  b->Args({8, 64, 512});
  b->Args({2, 512, 512});
  b->Args({8, 64, 64});
  b->Args({8, 64, 8});
  b->Args({8, 64, 1});  // no group commit: one transaction per append
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void BM_AppendOneConversation(benchmark::State& state) { RunAppends(state, "normal", 1); }
BENCHMARK(BM_AppendOneConversation)->Apply(AppendArgs);

void BM_Append1000Conversations(benchmark::State& state) { RunAppends(state, "normal", 1000); }
BENCHMARK(BM_Append1000Conversations)->Apply(AppendArgs);

// The same on MariaDB. (Its process CPU per append counts only the client
// side; mariadbd's CPU is the server's.)
void MysqlAppendArgs(benchmark::internal::Benchmark* b) {
  b->ArgNames({"callers", "window", "batch"});
  b->Args({1, 1, 512});
  b->Args({8, 1, 512});
  b->Args({8, 64, 512});
  b->Args({2, 512, 512});
  b->Args({8, 64, 1});
  b->UseRealTime()->Unit(benchmark::kMillisecond);
}

void BM_AppendOneConversationMysql(benchmark::State& state) {
  RunAppends(state, "", 1, /*mysql=*/true);
}
BENCHMARK(BM_AppendOneConversationMysql)->Apply(MysqlAppendArgs);

void BM_Append1000ConversationsMysql(benchmark::State& state) {
  RunAppends(state, "", 1000, /*mysql=*/true);
}
BENCHMARK(BM_Append1000ConversationsMysql)->Apply(MysqlAppendArgs);

void BM_AppendOneConversationSyncFull(benchmark::State& state) { RunAppends(state, "full", 1); }
BENCHMARK(BM_AppendOneConversationSyncFull)
    ->ArgNames({"callers", "window", "batch"})
    ->Args({8, 1, 512})  // 8 synchronous callers: one fsync per batch of ~8
    ->Args({8, 64, 512})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Pages of `limit` messages after a random seq in a conversation of 100,000,
// with `window` reads in flight from one caller.
void BM_ReadRange(benchmark::State& state) {
  const int limit = static_cast<int>(state.range(0));
  const int window = static_cast<int>(state.range(1));
  constexpr int kMessages = 100'000;
  constexpr int kReadsPerIteration = 2'000;
  BenchStore bench(512, "normal");
  if (!bench.ok()) {
    state.SkipWithError("cannot open the store");
    return;
  }
  {
    auto slots = std::make_shared<std::counting_semaphore<>>(256);
    for (int i = 1; i <= kMessages; ++i) {
      slots->acquire();
      AppendRequest r;
      r.msg_id = i;
      r.conv_id = bench.Conv(0, 1);
      r.sender = bench.sender();
      r.body = "{\"text\":\"hello, this is a benchmark message\"}";
      r.ts = i;
      r.client_msg_id = std::to_string(i);
      bench.store().messages().Append(r,
                                      [slots](core::StatusOr<AppendResult>) { slots->release(); });
    }
    for (int i = 0; i < 256; ++i) slots->acquire();
  }
  std::mt19937_64 rng(42);
  std::atomic<int64_t> rows{0}, errors{0};
  for (auto _ : state) {
    auto slots = std::make_shared<std::counting_semaphore<>>(window);
    for (int i = 0; i < kReadsPerIteration; ++i) {
      slots->acquire();
      int64_t after = static_cast<int64_t>(rng() % (kMessages - limit));
      bench.store().messages().Read(bench.Conv(0, 1), RangeQuery{after, std::nullopt, limit},
                                    [slots, &rows, &errors](core::StatusOr<Page<Message>> page) {
                                      if (page.ok()) {
                                        rows.fetch_add(static_cast<int64_t>(page->items.size()));
                                      } else {
                                        errors.fetch_add(1);
                                      }
                                      slots->release();
                                    });
    }
    for (int i = 0; i < window; ++i) slots->acquire();
  }
  if (errors.load() != 0) state.SkipWithError("reads failed");
  state.SetItemsProcessed(state.iterations() * kReadsPerIteration);
  state.counters["rows/s"] =
      benchmark::Counter(static_cast<double>(rows.load()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadRange)
    ->ArgNames({"limit", "window"})
    ->Args({50, 1})
    ->Args({50, 16})
    ->Args({200, 16})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace mpim::store

BENCHMARK_MAIN();
