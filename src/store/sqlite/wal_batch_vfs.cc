#include "store/sqlite/wal_batch_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>

#include "core/metrics.h"
#include "store/sqlite/vfs_shim.h"

namespace mpim::store::sqlite {
namespace {

constexpr size_t kMaxPendingBytes = 1 << 20;
// The unix VFS writes at most 128 KiB - 1 per call (it masks the length to
// 17 bits): larger flushes go in pieces of this size.
constexpr size_t kMaxWriteBytes = 124 * 1024;
constexpr int kFrameHeaderBytes = 24;

core::Counter& WalWrites() {
  static core::Counter& c =
      core::DefaultRegistry()
          .Counter("mpim_store_wal_writes_total",
                   "Writes to the WAL file handed to the kernel (each commit's frames go "
                   "in one).")
          .With({});
  return c;
}

// A file of this VFS (vfs_shim.h): plain data.
struct BatchFile {
  vfs_shim::ShimFile shim;
  // WAL file: the frames not written yet, at file offset pending_offset;
  // `appended_end`: where the WAL's growing end is (what was buffered
  // reaches there); `commit_next`: the last frame header buffered was a
  // commit frame's.
  std::string* pending;
  sqlite3_int64 pending_offset;
  sqlite3_int64 appended_end;
  bool commit_next;
  // The main database file and the WAL of one connection know each other.
  BatchFile* wal;
  BatchFile* db;
};

using vfs_shim::Real;
BatchFile* Batch(sqlite3_file* f) { return reinterpret_cast<BatchFile*>(f); }

int Flush(BatchFile* f) {
  if (f->pending == nullptr || f->pending->empty()) return SQLITE_OK;
  const std::string& pending = *f->pending;
  for (size_t done = 0; done < pending.size(); done += kMaxWriteBytes) {
    const size_t n = std::min(kMaxWriteBytes, pending.size() - done);
    sqlite3_file* real = f->shim.real;
    int rc = real->pMethods->xWrite(real, pending.data() + done, static_cast<int>(n),
                                    f->pending_offset + static_cast<sqlite3_int64>(done));
    WalWrites().Inc();
    // On an error the frames stay: the next flush writes them again.
    if (rc != SQLITE_OK) return rc;
  }
  f->pending->clear();
  return SQLITE_OK;
}

// The main database file's connection is about to publish or release WAL
// state: nothing of its WAL may still be in memory.
void FlushWalOf(sqlite3_file* db) {
  if (BatchFile* wal = Batch(db)->wal; wal != nullptr) (void)Flush(wal);
}

int Close(sqlite3_file* f) {
  BatchFile* b = Batch(f);
  int flushed = Flush(b);
  if (b->wal != nullptr) b->wal->db = nullptr;
  if (b->db != nullptr) b->db->wal = nullptr;
  delete b->pending;
  b->pending = nullptr;
  int rc = Real(f)->pMethods->xClose(Real(f));
  return flushed != SQLITE_OK ? flushed : rc;
}
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  if (int rc = Flush(Batch(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  BatchFile* b = Batch(f);
  if (b->pending == nullptr) return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
  std::string& pending = *b->pending;
  const auto size = static_cast<sqlite3_int64>(pending.size());
  const bool continues = !pending.empty() && off == b->pending_offset + size;
  if (!continues || pending.size() + static_cast<size_t>(n) > kMaxPendingBytes) {
    if (int rc = Flush(b); rc != SQLITE_OK) return rc;
  }
  // Only what grows the WAL (or starts it over at 0) waits; a write below
  // that (a frame header rewritten with new checksums, frames after a
  // rollback) goes through at once, its result SQLite's.
  if (off == 0) b->appended_end = 0;
  if (!continues && off < b->appended_end) {
    b->commit_next = false;
    return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
  }
  if (pending.empty()) b->pending_offset = off;
  pending.append(static_cast<const char*>(buf), static_cast<size_t>(n));
  b->appended_end = off + n;
  if (n == kFrameHeaderBytes) {
    // Bytes 4-7: the database size after a commit frame, 0 otherwise.
    const auto* h = static_cast<const unsigned char*>(buf);
    b->commit_next = (h[4] | h[5] | h[6] | h[7]) != 0;
    return SQLITE_OK;
  }
  if (!b->commit_next) return SQLITE_OK;
  b->commit_next = false;
  return Flush(b);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  BatchFile* b = Batch(f);
  if (int rc = Flush(b); rc != SQLITE_OK) return rc;
  b->appended_end = std::min(b->appended_end, size);
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  if (int rc = Flush(Batch(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = Flush(Batch(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  if (int rc = Flush(Batch(f)); rc != SQLITE_OK) return rc;
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  FlushWalOf(f);
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) {
  FlushWalOf(f);
  Real(f)->pMethods->xShmBarrier(Real(f));
}
int ShmUnmap(sqlite3_file* f, int del) {
  FlushWalOf(f);
  return Real(f)->pMethods->xShmUnmap(Real(f), del);
}

// The forwarding methods with the batching ones in place.
const sqlite3_io_methods& Methods() {
  static const sqlite3_io_methods methods = [] {
    sqlite3_io_methods m = vfs_shim::ForwardingMethods();
    m.xClose = Close;
    m.xRead = Read;
    m.xWrite = Write;
    m.xTruncate = Truncate;
    m.xSync = Sync;
    m.xFileSize = FileSize;
    m.xFileControl = FileControl;
    m.xShmLock = ShmLock;
    m.xShmBarrier = ShmBarrier;
    m.xShmUnmap = ShmUnmap;
    return m;
  }();
  return methods;
}

struct Registered {
  std::string name;
  vfs_shim::ShimVfsData data;
  sqlite3_vfs vfs;
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* b = reinterpret_cast<BatchFile*>(file);
  *b = BatchFile{};
  int rc = vfs_shim::OpenReal(vfs, file, sizeof(BatchFile), &Methods(), name, flags, out_flags);
  if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) != 0 && name != nullptr) {
    b->pending = new std::string();
    sqlite3_file* db = sqlite3_database_file_object(name);
    if (db != nullptr && db->pMethods == &Methods()) {
      b->db = Batch(db);
      b->db->wal = b;
    }
  }
  return rc;
}

}  // namespace

const char* WalBatchVfs(const std::string& base) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Registered>> registered;
  std::lock_guard lock(mu);
  auto& slot = registered[base];
  if (slot) return slot->name.c_str();
  sqlite3_vfs* real = sqlite3_vfs_find(base.empty() ? nullptr : base.c_str());
  if (real == nullptr) {
    registered.erase(base);
    return base.c_str();  // unknown: sqlite3_open_v2 reports it
  }
  slot = std::make_unique<Registered>();
  slot->name = "mpim-wal-batch";
  if (!base.empty()) slot->name += "+" + base;
  slot->data = vfs_shim::ShimVfsData{real, nullptr};
  vfs_shim::InitVfs(slot->vfs, slot->name.c_str(), &slot->data, sizeof(BatchFile), Open);
  sqlite3_vfs_register(&slot->vfs, /*makeDflt=*/0);
  return slot->name.c_str();
}

}  // namespace mpim::store::sqlite
