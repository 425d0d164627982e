// Groups and their members. A group owns one conversation, "g:<group_id>",
// created with the group.
//
// Membership carries the role, the join time and `joined_seq`: the group
// conversation's last_seq when the member joined, so the member sees history
// from joined_seq + 1 on. Leaving deletes the membership and records the span
// [joined_seq + 1, left_seq] in the member's history, so that a later reader
// can restrict old members to what they were present for. Nothing here is
// O(members) per message: members are touched only when membership changes.
//
// Thread-safe: every method may be called from any thread; results arrive
// through the callback as described in store/common.h. Unknown group ids are
// kNotFound.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "store/common.h"

namespace mpim::store {

enum class GroupRole { kMember = 0, kAdmin = 1, kOwner = 2 };

// "owner", "admin", "member".
const char* GroupRoleName(GroupRole role);

struct Group {
  int64_t group_id = 0;  // store-assigned, the first is 1001
  std::string conv_id;   // "g:<group_id>"
  std::string name;
  std::string avatar_url;
  int64_t owner_id = 0;
  bool is_public = false;
  int64_t member_count = 0;
  int64_t created_at = 0;  // ms, store clock
};

struct NewGroup {
  std::string name;
  std::string avatar_url;
  int64_t owner_id = 0;  // becomes a member with role owner
  bool is_public = false;
  std::vector<int64_t> members;  // initial members (role member); the owner may appear
};

struct GroupUpdate {
  std::optional<std::string> name;
  std::optional<std::string> avatar_url;
  std::optional<bool> is_public;
};

struct GroupMember {
  int64_t group_id = 0;
  int64_t user_id = 0;
  GroupRole role = GroupRole::kMember;
  int64_t joined_at = 0;   // ms, store clock
  int64_t joined_seq = 0;  // conversation last_seq at join
};

// A past membership: the member saw seqs (joined_seq, left_seq].
struct MembershipSpan {
  int64_t joined_seq = 0;
  int64_t left_seq = 0;
  int64_t left_at = 0;
};

struct AddMembersResult {
  std::vector<GroupMember> added;        // ascending by user id
  std::vector<int64_t> already_members;  // skipped, ascending
};

class GroupStore {
 public:
  virtual ~GroupStore() = default;

  // Creates the group, its conversation and the memberships. kNotFound if
  // the owner or a member is not a user; kInvalidArgument for an empty name.
  virtual void Create(const NewGroup& group, Callback<Group> done) = 0;

  virtual void Get(int64_t group_id, Callback<Group> done) = 0;

  // Returns the updated group.
  virtual void Update(int64_t group_id, const GroupUpdate& update, Callback<Group> done) = 0;

  // Deletes the group with its members, conversation, messages and their
  // search entries. Cost: O(members + messages) on the writer thread.
  virtual void Delete(int64_t group_id, DoneCallback done) = 0;

  // Adds users as role member with joined_seq = the conversation's current
  // last_seq. Users already in the group are reported, not an error. All or
  // nothing: kNotFound (nothing added) if a user id is unknown.
  virtual void AddMembers(int64_t group_id, const std::vector<int64_t>& user_ids,
                          Callback<AddMembersResult> done) = 0;

  // Removes a member and records its span; returns the span. kNotFound if
  // not a member. Removing the owner is allowed only by Delete: it is
  // kInvalidArgument here.
  virtual void RemoveMember(int64_t group_id, int64_t user_id, Callback<MembershipSpan> done) = 0;

  // Sets the role of a member; kNotFound if not a member. Making someone the
  // owner transfers ownership: the old owner becomes an admin.
  virtual void SetRole(int64_t group_id, int64_t user_id, GroupRole role,
                       Callback<GroupMember> done) = 0;

  // kNotFound if the user is not (now) a member.
  virtual void GetMember(int64_t group_id, int64_t user_id, Callback<GroupMember> done) = 0;

  // Members ascending by user id, starting after `after_user`.
  virtual void ListMembers(int64_t group_id, int64_t after_user, int limit,
                           Callback<Page<GroupMember>> done) = 0;

  // Past memberships of the user in the group, oldest first (the current
  // one, if any, is GetMember).
  virtual void ListPastSpans(int64_t group_id, int64_t user_id,
                             Callback<std::vector<MembershipSpan>> done) = 0;

  // The user's groups ascending by group id, starting after `after_group`.
  virtual void ListForUser(int64_t user_id, int64_t after_group, int limit,
                           Callback<Page<Group>> done) = 0;

  // The ids of the groups whose conversations saw a message most recently,
  // newest first, at most `limit` ([1, kMaxPageLimit]): the hot groups whose
  // caches a node warms at start (cache/cached_store.h). One pass over the
  // conversations; not for the message path.
  virtual void ListActive(int limit, Callback<std::vector<int64_t>> done) = 0;
};

}  // namespace mpim::store
