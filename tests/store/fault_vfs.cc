#include "fault_vfs.h"

#include <sqlite3.h>

#include <map>
#include <memory>

namespace mpim::store::testing {
namespace {

// A file of the fault VFS: our header, then the real VFS's file.
struct FaultFile {
  sqlite3_file base;
  FaultVfs* faults;
  sqlite3_file* real;
};

sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->real; }
FaultVfs* Faults(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->faults; }

int Close(sqlite3_file* f) { return Real(f)->pMethods->xClose(Real(f)); }
int Read(sqlite3_file* f, void* buf, int n, sqlite3_int64 off) {
  return Real(f)->pMethods->xRead(Real(f), buf, n, off);
}
int Write(sqlite3_file* f, const void* buf, int n, sqlite3_int64 off) {
  if (int rc = Faults(f)->BeforeWrite(); rc != 0) return rc;
  return Real(f)->pMethods->xWrite(Real(f), buf, n, off);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = Faults(f)->BeforeWrite(); rc != 0) return rc;
  return Real(f)->pMethods->xTruncate(Real(f), size);
}
int Sync(sqlite3_file* f, int flags) {
  if (int rc = Faults(f)->BeforeWrite(); rc != 0) return rc;
  return Real(f)->pMethods->xSync(Real(f), flags);
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  return Real(f)->pMethods->xFileSize(Real(f), size);
}
int Lock(sqlite3_file* f, int level) { return Real(f)->pMethods->xLock(Real(f), level); }
int Unlock(sqlite3_file* f, int level) { return Real(f)->pMethods->xUnlock(Real(f), level); }
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Real(f)->pMethods->xCheckReservedLock(Real(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  return Real(f)->pMethods->xFileControl(Real(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Real(f)->pMethods->xSectorSize(Real(f)); }
int DeviceCharacteristics(sqlite3_file* f) {
  return Real(f)->pMethods->xDeviceCharacteristics(Real(f));
}
int ShmMap(sqlite3_file* f, int page, int size, int extend, void volatile** out) {
  return Real(f)->pMethods->xShmMap(Real(f), page, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  return Real(f)->pMethods->xShmLock(Real(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) { Real(f)->pMethods->xShmBarrier(Real(f)); }
int ShmUnmap(sqlite3_file* f, int del) { return Real(f)->pMethods->xShmUnmap(Real(f), del); }
int Fetch(sqlite3_file* f, sqlite3_int64 off, int n, void** out) {
  return Real(f)->pMethods->xFetch(Real(f), off, n, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 off, void* p) {
  return Real(f)->pMethods->xUnfetch(Real(f), off, p);
}

const sqlite3_io_methods kMethods = {3,
                                     Close,
                                     Read,
                                     Write,
                                     Truncate,
                                     Sync,
                                     FileSize,
                                     Lock,
                                     Unlock,
                                     CheckReservedLock,
                                     FileControl,
                                     SectorSize,
                                     DeviceCharacteristics,
                                     ShmMap,
                                     ShmLock,
                                     ShmBarrier,
                                     ShmUnmap,
                                     Fetch,
                                     Unfetch};

// What the fault VFS's pAppData points at.
struct AppData {
  sqlite3_vfs* real;
  FaultVfs* faults;
};

struct Registered {
  std::string name;
  sqlite3_vfs vfs;
  FaultVfs faults;
  AppData app;
};

sqlite3_vfs* RealVfs(sqlite3_vfs* vfs) { return static_cast<AppData*>(vfs->pAppData)->real; }

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ff = reinterpret_cast<FaultFile*>(file);
  ff->base.pMethods = nullptr;
  ff->faults = static_cast<AppData*>(vfs->pAppData)->faults;
  ff->real = reinterpret_cast<sqlite3_file*>(ff + 1);
  int rc = RealVfs(vfs)->xOpen(RealVfs(vfs), name, ff->real, flags, out_flags);
  if (ff->real->pMethods != nullptr) ff->base.pMethods = &kMethods;
  return rc;
}
int Delete(sqlite3_vfs* vfs, const char* name, int sync) {
  return RealVfs(vfs)->xDelete(RealVfs(vfs), name, sync);
}
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return RealVfs(vfs)->xAccess(RealVfs(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
  return RealVfs(vfs)->xFullPathname(RealVfs(vfs), name, n, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) {
  return RealVfs(vfs)->xDlOpen(RealVfs(vfs), name);
}
void DlError(sqlite3_vfs* vfs, int n, char* out) { RealVfs(vfs)->xDlError(RealVfs(vfs), n, out); }
void (*DlSym(sqlite3_vfs* vfs, void* h, const char* sym))(void) {
  return RealVfs(vfs)->xDlSym(RealVfs(vfs), h, sym);
}
void DlClose(sqlite3_vfs* vfs, void* h) { RealVfs(vfs)->xDlClose(RealVfs(vfs), h); }
int Randomness(sqlite3_vfs* vfs, int n, char* out) {
  return RealVfs(vfs)->xRandomness(RealVfs(vfs), n, out);
}
int Sleep(sqlite3_vfs* vfs, int us) { return RealVfs(vfs)->xSleep(RealVfs(vfs), us); }
int CurrentTime(sqlite3_vfs* vfs, double* out) {
  return RealVfs(vfs)->xCurrentTime(RealVfs(vfs), out);
}
int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
  return RealVfs(vfs)->xGetLastError(RealVfs(vfs), n, out);
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  return RealVfs(vfs)->xCurrentTimeInt64(RealVfs(vfs), out);
}

}  // namespace

FaultVfs& FaultVfs::Get(const std::string& name) {
  static std::mutex mu;
  static std::map<std::string, std::unique_ptr<Registered>> registry;
  std::lock_guard lock(mu);
  auto& slot = registry[name];
  if (!slot) {
    sqlite3_initialize();
    sqlite3_vfs* real = sqlite3_vfs_find(nullptr);
    slot = std::make_unique<Registered>();
    slot->name = name;
    sqlite3_vfs& v = slot->vfs;
    v = sqlite3_vfs{};
    v.iVersion = 2;
    v.szOsFile = static_cast<int>(sizeof(FaultFile)) + real->szOsFile;
    v.mxPathname = real->mxPathname;
    v.zName = slot->name.c_str();
    slot->app = AppData{real, &slot->faults};
    v.pAppData = &slot->app;
    v.xOpen = Open;
    v.xDelete = Delete;
    v.xAccess = Access;
    v.xFullPathname = FullPathname;
    v.xDlOpen = DlOpen;
    v.xDlError = DlError;
    v.xDlSym = DlSym;
    v.xDlClose = DlClose;
    v.xRandomness = Randomness;
    v.xSleep = Sleep;
    v.xCurrentTime = CurrentTime;
    v.xGetLastError = GetLastError;
    v.xCurrentTimeInt64 = CurrentTimeInt64;
    sqlite3_vfs_register(&v, /*makeDflt=*/0);
  }
  return slot->faults;
}

void FaultVfs::FailWrites(int sqlite_rc) {
  std::lock_guard lock(mu_);
  fail_rc_ = sqlite_rc;
}

int FaultVfs::failing_rc() const {
  std::lock_guard lock(mu_);
  return fail_rc_;
}

void FaultVfs::HoldWrites() {
  std::lock_guard lock(mu_);
  hold_ = true;
}

void FaultVfs::WaitForHeldWrite() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return held_ > 0; });
}

void FaultVfs::ReleaseWrites() {
  std::lock_guard lock(mu_);
  hold_ = false;
  cv_.notify_all();
}

int FaultVfs::BeforeWrite() {
  std::unique_lock lock(mu_);
  if (hold_) {
    ++held_;
    cv_.notify_all();
    cv_.wait(lock, [this] { return !hold_; });
    --held_;
  }
  return fail_rc_;
}

}  // namespace mpim::store::testing
