// Files the edge reads again when they change (its routes file, its TLS
// certificate and key): their modification time, size and inode are looked
// at every poll_ms on a thread of its own, and `on_change` runs there when
// any differs from what was last read (Seen). A file that is missing is not
// a change (an editor's save may rename over it): it is looked at again
// until it is back.
//
// Threads: Look and Seen from any thread; on_change on the watcher's.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <vector>

#include "core/metrics.h"
#include "core/status.h"

namespace mpim::edge {

// After reading a watched file again: counts the result in `reloads`
// ({result}: ok or error) and logs it ("<what> reloaded", or "<what> not
// reloaded; what is in force stays" with the error).
void ReportReload(core::CounterFamily& reloads, const core::Status& result, std::string_view what,
                  const std::string& file, const char* why);

class FileWatcher {
 public:
  using Stamp = std::tuple<int64_t, int64_t, uint64_t>;  // mtime ns, size, inode
  using Stamps = std::vector<Stamp>;

  FileWatcher(std::vector<std::string> paths, int64_t poll_ms, std::function<void()> on_change);
  ~FileWatcher();  // Stop()

  FileWatcher(const FileWatcher&) = delete;
  FileWatcher& operator=(const FileWatcher&) = delete;

  // The files' stamps now (all zero for a file that is missing).
  Stamps Look() const;
  // What the last read saw (take Look() before reading: a write during the
  // read then shows as a change next time round).
  void Seen(Stamps stamps);

  // Starts watching when poll_ms > 0; Stop ends it. Idempotent.
  void Start();
  void Stop();

 private:
  void Loop();

  const std::vector<std::string> paths_;
  const int64_t poll_ms_;
  const std::function<void()> on_change_;

  std::mutex mu_;  // guards everything below
  std::condition_variable cv_;
  Stamps seen_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mpim::edge
