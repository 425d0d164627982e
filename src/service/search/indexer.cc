#include "service/search/indexer.h"

#include <pthread.h>

#include <boost/json/parse.hpp>

#include "core/logging.h"
#include "core/metrics.h"
#include "core/snowflake.h"
#include "store/blocking.h"

namespace mpim::service {
namespace {

const core::Logger& Log() {
  static const core::Logger log("search");
  return log;
}

core::Counter& Dropped() {
  static core::Counter& dropped =
      core::DefaultRegistry()
          .Counter("mpim_index_dropped_total",
                   "Messages not indexed: the queue was full (the next start's catch-up indexes "
                   "them).")
          .With({});
  return dropped;
}

}  // namespace

void Indexer::Start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "indexer");
    Run();
  });
}

void Indexer::Stop() {
  if (!running_.exchange(false)) return;
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::optional<store::SearchDocument> Indexer::DocumentOf(const store::Message& m) {
  if (m.type != "text") return std::nullopt;
  boost::system::error_code ec;
  auto body = boost::json::parse(m.body, ec);
  if (ec || !body.is_object()) return std::nullopt;
  const auto* text = body.get_object().if_contains("text");
  if (!text || !text->is_string() || text->get_string().empty()) return std::nullopt;
  return store::SearchDocument{m.msg_id, std::string(text->get_string())};
}

void Indexer::Add(const store::Message& m) {
  std::optional<store::SearchDocument> doc = DocumentOf(m);
  if (!doc) return;
  std::lock_guard lock(mu_);
  if (pending_.size() >= kMaxPending) {
    Dropped().Inc();
    return;
  }
  pending_.push_back(std::move(*doc));
}

bool Indexer::Sleep(int64_t ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return !running_.load(); });
  return running_.load();
}

void Indexer::Run() {
  CatchUp();
  std::deque<store::SearchDocument> batch;
  for (;;) {
    const bool running = Sleep(kFlushMs);
    {
      std::lock_guard lock(mu_);
      batch.swap(pending_);
    }
    const bool flushed = Flush(batch);
    if (!running) return;
    if (!flushed) Sleep(kRetryMs);  // the store is down: no busy retries
  }
}

void Indexer::CatchUp() {
  static core::Counter& caught_up =
      core::DefaultRegistry()
          .Counter("mpim_index_caught_up_total",
                   "Messages indexed on start because the index lacked them (lost in a crash).")
          .With({});
  int64_t after = 0;
  for (;;) {
    auto last = store::Await<int64_t>([&](auto cb) { store_.search().LastIndexed(std::move(cb)); });
    if (last.ok()) {
      const core::SnowflakeParts newest = core::DecodeSnowflake(*last);
      const int64_t from_ms = newest.unix_ms - kCatchUpWindowMs;
      if (*last > 0 && from_ms > core::kSnowflakeEpochMs) {
        after = core::EncodeSnowflake(core::SnowflakeParts{from_ms, 0, 0});
      }
      break;
    }
    Log().Warn("search catch-up waits for the store",
               {{"error", std::string(last.status().message())}});
    if (!Sleep(kRetryMs)) return;
  }
  int64_t indexed = 0;
  while (running_.load()) {
    auto page = store::Await<std::vector<store::Message>>([&](auto cb) {
      store_.search().Unindexed(after, static_cast<int>(kBatch), std::move(cb));
    });
    if (!page.ok()) {
      if (!Sleep(kRetryMs)) return;
      continue;
    }
    if (page->empty()) break;
    after = page->back().msg_id;
    std::deque<store::SearchDocument> docs;
    for (const store::Message& m : *page) {
      if (auto doc = DocumentOf(m)) docs.push_back(std::move(*doc));
    }
    indexed += static_cast<int64_t>(docs.size());
    caught_up.Add(static_cast<double>(docs.size()));
    if (!Flush(docs)) Sleep(kRetryMs);  // what was refused is queued for the main loop
    if (page->size() < kBatch) break;
  }
  if (indexed > 0) Log().Info("search index caught up", {{"messages", std::to_string(indexed)}});
}

bool Indexer::Flush(std::deque<store::SearchDocument>& docs) {
  while (!docs.empty()) {
    size_t n = std::min(docs.size(), kBatch);
    // Copied, not moved: a refused chunk goes back to the queue whole.
    const std::vector<store::SearchDocument> chunk(docs.begin(), docs.begin() + n);
    auto indexed =
        store::Await<int64_t>([&](auto cb) { store_.search().Index(chunk, std::move(cb)); });
    if (indexed.ok()) {
      docs.erase(docs.begin(), docs.begin() + n);
      continue;
    }
    if (indexed.status().code() != absl::StatusCode::kUnavailable) {
      // Not the store being away: retrying would fail the same way.
      Log().Error(
          "index write failed; documents dropped",
          {{"error", std::string(indexed.status().message())}, {"documents", std::to_string(n)}});
      docs.erase(docs.begin(), docs.begin() + n);
      continue;
    }
    // Back to the front of the queue, ahead of what came meanwhile, as far
    // as the bound allows.
    std::lock_guard lock(mu_);
    while (!docs.empty() && pending_.size() < kMaxPending) {
      pending_.push_front(std::move(docs.back()));
      docs.pop_back();
    }
    Dropped().Add(static_cast<double>(docs.size()));
    docs.clear();
    return false;
  }
  return true;
}

}  // namespace mpim::service
