// GroupService on a Store, with system messages through the MessageService,
// conv events through the Deliverer, and member-cache invalidation.
#pragma once

#include <boost/json/object.hpp>

#include "core/config.h"
#include "service/deliverer.h"
#include "service/group/member_cache.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "store/store.h"

namespace mpim::service {

class GroupServiceImpl final : public GroupService {
 public:
  GroupServiceImpl(const core::LimitsConfig& limits, store::Store& store, MessageService& messages,
                   Deliverer& deliverer, MemberCache& members, const route::Presence* presence)
      : max_members_(limits.group_max_members),
        page_max_(static_cast<int>(limits.page_max)),
        store_(store),
        messages_(messages),
        deliverer_(deliverer),
        members_(members),
        presence_(presence) {}

  void Create(Principal who, NewGroupRequest request, core::Callback<store::Group> done) override;
  void Get(Principal who, int64_t group_id, core::Callback<GroupView> done) override;
  void Update(Principal who, int64_t group_id, std::optional<std::string> name,
              std::optional<bool> is_public, core::Callback<GroupView> done) override;
  void Delete(Principal who, int64_t group_id, core::DoneCallback done) override;
  void ListMembers(Principal who, int64_t group_id, int64_t after, int limit,
                   core::Callback<MemberPage> done) override;
  void AddMembers(Principal who, int64_t group_id, std::vector<int64_t> user_ids,
                  core::Callback<std::vector<int64_t>> done) override;
  void RemoveMember(Principal who, int64_t group_id, int64_t user_id,
                    core::DoneCallback done) override;
  void SetRole(Principal who, int64_t group_id, int64_t user_id, store::GroupRole role,
               core::Callback<store::GroupMember> done) override;
  void ListMine(Principal who, core::Callback<std::vector<GroupView>> done) override;

 private:
  // The group and the caller's membership (nullopt: not a member).
  using Context = std::pair<store::Group, std::optional<store::GroupMember>>;
  void Load(Principal who, int64_t group_id, core::Callback<Context> done);
  // Posts a system message, then calls `then` (its failure is logged only:
  // the change itself is already durable).
  void Announce(int64_t group_id, int64_t by, boost::json::object body,
                absl::AnyInvocable<void() &&> then);
  // Every member's id (paged through the store).
  void AllMembers(int64_t group_id, std::shared_ptr<std::vector<int64_t>> acc, int64_t after,
                  core::Callback<std::shared_ptr<std::vector<int64_t>>> done);
  void Leave(const store::Group& group, const store::GroupMember& me, core::DoneCallback done);
  // After the group was deleted: its member list dropped everywhere, then
  // `members` told (`event`) and `done` answered.
  void Gone(int64_t group_id, std::vector<int64_t> members, std::string conv_id, const char* event,
            core::DoneCallback done);
  void Remove(int64_t group_id, int64_t by, int64_t user_id, const char* event,
              core::DoneCallback done);
  // The best member to take over from `owner` (see Older), paging members.
  void FindSuccessor(int64_t group_id, int64_t owner, int64_t after,
                     std::optional<store::GroupMember> best,
                     core::Callback<store::GroupMember> done);
  // Makes `next_owner` the owner, announces it, then removes `owner`.
  void HandOver(int64_t group_id, int64_t owner, int64_t next_owner, core::DoneCallback done);

  const int64_t max_members_;
  const int page_max_;
  store::Store& store_;
  MessageService& messages_;
  Deliverer& deliverer_;
  MemberCache& members_;
  const route::Presence* presence_;
};

}  // namespace mpim::service
