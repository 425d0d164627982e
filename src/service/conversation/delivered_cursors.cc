#include "service/conversation/delivered_cursors.h"

#include <pthread.h>

#include <algorithm>
#include <future>

#include "core/logging.h"

namespace mpim::service {

void DeliveredCursors::Start() {
  std::lock_guard lock(run_mu_);
  if (running_) return;
  running_ = true;
  flusher_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "cursor-flush");
    Run();
  });
}

void DeliveredCursors::Stop() {
  {
    std::lock_guard lock(run_mu_);
    running_ = false;
  }
  run_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  (void)Flush();
}

void DeliveredCursors::Run() {
  std::unique_lock lock(run_mu_);
  while (running_) {
    run_cv_.wait_for(lock, interval_, [this] { return !running_; });
    if (!running_) break;
    lock.unlock();
    (void)Flush();
    lock.lock();
  }
}

void DeliveredCursors::Raise(SessionCursors& into, const std::string& conv_id, int64_t seq) {
  auto [it, added] = into.try_emplace(conv_id, seq);
  if (!added) it->second = std::max(it->second, seq);
}

void DeliveredCursors::Advance(int64_t session_id, const std::string& conv_id, int64_t seq) {
  std::lock_guard lock(mu_);
  Raise(pending_[session_id], conv_id, seq);
}

DeliveredCursors::SessionCursors DeliveredCursors::Snapshot(int64_t session_id) const {
  SessionCursors out;
  std::lock_guard lock(mu_);
  for (const BySession* map : {&writing_, &pending_}) {
    auto it = map->find(session_id);
    if (it == map->end()) continue;
    for (const auto& [conv_id, seq] : it->second) Raise(out, conv_id, seq);
  }
  return out;
}

void DeliveredCursors::Overlay(const SessionCursors& cursors,
                               std::vector<store::PendingConversation>& pending) {
  if (cursors.empty()) return;
  std::erase_if(pending, [&cursors](store::PendingConversation& p) {
    auto it = cursors.find(p.conv_id);
    if (it == cursors.end()) return false;
    // Pending means last_seq > max(delivered, joined); the store checked
    // joined already.
    p.delivered_seq = std::max(p.delivered_seq, std::min(it->second, p.last_seq));
    return p.last_seq <= p.delivered_seq;
  });
}

core::Status DeliveredCursors::Flush() {
  std::lock_guard flush_lock(flush_mu_);
  std::vector<store::DeliveredCursor> cursors;
  {
    std::lock_guard lock(mu_);
    if (pending_.empty()) return core::Status();
    writing_ = std::move(pending_);
    pending_.clear();
    for (const auto& [session_id, convs] : writing_) {
      for (const auto& [conv_id, seq] : convs) cursors.push_back({session_id, conv_id, seq});
    }
  }
  std::promise<core::Status> written;
  store_.MarkDeliveredMany(std::move(cursors),
                           [&written](core::Status s) { written.set_value(std::move(s)); });
  core::Status status = written.get_future().get();
  std::lock_guard lock(mu_);
  if (!status.ok()) {
    static const core::Logger log("cursors");
    log.Warn("delivered cursors not written; retried at the next flush",
             {{"error", std::string(status.message())}});
    for (auto& [session_id, convs] : writing_) {
      for (const auto& [conv_id, seq] : convs) Raise(pending_[session_id], conv_id, seq);
    }
  }
  writing_.clear();
  return status;
}

}  // namespace mpim::service
