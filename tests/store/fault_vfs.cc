#include "fault_vfs.h"

#include <sqlite3.h>

#include <map>
#include <memory>

#include "store/sqlite/vfs_shim.h"

namespace mpim::store::testing {
namespace {

using store::sqlite::vfs_shim::Real;

// A file of the fault VFS (store/sqlite/vfs_shim.h): plain data.
struct FaultFile {
  store::sqlite::vfs_shim::ShimFile shim;
  FaultVfs* faults;
};

FaultVfs* Faults(sqlite3_file* f) { return reinterpret_cast<FaultFile*>(f)->faults; }

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

const sqlite3_io_methods& Methods() {
  static const sqlite3_io_methods methods = [] {
    sqlite3_io_methods m = store::sqlite::vfs_shim::ForwardingMethods();
    m.xWrite = Write;
    m.xTruncate = Truncate;
    m.xSync = Sync;
    return m;
  }();
  return methods;
}

struct Registered {
  std::string name;
  store::sqlite::vfs_shim::ShimVfsData data;
  sqlite3_vfs vfs;
  FaultVfs faults;
};

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  auto* ff = reinterpret_cast<FaultFile*>(file);
  ff->faults = static_cast<FaultVfs*>(store::sqlite::vfs_shim::Data(vfs)->user);
  return store::sqlite::vfs_shim::OpenReal(vfs, file, sizeof(FaultFile), &Methods(), name, flags,
                                           out_flags);
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
    slot->data = store::sqlite::vfs_shim::ShimVfsData{real, &slot->faults};
    store::sqlite::vfs_shim::InitVfs(slot->vfs, slot->name.c_str(), &slot->data, sizeof(FaultFile),
                                     Open);
    sqlite3_vfs_register(&slot->vfs, /*makeDflt=*/0);
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
