#include "edge/file_watcher.h"

#include <sys/stat.h>

#include <algorithm>

#include "edge/log.h"

namespace mpim::edge {

void ReportReload(core::CounterFamily& reloads, const core::Status& result, std::string_view what,
                  const std::string& file, const char* why) {
  reloads.With({result.ok() ? "ok" : "error"}).Inc();
  if (result.ok()) {
    Log().Info(std::string(what) + " reloaded", {{"file", file}, {"why", why}});
  } else {
    Log().Error(std::string(what) + " not reloaded; what is in force stays",
                {{"file", file}, {"why", why}, {"error", std::string(result.message())}});
  }
}

FileWatcher::FileWatcher(std::vector<std::string> paths, int64_t poll_ms,
                         std::function<void()> on_change)
    : paths_(std::move(paths)), poll_ms_(poll_ms), on_change_(std::move(on_change)) {}

FileWatcher::~FileWatcher() { Stop(); }

FileWatcher::Stamps FileWatcher::Look() const {
  Stamps out;
  out.reserve(paths_.size());
  for (const std::string& p : paths_) {
    struct stat st {};
    if (::stat(p.c_str(), &st) != 0) {
      out.emplace_back();
      continue;
    }
    out.emplace_back(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec,
                     static_cast<int64_t>(st.st_size), static_cast<uint64_t>(st.st_ino));
  }
  return out;
}

void FileWatcher::Seen(Stamps stamps) {
  std::lock_guard lock(mu_);
  seen_ = std::move(stamps);
}

void FileWatcher::Start() {
  std::lock_guard lock(mu_);
  if (poll_ms_ <= 0 || thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void FileWatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void FileWatcher::Loop() {
  for (;;) {
    {
      std::unique_lock lock(mu_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(poll_ms_), [this] { return stopping_; })) {
        return;
      }
    }
    const Stamps now = Look();
    bool changed;
    {
      std::lock_guard lock(mu_);
      changed = now != seen_;
    }
    const bool missing =
        std::any_of(now.begin(), now.end(), [](const Stamp& s) { return s == Stamp{}; });
    if (changed && !missing) on_change_();
  }
}

}  // namespace mpim::edge
