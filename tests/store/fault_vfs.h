// A SQLite VFS that wraps the default one and fails or holds writes on cue,
// so tests can make the real engine meet a full disk or an I/O error (as
// RocksDB's FaultInjectionTestFS does for its Env).
//
// Thread-safe: the controls may be called from any thread while SQLite runs.
#pragma once

#include <condition_variable>
#include <mutex>
#include <string>

namespace mpim::store::testing {

class FaultVfs {
 public:
  // The VFS registered under `name` (registered on first use; never the
  // default VFS). Pass the name as SqliteOptions::vfs.
  static FaultVfs& Get(const std::string& name);

  // From now on every write, truncate and sync fails with `sqlite_rc`
  // (e.g. SQLITE_FULL); 0 lets them through again.
  void FailWrites(int sqlite_rc);
  int failing_rc() const;

  // Makes the next writes wait until ReleaseWrites; WaitForHeldWrite blocks
  // until one is waiting.
  void HoldWrites();
  void WaitForHeldWrite();
  void ReleaseWrites();

  // Called by the VFS before a write: the error to return, or 0.
  int BeforeWrite();

 private:
  mutable std::mutex mu_;  // guards all below
  std::condition_variable cv_;
  int fail_rc_ = 0;
  bool hold_ = false;
  int held_ = 0;
};

}  // namespace mpim::store::testing
