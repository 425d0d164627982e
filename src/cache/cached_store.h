// Cache-aside in front of the store: a store::Store decorator whose users()
// and groups() answer the reads that come with every message (a group
// member's membership, the group, a user's profile) from caches of the
// configured engine, and invalidate them after each write through them
// commits and before it answers. Everything else passes through.
//
// Cached (engine and bounds from [cache], docs/storage.md "The cache"):
//   users          user id -> User            Get; dropped by Create (a
//                                             cached "not found" for a new
//                                             id), Update, TouchLastSeen
//   groups         group id -> Group          Get; dropped by Update, Delete,
//                                             AddMembers, RemoveMember,
//                                             SetRole (member_count, owner)
//   group_members  (group, user) -> member    GetMember, "not a member"
//                                             included (null caching);
//                                             dropped by AddMembers,
//                                             RemoveMember, SetRole (both
//                                             the member and, for a new
//                                             owner, the old one)
// Writes answer once their invalidations are done (cache/cache.h);
// `groups` and `group_members` are strict caches (no node answers an old
// membership after the change was answered). A deleted group's members
// stay cached until their TTL; a send by one then fails at the store (the
// conversation is gone) with not_found, as it should. Conversation heads (last_seq) are not cached:
// they change with every message, and the append path reads them under the row's lock.
//
// Thread-safe as the store is.
#pragma once

#include <memory>

#include "cache/registry.h"
#include "core/callback.h"
#include "core/config.h"
#include "store/store.h"

namespace mpim::cache {

// `inner` wrapped in the caches of config.cache.engine (for engine none, the
// inner store itself). `redis`: the process's client for engine redis.
core::StatusOr<std::unique_ptr<store::Store>> MakeCachedStore(std::unique_ptr<store::Store> inner,
                                                              const core::Config& config,
                                                              redis::Client* redis);

// Warm-up at start: loads the `groups` most recently active groups (at most
// 1,000; GroupStore::ListActive) and the first page of each one's members
// into the caches of a store MakeCachedStore made, so that the first sends
// after a restart do not all reach the store. `done` gets how many entries
// were loaded (0 for a store without caches). Runs in the background: the
// store serves meanwhile.
void WarmUpCaches(store::Store& store, int groups, core::Callback<size_t> done);

}  // namespace mpim::cache
