// A VFS over another one that hands each commit's WAL frames to the kernel
// in one write.
//
// SQLite writes a WAL frame as two pwrite calls (its 24-byte header, then
// the page): a commit of 60 pages makes 120 system calls, and at 20,000
// messages/s that was a sixth of the server's CPU (docs/storage.md,
// "Writes to the WAL"). Through this VFS the WAL file keeps the frames it
// is given in memory, as long as they continue each other, and writes them
// with one pwrite when:
//   - the commit frame's page arrives (a frame header with a non-zero
//     database size marks it; the write's result is the commit's result, so
//     a full disk fails the commit as before), before the commit is
//     published to other connections: they only read frames a commit
//     published, so they never look into the buffer;
//   - anything reads, truncates, syncs, sizes or closes the WAL, or writes
//     it out of order (such a write, below the WAL's growing end, goes
//     through at once: checksums rewritten in place, frames after a
//     rollback);
//   - the buffer holds 1 MiB;
//   - the connection's database file takes or releases a wal-index lock or
//     a memory barrier (a safety net: commits flushed before that already).
// Durability is unchanged: an acknowledged message was committed, so its
// frames reached the kernel before the commit returned.
#pragma once

#include <string>

namespace mpim::store::sqlite {

// The name of the VFS that batches WAL writes over `base` (a registered VFS
// name; empty: the default VFS), registering it on first use. Thread-safe.
const char* WalBatchVfs(const std::string& base);

}  // namespace mpim::store::sqlite
