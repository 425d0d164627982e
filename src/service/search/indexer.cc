#include "service/search/indexer.h"

#include <pthread.h>

#include <boost/json/parse.hpp>

#include "core/metrics.h"
#include "store/blocking.h"

namespace mpim::service {

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

void Indexer::Add(const store::Message& m) {
  if (m.type != "text") return;
  boost::system::error_code ec;
  auto body = boost::json::parse(m.body, ec);
  if (ec || !body.is_object()) return;
  const auto* text = body.get_object().if_contains("text");
  if (!text || !text->is_string() || text->get_string().empty()) return;
  static core::Counter& dropped =
      core::DefaultRegistry()
          .Counter("mpim_index_dropped_total", "Messages not indexed: the queue was full.")
          .With({});
  std::lock_guard lock(mu_);
  if (pending_.size() >= kMaxPending) {
    dropped.Inc();
    return;
  }
  pending_.push_back(store::SearchDocument{m.msg_id, std::string(text->get_string())});
}

void Indexer::Run() {
  std::deque<store::SearchDocument> batch;
  for (;;) {
    bool running;
    {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(kFlushMs), [this] { return !running_.load(); });
      running = running_.load();
      batch.swap(pending_);
    }
    Flush(batch);
    if (!running) return;
  }
}

void Indexer::Flush(std::deque<store::SearchDocument>& docs) {
  while (!docs.empty()) {
    size_t n = std::min(docs.size(), kBatch);
    std::vector<store::SearchDocument> chunk(std::make_move_iterator(docs.begin()),
                                             std::make_move_iterator(docs.begin() + n));
    docs.erase(docs.begin(), docs.begin() + n);
    (void)store::Await<int64_t>(
        [&](auto cb) { store_.search().Index(chunk, std::move(cb)); });  // best effort
  }
}

}  // namespace mpim::service
