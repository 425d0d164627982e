// Options of the SQLite engine (kept free of sqlite3.h).
#pragma once

#include <chrono>
#include <string>

#include "core/config.h"
#include "store/common.h"

namespace mpim::store::sqlite {

struct SqliteOptions {
  // The database file; its directory must exist. The -wal and -shm files
  // live next to it.
  std::string path = "mpim.db";
  // "normal" (default): a committed write survives the process being killed
  // (WAL, synchronous=NORMAL: no fsync per commit). "full": it also survives
  // a power cut or OS crash (fsync of the WAL per commit).
  std::string synchronous = "normal";
  // Reader connections, one thread each.
  int reader_threads = 2;
  // Group commit: a write batch commits when it holds batch_max writes, when
  // it has been open for batch_delay, or when no more writes are queued.
  // While writes arrive steadily (some came in during the last commit) a
  // batch waits for more, up to batch_delay / 5 for each next one; an idle
  // store never waits.
  int batch_max = 512;
  std::chrono::microseconds batch_delay{1000};
  // The clock for store-made timestamps (created_at, job times). Default:
  // the wall clock.
  NowMsFn now;
  // A registered sqlite3 VFS name (tests inject I/O faults this way); empty:
  // the default VFS.
  std::string vfs;
  // Page cache per connection, in KiB.
  int cache_kib = 16384;
};

// The options a configuration gives: the file <server.data_dir>/mpim.db and
// the [store] sqlite_* keys.
SqliteOptions OptionsFrom(const core::Config& config);

}  // namespace mpim::store::sqlite
