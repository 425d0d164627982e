// The storage layer's root object: one per process, owning every sub-store
// of one engine (SQLite embedded, MySQL in a cluster).
//
// Who may call: any thread. Ownership: the Store owns the sub-stores; the
// references returned by the accessors live as long as the Store.
//
// Durability: a write whose callback reported OK has committed. With the
// SQLite engine and synchronous = "normal" (default) it survives the process
// being killed; with "full" it also survives a power cut or OS crash.
//
// Adding an engine, in 3 steps:
//   1. implement Store and the sub-store interfaces under store/<engine>/;
//   2. register its Open and Migrate in store/registry.cc;
//   3. instantiate the contract suite (tests/store/contract/) with its
//      factory, and make it pass.
#pragma once

#include "store/common.h"
#include "store/conversation_store.h"
#include "store/friend_store.h"
#include "store/group_store.h"
#include "store/job_store.h"
#include "store/message_store.h"
#include "store/search_store.h"
#include "store/session_store.h"
#include "store/user_store.h"

namespace mpim::store {

class Store {
 public:
  virtual ~Store() = default;

  virtual UserStore& users() = 0;
  virtual SessionStore& sessions() = 0;
  virtual FriendStore& friends() = 0;
  virtual GroupStore& groups() = 0;
  virtual ConversationStore& conversations() = 0;
  virtual MessageStore& messages() = 0;
  virtual SearchStore& search() = 0;
  virtual JobStore& jobs() = 0;

  // Health for /readyz: OK when the storage answers a read and commits a
  // write now (a tiny one the engine keeps for this); kUnavailable when
  // either fails (disk full, read-only, I/O error, closed). It writes, so
  // it notices a disk that filled up while nothing else was written, and
  // the recovery once space is back.
  virtual void Ping(DoneCallback done) = 0;

  // Stops taking new calls (they complete inline with kUnavailable), runs
  // every call already queued to completion, and releases the storage.
  // Idempotent; the destructor calls it. Must not be called from a store
  // callback.
  virtual void Close() = 0;
};

}  // namespace mpim::store
