// GroupStore on SQLite.
#pragma once

#include "store/group_store.h"
#include "store/sqlite/executor.h"

namespace mpim::store::sqlite {

class SqliteGroupStore final : public GroupStore {
 public:
  explicit SqliteGroupStore(Executor& exec) : exec_(exec) {}

  void Create(const NewGroup& group, Callback<Group> done) override;
  void Get(int64_t group_id, Callback<Group> done) override;
  void Update(int64_t group_id, const GroupUpdate& update, Callback<Group> done) override;
  void Delete(int64_t group_id, DoneCallback done) override;
  void AddMembers(int64_t group_id, const std::vector<int64_t>& user_ids,
                  Callback<AddMembersResult> done) override;
  void RemoveMember(int64_t group_id, int64_t user_id, Callback<MembershipSpan> done) override;
  void SetRole(int64_t group_id, int64_t user_id, GroupRole role,
               Callback<GroupMember> done) override;
  void GetMember(int64_t group_id, int64_t user_id, Callback<GroupMember> done) override;
  void ListMembers(int64_t group_id, int64_t after_user, int limit,
                   Callback<Page<GroupMember>> done) override;
  void ListPastSpans(int64_t group_id, int64_t user_id,
                     Callback<std::vector<MembershipSpan>> done) override;
  void ListForUser(int64_t user_id, int64_t after_group, int limit,
                   Callback<Page<Group>> done) override;
  void ListActive(int limit, Callback<std::vector<int64_t>> done) override;

 private:
  Executor& exec_;
};

}  // namespace mpim::store::sqlite
