// Building blocks for a SQLite VFS over another one (wal_batch_vfs.cc; the
// tests' fault VFS): everything is handed to the base VFS unless the shim
// replaces it.
//
// A shim's file is its own struct, which starts with ShimFile, followed by
// the base VFS's file (SQLite allocates both as one block of szOsFile bytes
// and never constructs them, so the shim's struct must be plain data).
#pragma once

#include <sqlite3.h>

#include <cstddef>

namespace mpim::store::sqlite::vfs_shim {

struct ShimFile {
  sqlite3_file base;   // pMethods: the shim's methods
  sqlite3_file* real;  // the base VFS's file, right after the shim's struct
};

// What a shim VFS's pAppData points at.
struct ShimVfsData {
  sqlite3_vfs* base;
  void* user;  // the shim's own state
};

inline sqlite3_file* Real(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f)->real; }
inline ShimVfsData* Data(sqlite3_vfs* vfs) { return static_cast<ShimVfsData*>(vfs->pAppData); }

// Version 3 methods that forward every call to the real file; a shim copies
// the table and replaces what it changes.
const sqlite3_io_methods& ForwardingMethods();

// Opens the base VFS's file behind `file` (the shim's struct of
// `shim_bytes` bytes) and sets file->pMethods to `methods` if it opened.
int OpenReal(sqlite3_vfs* vfs, sqlite3_file* file, size_t shim_bytes,
             const sqlite3_io_methods* methods, const char* name, int flags, int* out_flags);

// Fills `vfs` as a VFS named `name` over data->base whose files are the
// shim's struct of `shim_bytes` bytes; every method but xOpen forwards.
void InitVfs(sqlite3_vfs& vfs, const char* name, ShimVfsData* data, size_t shim_bytes,
             int (*open)(sqlite3_vfs*, const char*, sqlite3_file*, int, int*));

}  // namespace mpim::store::sqlite::vfs_shim
