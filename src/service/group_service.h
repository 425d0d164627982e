// Groups (docs/protocol.md section 2, "Groups"): roles
// owner, admin, member; public groups anyone may join; every membership
// change (and a rename) posts a `system` message in the group conversation
// and a `conv` event to the affected user.
//
// Asynchronous; callbacks run once on an internal thread. Errors:
// invalid_argument, not_found (group or user), permission_denied (role or
// visibility), already_exists (all already members), unavailable.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every asynchronous call may be a network round trip and
// also fails with unavailable when no logic node answers in time; callers
// never wait for it synchronously on an io thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "core/callback.h"
#include "service/auth_service.h"
#include "service/user_service.h"
#include "store/group_store.h"

namespace mpim::service {

struct GroupView {
  store::Group group;
  std::optional<store::GroupRole> role;  // the caller's, when a member
};

struct MemberView {
  UserProfile user;
  store::GroupRole role = store::GroupRole::kMember;
  int64_t joined_at = 0;
};

struct MemberPage {
  std::vector<MemberView> members;
  bool has_more = false;
};

struct NewGroupRequest {
  std::string name;
  std::vector<int64_t> members;
  bool is_public = false;
};

class GroupService {
 public:
  virtual ~GroupService() = default;

  virtual void Create(Principal who, NewGroupRequest request,
                      core::Callback<store::Group> done) = 0;
  virtual void Get(Principal who, int64_t group_id, core::Callback<GroupView> done) = 0;
  virtual void Update(Principal who, int64_t group_id, std::optional<std::string> name,
                      std::optional<bool> is_public, core::Callback<GroupView> done) = 0;
  virtual void Delete(Principal who, int64_t group_id, core::DoneCallback done) = 0;
  virtual void ListMembers(Principal who, int64_t group_id, int64_t after, int limit,
                           core::Callback<MemberPage> done) = 0;
  // Returns the ids actually added.
  virtual void AddMembers(Principal who, int64_t group_id, std::vector<int64_t> user_ids,
                          core::Callback<std::vector<int64_t>> done) = 0;
  virtual void RemoveMember(Principal who, int64_t group_id, int64_t user_id,
                            core::DoneCallback done) = 0;
  virtual void SetRole(Principal who, int64_t group_id, int64_t user_id, store::GroupRole role,
                       core::Callback<store::GroupMember> done) = 0;
  virtual void ListMine(Principal who, core::Callback<std::vector<GroupView>> done) = 0;
};

}  // namespace mpim::service
