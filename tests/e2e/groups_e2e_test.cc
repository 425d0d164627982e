// End-to-end: groups over HTTP and WebSocket against the real `mpim` binary
// (docs/protocol.md section 2 "Groups", section 3 `conv`
// events; docs/protocol.md section 2 "Groups"): create/get/patch/delete by role, paged
// member lists, adding (public self-join), removing and leaving, role
// changes, the hand-over of ownership, system messages and `conv` events
// for every membership change, the end of delivery on removal, membership
// spans in history and sync, and the refusals for non-members.
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/api_client.h"
#include "support/group_helpers.h"
#include "support/ws_helpers.h"

namespace mpim {
namespace {

using testing::Account;
using testing::AddMembers;
using testing::ApiResponse;
using testing::Arr;
using testing::GroupRef;
using testing::Int;
using testing::IsError;
using testing::IsErrorReply;
using testing::IsGroupObject;
using testing::IsMessage;
using testing::IsOkReply;
using testing::JsonString;
using testing::Ms;
using testing::MsgOf;
using testing::Obj;
using testing::RemoveMember;
using testing::Seqs;
using testing::SetRole;
using testing::Str;
using testing::SystemMessages;
using testing::WsConn;

namespace json = boost::json;

constexpr int kGroupMax = 20;
// A group id no group has (store ids start at 1001 and grow by one).
constexpr const char* kUnknownGroup = "987654321012";

struct GroupsConfig {
  static auto Env() {
    return testing::WsEnv({{"MPIM_LIMITS_SEND_PER_SEC", "100000"},
                           {"MPIM_LIMITS_SEND_BURST", "100000"},
                           {"MPIM_LIMITS_GROUP_MAX_MEMBERS", std::to_string(kGroupMax)}});
  }
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Returns once the wall clock is past `ts_ms`, so that the next join gets a
// later joined_at than one stamped `ts_ms` (same host, same clock).
void PassMillisecond(int64_t ts_ms) {
  while (NowMs() <= ts_ms) std::this_thread::sleep_for(Ms(1));
}

// The user ids of a member listing, in order.
std::vector<std::string> MemberIds(const std::vector<json::object>& members) {
  std::vector<std::string> out;
  for (const auto& m : members) out.push_back(Str(*Obj(m, "user"), "user_id"));
  return out;
}

// The member entry of `user_id`, or an empty object.
json::object MemberOf(const std::vector<json::object>& members, const std::string& user_id) {
  for (const auto& m : members) {
    if (Str(*Obj(m, "user"), "user_id") == user_id) return m;
  }
  return {};
}

bool NumericLess(const std::string& a, const std::string& b) {
  return a.size() != b.size() ? a.size() < b.size() : a < b;
}

class GroupsE2eTest : public testing::WsServerTest<GroupsConfig> {
 protected:
  GroupRef Create(const Account& owner, const std::vector<std::string>& members = {},
                  bool is_public = false, const std::string& name = "team") {
    return testing::CreateGroup(*api_, owner.token(), name, members, is_public);
  }
  json::object Get(const Account& who, const GroupRef& g) {
    return testing::GetGroup(*api_, who.token(), g.group_id);
  }
  std::vector<json::object> Members(const Account& who, const GroupRef& g, int limit = 200) {
    return testing::AllMembers(*api_, who.token(), g.group_id, limit);
  }
  std::vector<json::object> History(const Account& who, const GroupRef& g, int64_t after = 0) {
    return testing::History(*api_, who.token(), g.conv_id, after);
  }
  // The ids of the caller's groups in GET /groups.
  std::vector<std::string> MyGroups(const Account& who) {
    ApiResponse r = api_->Get("/groups", who.token());
    const json::array* groups = r.json.is_object() ? Arr(r.json.as_object(), "groups") : nullptr;
    if (r.status != 200 || !groups) {
      ADD_FAILURE() << "GET /groups: " << r.Describe();
      return {};
    }
    std::vector<std::string> out;
    for (const auto& g : *groups) {
      EXPECT_TRUE(IsGroupObject(g));
      EXPECT_TRUE(g.is_object() && g.as_object().contains("role")) << json::serialize(g);
      out.push_back(g.is_object() ? Str(g.as_object(), "group_id") : "");
    }
    return out;
  }
  // The next `conv` event for `conv_id` with `event` (other conv events are
  // skipped); false with a recorded failure on timeout.
  static bool NextConv(WsConn& ws, const std::string& conv_id, const std::string& event) {
    for (;;) {
      auto e = ws.NextEvent("conv");
      if (!e) {
        ADD_FAILURE() << "no conv " << event << " event for " << conv_id << ": " << ws.last_error();
        return false;
      }
      EXPECT_FALSE(e->contains("rid")) << json::serialize(*e);
      if (Str(*e, "conv_id") == conv_id && Str(*e, "event") == event) return true;
    }
  }
  // The next system message event of `conv_id` about `event` of `user`
  // (see IsSystemEvent); other msg events of the conversation are skipped.
  static json::object NextSystem(WsConn& ws, const std::string& conv_id, const std::string& event,
                                 const std::string& user) {
    for (;;) {
      auto m = ws.NextMsg(conv_id);
      if (!m) {
        ADD_FAILURE() << "no system " << event << " msg about " << user << " in " << conv_id << ": "
                      << ws.last_error();
        return {};
      }
      json::object msg = MsgOf(*m);
      if (testing::IsSystemEvent(msg, event, user)) return msg;
    }
  }
};

TEST_F(GroupsE2eTest, CreateAnswersIdsAndTheCreatorOwnsTheGroup) {
  Account a = NewAccount("cr_a");
  Account b = NewAccount("cr_b");
  // The creator and repeats in `members` are ignored.
  GroupRef g = Create(a, {b.id(), a.id(), b.id()}, false, "Crew");
  ASSERT_FALSE(g.group_id.empty());
  json::object got = Get(a, g);
  EXPECT_EQ(Str(got, "group_id"), g.group_id);
  EXPECT_EQ(Str(got, "conv_id"), g.conv_id);
  EXPECT_EQ(Str(got, "name"), "Crew");
  EXPECT_EQ(Str(got, "owner"), a.id());
  EXPECT_EQ(got["public"], json::value(false));
  EXPECT_EQ(Int(got, "member_count"), 2);
  EXPECT_EQ(Str(got, "role"), "owner");
  EXPECT_EQ(Str(Get(b, g), "role"), "member");
  auto members = Members(a, g);
  EXPECT_EQ(members.size(), 2u);
  EXPECT_EQ(Str(MemberOf(members, a.id()), "role"), "owner");
  EXPECT_EQ(Str(MemberOf(members, b.id()), "role"), "member");
  // The group's conversation exists and shows a system message.
  auto history = History(a, g);
  ASSERT_FALSE(history.empty());
  for (const auto& m : history) {
    EXPECT_TRUE(IsMessage(m));
    EXPECT_EQ(Str(m, "type"), "system") << json::serialize(m);
    EXPECT_EQ(Str(*Obj(m, "to"), "group"), g.group_id) << json::serialize(m);
  }
  EXPECT_EQ(Seqs(history).front(), 1);
  EXPECT_EQ(SystemMessages(history, "created").size(), 1u) << json::serialize(history.front());

  // Public and 64-character names.
  GroupRef pub = Create(a, {}, true, std::string(64, 'n'));
  ASSERT_FALSE(pub.group_id.empty());
  json::object pub_got = Get(a, pub);
  EXPECT_EQ(pub_got["public"], json::value(true));
  EXPECT_EQ(Int(pub_got, "member_count"), 1);
  EXPECT_NE(pub.group_id, g.group_id);
}

TEST_F(GroupsE2eTest, CreateRefusesBadInputAndCreatesNothing) {
  Account a = NewAccount("crx_a");
  Account b = NewAccount("crx_b");
  const std::string tok = a.token();
  for (const char* body :
       {"{}", "{\"name\":\"\"}", "{\"name\":7}", "{\"name\":\"x\",\"public\":\"yes\"}",
        "{\"name\":\"x\",\"members\":\"1001\"}", "{\"name\":\"x\",\"members\":[1001]}",
        "{\"name\":\"x\",\"members\":[\"abc\"]}", "[]", "not json"}) {
    EXPECT_TRUE(IsError(api_->Post("/groups", body, tok), 400, "invalid_argument")) << body;
  }
  EXPECT_TRUE(
      IsError(api_->Post("/groups", "{\"name\":" + JsonString(std::string(65, 'n')) + "}", tok),
              400, "invalid_argument"));
  // An unknown member: 404 and no group.
  EXPECT_TRUE(IsError(api_->Post("/groups",
                                 "{\"name\":\"x\",\"members\":[" + JsonString(b.id()) + ",\"" +
                                     kUnknownGroup + "\"]}",
                                 tok),
                      404, "not_found"));
  EXPECT_TRUE(MyGroups(a).empty());
  EXPECT_TRUE(MyGroups(b).empty());
  EXPECT_TRUE(IsError(api_->Post("/groups", "{\"name\":\"x\"}"), 401, "unauthenticated"));

  // limits.group_max_members counts the creator: 20 in all is fine, 21 not.
  auto accounts = testing::RegisterMany(port(), "crx_m", kGroupMax, 4, false);
  std::vector<std::string> ids;
  for (const auto& acc : accounts) ids.push_back(acc.id());
  EXPECT_TRUE(IsError(
      api_->Post("/groups", "{\"name\":\"big\",\"members\":" + testing::IdsJson(ids) + "}", tok),
      400, "invalid_argument"));
  EXPECT_TRUE(MyGroups(a).empty());
  ids.pop_back();
  GroupRef full = Create(a, ids);
  ASSERT_FALSE(full.group_id.empty());
  EXPECT_EQ(Int(Get(a, full), "member_count"), kGroupMax);
  // Growing past the limit through the member list is refused too.
  EXPECT_TRUE(IsError(AddMembers(*api_, tok, full.group_id, {b.id()}), 400, "invalid_argument"));
  EXPECT_EQ(Int(Get(a, full), "member_count"), kGroupMax);
}

TEST_F(GroupsE2eTest, GetShowsMembersAnyGroupAndOthersOnlyPublicOnes) {
  Account a = NewAccount("get_a");
  Account b = NewAccount("get_b");
  Account out = NewAccount("get_out");
  GroupRef priv = Create(a, {b.id()}, false, "private one");
  GroupRef pub = Create(a, {}, true, "public one");
  ASSERT_FALSE(priv.group_id.empty() || pub.group_id.empty());
  EXPECT_EQ(Str(Get(b, priv), "name"), "private one");
  EXPECT_TRUE(
      IsError(api_->Get("/groups/" + priv.group_id, out.token()), 403, "permission_denied"));
  json::object seen = Get(out, pub);
  EXPECT_EQ(Str(seen, "name"), "public one");
  EXPECT_FALSE(seen.contains("role")) << "a non-member has no role: " << json::serialize(seen);
  EXPECT_TRUE(
      IsError(api_->Get(std::string("/groups/") + kUnknownGroup, a.token()), 404, "not_found"));
  for (const char* bad : {"abc", "0", "-5", "12x"}) {
    EXPECT_TRUE(
        IsError(api_->Get(std::string("/groups/") + bad, a.token()), 400, "invalid_argument"))
        << bad;
  }
  EXPECT_TRUE(IsError(api_->Get("/groups/" + pub.group_id), 401, "unauthenticated"));

  // GET /groups: the caller's groups only (not public groups they are not in).
  auto mine = MyGroups(a);
  std::sort(mine.begin(), mine.end());
  std::vector<std::string> want{priv.group_id, pub.group_id};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(mine, want);
  EXPECT_EQ(MyGroups(b), std::vector<std::string>{priv.group_id});
  EXPECT_TRUE(MyGroups(out).empty());
}

TEST_F(GroupsE2eTest, MembersArePagedByUserId) {
  Account owner = NewAccount("pg_o");
  auto others = testing::RegisterMany(port(), "pg_m", 6, 3, false);
  std::vector<std::string> ids;
  for (const auto& o : others) ids.push_back(o.id());
  // Created in reverse order so that the join order is not the id order.
  std::vector<std::string> reversed(ids.rbegin(), ids.rend());
  GroupRef g = Create(owner, reversed, false);
  ASSERT_FALSE(g.group_id.empty());
  ids.push_back(owner.id());
  std::sort(ids.begin(), ids.end(), NumericLess);

  std::vector<std::string> paged;
  std::string after;
  std::vector<bool> more;
  for (int page = 0; page < 5; ++page) {
    std::string target = "/groups/" + g.group_id + "/members?limit=3";
    if (!after.empty()) target += "&after=" + after;
    ApiResponse r = api_->Get(target, owner.token());
    ASSERT_EQ(r.status, 200) << r.Describe();
    const json::array* members = Arr(r.json.as_object(), "members");
    ASSERT_TRUE(members) << r.body;
    EXPECT_LE(members->size(), 3u);
    for (const auto& m : *members) {
      const json::object& e = m.as_object();
      ASSERT_TRUE(Obj(e, "user")) << json::serialize(e);
      EXPECT_TRUE(testing::IsUserObject(e.at("user")));
      EXPECT_GT(Int(e, "joined_at"), 0) << json::serialize(e);
      const std::string id = Str(*Obj(e, "user"), "user_id");
      EXPECT_EQ(Str(e, "role"), id == owner.id() ? "owner" : "member");
      paged.push_back(id);
      after = id;
    }
    more.push_back(r.json.as_object().at("has_more").as_bool());
    if (!more.back()) break;
  }
  EXPECT_EQ(paged, ids);
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));

  Account out = NewAccount("pg_x");
  const std::string base = "/groups/" + g.group_id + "/members";
  EXPECT_TRUE(IsError(api_->Get(base, out.token()), 403, "permission_denied"));
  for (const char* q : {"?limit=0", "?limit=201", "?limit=x", "?after=abc", "?after=0"}) {
    EXPECT_TRUE(IsError(api_->Get(base + q, owner.token()), 400, "invalid_argument")) << q;
  }
  EXPECT_TRUE(
      IsError(api_->Get(std::string("/groups/") + kUnknownGroup + "/members", owner.token()), 404,
              "not_found"));
  // Anyone may list the members of a public group.
  GroupRef pub = Create(owner, {others[0].id()}, true);
  ASSERT_FALSE(pub.group_id.empty());
  EXPECT_EQ(Members(out, pub).size(), 2u);
}

TEST_F(GroupsE2eTest, AddingMembersByRoleAndSelfJoiningPublicGroups) {
  Account owner = NewAccount("ad_o");
  Account admin = NewAccount("ad_a");
  Account member = NewAccount("ad_m");
  Account c = NewAccount("ad_c");
  Account d = NewAccount("ad_d");
  Account e = NewAccount("ad_e");
  GroupRef g = Create(owner, {admin.id(), member.id()});
  ASSERT_FALSE(g.group_id.empty());
  ASSERT_EQ(SetRole(*api_, owner.token(), g.group_id, admin.id(), "admin").status, 200);

  ApiResponse r = AddMembers(*api_, admin.token(), g.group_id, {c.id()});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json, json::parse("{\"added\":[" + JsonString(c.id()) + "]}"));
  // A plain member cannot add; nor can anyone add themselves to a private group.
  EXPECT_TRUE(
      IsError(AddMembers(*api_, member.token(), g.group_id, {d.id()}), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(AddMembers(*api_, d.token(), g.group_id, {d.id()}), 403, "permission_denied"));
  // Everyone requested already a member: 409; a mix adds the new ones only.
  EXPECT_TRUE(IsError(AddMembers(*api_, owner.token(), g.group_id, {c.id(), member.id()}), 409,
                      "already_exists"));
  r = AddMembers(*api_, owner.token(), g.group_id, {c.id(), d.id(), member.id()});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json, json::parse("{\"added\":[" + JsonString(d.id()) + "]}"));
  // An unknown user: 404 and nobody added.
  EXPECT_TRUE(IsError(AddMembers(*api_, owner.token(), g.group_id, {e.id(), kUnknownGroup}), 404,
                      "not_found"));
  EXPECT_TRUE(MemberOf(Members(owner, g), e.id()).empty());
  EXPECT_EQ(Int(Get(owner, g), "member_count"), 5);
  for (const char* body : {"{}", "{\"user_ids\":\"x\"}", "{\"user_ids\":[5]}"}) {
    EXPECT_TRUE(IsError(api_->Post("/groups/" + g.group_id + "/members", body, owner.token()), 400,
                        "invalid_argument"))
        << body;
  }
  EXPECT_TRUE(IsError(AddMembers(*api_, owner.token(), kUnknownGroup, {e.id()}), 404, "not_found"));

  // Public group: anyone may add themselves, and only themselves.
  GroupRef pub = Create(owner, {}, true);
  ASSERT_FALSE(pub.group_id.empty());
  r = AddMembers(*api_, e.token(), pub.group_id, {e.id()});
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json, json::parse("{\"added\":[" + JsonString(e.id()) + "]}"));
  EXPECT_EQ(Str(Get(e, pub), "role"), "member");
  EXPECT_TRUE(IsError(AddMembers(*api_, e.token(), pub.group_id, {e.id()}), 409, "already_exists"));
  EXPECT_TRUE(
      IsError(AddMembers(*api_, c.token(), pub.group_id, {d.id()}), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(AddMembers(*api_, e.token(), pub.group_id, {d.id()}), 403, "permission_denied"))
      << "a plain member of a public group adds only themselves";
  EXPECT_EQ(Int(Get(owner, pub), "member_count"), 2);
}

TEST_F(GroupsE2eTest, RemovingAndLeavingByRole) {
  Account owner = NewAccount("rm_o");
  Account admin = NewAccount("rm_a");
  Account admin2 = NewAccount("rm_a2");
  Account m1 = NewAccount("rm_m1");
  Account m2 = NewAccount("rm_m2");
  Account m3 = NewAccount("rm_m3");
  Account out = NewAccount("rm_x");
  GroupRef g = Create(owner, {admin.id(), admin2.id(), m1.id(), m2.id(), m3.id()});
  ASSERT_FALSE(g.group_id.empty());
  ASSERT_EQ(SetRole(*api_, owner.token(), g.group_id, admin.id(), "admin").status, 200);
  ASSERT_EQ(SetRole(*api_, owner.token(), g.group_id, admin2.id(), "admin").status, 200);
  const std::string gid = g.group_id;

  EXPECT_TRUE(IsError(RemoveMember(*api_, m1.token(), gid, m2.id()), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(RemoveMember(*api_, admin.token(), gid, admin2.id()), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(RemoveMember(*api_, admin.token(), gid, owner.id()), 403, "permission_denied"));
  EXPECT_TRUE(IsError(RemoveMember(*api_, out.token(), gid, m1.id()), 403, "permission_denied"));
  EXPECT_EQ(RemoveMember(*api_, admin.token(), gid, m1.id()).status, 204);
  EXPECT_EQ(RemoveMember(*api_, m2.token(), gid, m2.id()).status, 204) << "leaving";
  EXPECT_EQ(RemoveMember(*api_, owner.token(), gid, admin2.id()).status, 204);
  EXPECT_TRUE(IsError(RemoveMember(*api_, owner.token(), gid, m1.id()), 404, "not_found"));
  EXPECT_TRUE(IsError(RemoveMember(*api_, owner.token(), gid, out.id()), 404, "not_found"));
  EXPECT_TRUE(IsError(RemoveMember(*api_, owner.token(), gid, "abc"), 400, "invalid_argument"));
  auto ids = MemberIds(Members(owner, g));
  std::sort(ids.begin(), ids.end());
  std::vector<std::string> want{owner.id(), admin.id(), m3.id()};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(ids, want);
  EXPECT_EQ(Int(Get(owner, g), "member_count"), 3);
  // The removed and departed see the group no more.
  EXPECT_TRUE(MyGroups(m1).empty());
  EXPECT_TRUE(MyGroups(m2).empty());
  EXPECT_TRUE(IsError(api_->Get("/groups/" + gid, m1.token()), 403, "permission_denied"));
}

TEST_F(GroupsE2eTest, OnlyTheOwnerChangesRoles) {
  Account owner = NewAccount("ro_o");
  Account a = NewAccount("ro_a");
  Account m = NewAccount("ro_m");
  Account out = NewAccount("ro_x");
  GroupRef g = Create(owner, {a.id(), m.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);

  ApiResponse r = SetRole(*api_, owner.token(), g.group_id, a.id(), "admin");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json, json::parse("{\"user_id\":" + JsonString(a.id()) + ",\"role\":\"admin\"}"));
  EXPECT_EQ(Str(Get(a, g), "role"), "admin");
  EXPECT_EQ(Str(MemberOf(Members(owner, g), a.id()), "role"), "admin");
  NextConv(*wa, g.conv_id, "updated");
  auto changed = SystemMessages(History(owner, g), "role_changed", a.id());
  ASSERT_EQ(changed.size(), 1u);
  EXPECT_EQ(Str(*Obj(changed[0], "body"), "by"), owner.id());

  EXPECT_TRUE(
      IsError(SetRole(*api_, a.token(), g.group_id, m.id(), "admin"), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(SetRole(*api_, m.token(), g.group_id, m.id(), "admin"), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(SetRole(*api_, out.token(), g.group_id, m.id(), "admin"), 403, "permission_denied"));
  for (const char* role : {"owner", "boss", ""}) {
    EXPECT_TRUE(
        IsError(SetRole(*api_, owner.token(), g.group_id, m.id(), role), 400, "invalid_argument"))
        << role;
  }
  EXPECT_TRUE(
      IsError(SetRole(*api_, owner.token(), g.group_id, out.id(), "admin"), 404, "not_found"));
  EXPECT_EQ(Str(Get(m, g), "role"), "member");
  r = SetRole(*api_, owner.token(), g.group_id, a.id(), "member");
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(Str(r.json.as_object(), "role"), "member");
  EXPECT_EQ(Str(Get(a, g), "role"), "member");
  NextConv(*wa, g.conv_id, "updated");
}

TEST_F(GroupsE2eTest, OwnerLeavingHandsOverToTheOldestAdminElseOldestMemberAndLastOutDeletes) {
  // Registered W, O, X, Y, Z (ids ascending); they join Z, Y, X, W, so the
  // oldest by joining is never the smallest id.
  Account w = NewAccount("ow_w");
  Account o = NewAccount("ow_o");
  Account x = NewAccount("ow_x");
  Account y = NewAccount("ow_y");
  Account z = NewAccount("ow_z");
  GroupRef g = Create(o);
  ASSERT_FALSE(g.group_id.empty());
  const std::string gid = g.group_id;
  for (const Account* joiner : {&z, &y, &x, &w}) {
    ASSERT_EQ(AddMembers(*api_, o.token(), gid, {joiner->id()}).status, 200);
    PassMillisecond(Int(MemberOf(Members(o, g), joiner->id()), "joined_at"));
  }
  ASSERT_EQ(SetRole(*api_, o.token(), gid, x.id(), "admin").status, 200);
  ASSERT_EQ(SetRole(*api_, o.token(), gid, y.id(), "admin").status, 200);
  // Opened after the role changes, so that their conv events are not seen.
  std::map<std::string, std::unique_ptr<WsConn>> ws;
  for (const Account* heir : {&y, &x, &z, &w}) {
    ws[heir->id()] = OpenWs(heir->token());
    ASSERT_TRUE(ws[heir->id()]);
  }

  struct Step {
    const Account* leaver;
    const Account* next_owner;
  };
  for (Step step : {Step{&o, &y}, Step{&y, &x}, Step{&x, &z}, Step{&z, &w}}) {
    SCOPED_TRACE("leaver " + step.leaver->username);
    ApiResponse left = RemoveMember(*api_, step.leaver->token(), gid, step.leaver->id());
    ASSERT_EQ(left.status, 204) << left.Describe();
    json::object got = Get(*step.next_owner, g);
    EXPECT_EQ(Str(got, "owner"), step.next_owner->id());
    EXPECT_EQ(Str(got, "role"), "owner");
    EXPECT_EQ(Str(MemberOf(Members(*step.next_owner, g), step.next_owner->id()), "role"), "owner");
    auto history = History(*step.next_owner, g);
    auto owner_changed = SystemMessages(history, "owner_changed", step.next_owner->id());
    EXPECT_EQ(owner_changed.size(), 1u);
    EXPECT_EQ(SystemMessages(history, "left", step.leaver->id()).size(), 1u);
    // The new owner's role changed: its sessions hear "updated".
    NextConv(*ws[step.next_owner->id()], g.conv_id, "updated");
  }
  // W is the last member: leaving deletes the group.
  EXPECT_EQ(Int(Get(w, g), "member_count"), 1);
  ASSERT_EQ(RemoveMember(*api_, w.token(), gid, w.id()).status, 204);
  EXPECT_TRUE(IsError(api_->Get("/groups/" + gid, w.token()), 404, "not_found"));
  EXPECT_TRUE(MyGroups(w).empty());
  EXPECT_TRUE(IsError(AddMembers(*api_, w.token(), gid, {w.id()}), 404, "not_found"));
}

TEST_F(GroupsE2eTest, MembershipChangesPostSystemMessagesAndConvEvents) {
  Account a = NewAccount("ev_a");
  Account b = NewAccount("ev_b");
  Account c = NewAccount("ev_c");
  GroupRef g = Create(a, {}, true);
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  auto wb1 = OpenWs(b.token());
  auto wb2 = OpenWs(Login(b).access_token);
  auto wc = OpenWs(c.token());
  ASSERT_TRUE(wa && wb1 && wb2 && wc);

  // Added by the owner: every session of b hears "joined"; a sees the message.
  ASSERT_EQ(AddMembers(*api_, a.token(), g.group_id, {b.id()}).status, 200);
  NextConv(*wb1, g.conv_id, "joined");
  NextConv(*wb2, g.conv_id, "joined");
  json::object joined = NextSystem(*wa, g.conv_id, "joined", b.id());
  ASSERT_FALSE(joined.empty());
  EXPECT_TRUE(IsMessage(joined));
  EXPECT_EQ(Str(*Obj(joined, "body"), "by"), a.id());
  // The new member's sessions get the group's messages from now on.
  EXPECT_EQ(Int(NextSystem(*wb1, g.conv_id, "joined", b.id()), "seq"), Int(joined, "seq"));

  // Self-join of a public group.
  ASSERT_EQ(AddMembers(*api_, c.token(), g.group_id, {c.id()}).status, 200);
  NextConv(*wc, g.conv_id, "joined");
  json::object c_joined = NextSystem(*wb2, g.conv_id, "joined", c.id());
  ASSERT_FALSE(c_joined.empty());
  EXPECT_EQ(Str(*Obj(c_joined, "body"), "by"), c.id());

  // Leaving: "left" to b's sessions, the message to the others.
  ASSERT_EQ(RemoveMember(*api_, b.token(), g.group_id, b.id()).status, 204);
  NextConv(*wb1, g.conv_id, "left");
  NextConv(*wb2, g.conv_id, "left");
  json::object left = NextSystem(*wc, g.conv_id, "left", b.id());
  ASSERT_FALSE(left.empty());
  EXPECT_EQ(Str(*Obj(left, "body"), "by"), b.id());

  // Removal: "removed" to c.
  ASSERT_EQ(RemoveMember(*api_, a.token(), g.group_id, c.id()).status, 204);
  NextConv(*wc, g.conv_id, "removed");
  json::object removed = NextSystem(*wa, g.conv_id, "removed", c.id());
  ASSERT_FALSE(removed.empty());
  EXPECT_EQ(Str(*Obj(removed, "body"), "by"), a.id());

  // History shows them all, in this order, with consecutive seqs.
  auto history = History(a, g);
  std::vector<std::string> events;
  for (size_t i = 0; i < history.size(); ++i) {
    EXPECT_EQ(Int(history[i], "seq"), static_cast<int64_t>(i + 1));
    EXPECT_TRUE(IsMessage(history[i]));
    events.push_back(Str(*Obj(history[i], "body"), "event"));
  }
  EXPECT_EQ(events, (std::vector<std::string>{"created", "joined", "joined", "left", "removed"}));
  // The owner's own session got no conv events for others' changes.
  EXPECT_TRUE(wa->Drain("conv", Ms(0)).empty());
}

TEST_F(GroupsE2eTest, RemovalStopsDeliveryAndHistoryEndsAtTheLeaveSeq) {
  Account a = NewAccount("st_a");
  Account b = NewAccount("st_b");
  Account c = NewAccount("st_c");
  GroupRef g = Create(a, {b.id(), c.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  auto wc = OpenWs(c.token());
  ASSERT_TRUE(wa && wb && wc);
  auto before = testing::SendGroupMany(*wa, g.group_id, "before", 3);
  ASSERT_EQ(before.size(), 3u);
  for (WsConn* ws : {wb.get(), wc.get()}) {
    for (const auto& r : before) {
      auto m = ws->NextMsg(g.conv_id);
      ASSERT_TRUE(m) << ws->last_error();
      EXPECT_EQ(Int(MsgOf(*m), "seq"), Int(r, "seq"));
    }
  }

  ASSERT_EQ(RemoveMember(*api_, a.token(), g.group_id, b.id()).status, 204);
  NextConv(*wb, g.conv_id, "removed");
  const json::object removed = NextSystem(*wc, g.conv_id, "removed", b.id());
  const int64_t leave_seq = Int(removed, "seq");
  ASSERT_GT(leave_seq, Int(before.back(), "seq"));
  auto during = testing::SendGroupMany(*wa, g.group_id, "during", 3);
  ASSERT_EQ(during.size(), 3u);
  for (const auto& r : during) {
    auto m = wc->NextMsg(g.conv_id);
    ASSERT_TRUE(m) << wc->last_error();
    EXPECT_EQ(Int(MsgOf(*m), "seq"), Int(r, "seq"));
  }
  // (The "removed" message itself may or may not reach b: it is at the edge
  // of b's span.)
  for (const auto& m : wb->Drain("msg", Ms(500))) {
    EXPECT_LE(Int(MsgOf(m), "seq"), leave_seq)
        << "a removed member still gets messages: " << json::serialize(m);
  }

  // b's history stops at the leave seq; sync does too (or is refused).
  auto b_history = History(b, g);
  ASSERT_FALSE(b_history.empty());
  EXPECT_LE(Int(b_history.back(), "seq"), leave_seq);
  std::set<int64_t> b_seqs;
  for (const auto& m : b_history) b_seqs.insert(Int(m, "seq"));
  for (const auto& r : before) EXPECT_TRUE(b_seqs.count(Int(r, "seq"))) << Int(r, "seq");
  auto sync = wb->Request(
      json::object{{"op", "sync"}, {"conv_id", g.conv_id}, {"after_seq", 0}, {"limit", 200}});
  ASSERT_TRUE(sync);
  if (!IsErrorReply(sync, "permission_denied")) {
    ASSERT_TRUE(IsOkReply(sync));
    for (const auto& m : *Arr(*sync, "messages")) {
      EXPECT_LE(Int(m.as_object(), "seq"), leave_seq) << json::serialize(m);
    }
  }
  EXPECT_TRUE(IsErrorReply(wb->Request(testing::GroupTextSend(g.group_id, "gone", "x")),
                           "permission_denied"));

  // Back in: the new span starts at the new join; the gap stays hidden.
  ASSERT_EQ(AddMembers(*api_, a.token(), g.group_id, {b.id()}).status, 200);
  NextConv(*wb, g.conv_id, "joined");
  auto after = testing::SendGroupMany(*wa, g.group_id, "after", 2);
  ASSERT_EQ(after.size(), 2u);
  // (Whether the earlier span shows again is not said; the gap never does.)
  b_seqs.clear();
  for (const auto& m : History(b, g)) b_seqs.insert(Int(m, "seq"));
  for (const auto& r : during) EXPECT_FALSE(b_seqs.count(Int(r, "seq"))) << Int(r, "seq");
  for (const auto& r : after) EXPECT_TRUE(b_seqs.count(Int(r, "seq"))) << Int(r, "seq");
  for (const auto& r : after) {
    auto m = wb->NextMsg(g.conv_id);
    ASSERT_TRUE(m) << wb->last_error();
    if (Str(MsgOf(*m), "type") == "system") m = wb->NextMsg(g.conv_id);  // its own "joined"
    ASSERT_TRUE(m) << wb->last_error();
    EXPECT_EQ(Int(MsgOf(*m), "seq"), Int(r, "seq"));
  }
}

TEST_F(GroupsE2eTest, FormerMemberSeesNeitherTheGapBetweenSpansNorAfter) {
  Account a = NewAccount("gap_a");
  Account b = NewAccount("gap_b");
  GroupRef g = Create(a, {b.id()});
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  auto wb = OpenWs(b.token());
  ASSERT_TRUE(wa && wb);
  auto one = testing::SendGroupMany(*wa, g.group_id, "one", 1);
  ASSERT_EQ(RemoveMember(*api_, b.token(), g.group_id, b.id()).status, 204);
  auto gap = testing::SendGroupMany(*wa, g.group_id, "gap", 2);
  ASSERT_EQ(AddMembers(*api_, a.token(), g.group_id, {b.id()}).status, 200);
  auto two = testing::SendGroupMany(*wa, g.group_id, "two", 1);
  ASSERT_EQ(RemoveMember(*api_, b.token(), g.group_id, b.id()).status, 204);
  auto after = testing::SendGroupMany(*wa, g.group_id, "after", 1);
  ASSERT_TRUE(one.size() == 1 && gap.size() == 2 && two.size() == 1 && after.size() == 1);

  std::set<int64_t> seen;
  for (const auto& m : History(b, g)) seen.insert(Int(m, "seq"));
  EXPECT_TRUE(seen.count(Int(two[0], "seq"))) << "the last span is readable after leaving";
  for (const auto* out : {&gap[0], &gap[1], &after[0]}) {
    EXPECT_FALSE(seen.count(Int(*out, "seq")))
        << "seq " << Int(*out, "seq") << " of " << Str(*out, "conv_id") << " was not b's to see";
  }
  auto sync = wb->Request(
      json::object{{"op", "sync"}, {"conv_id", g.conv_id}, {"after_seq", 0}, {"limit", 200}});
  ASSERT_TRUE(sync);
  if (!IsErrorReply(sync, "permission_denied")) {
    ASSERT_TRUE(IsOkReply(sync));
    for (const auto& m : *Arr(*sync, "messages")) {
      const int64_t seq = Int(m.as_object(), "seq");
      EXPECT_TRUE(seq != Int(gap[0], "seq") && seq != Int(gap[1], "seq") &&
                  seq != Int(after[0], "seq"))
          << "sync showed " << json::serialize(m);
    }
  }
}

TEST_F(GroupsE2eTest, NewMemberSeesHistoryFromJoiningOnOnly) {
  Account a = NewAccount("nm_a");
  Account d = NewAccount("nm_d");
  GroupRef g = Create(a);
  ASSERT_FALSE(g.group_id.empty());
  auto wa = OpenWs(a.token());
  ASSERT_TRUE(wa);
  auto early = testing::SendGroupMany(*wa, g.group_id, "early", 3);
  ASSERT_EQ(early.size(), 3u);
  ASSERT_EQ(AddMembers(*api_, a.token(), g.group_id, {d.id()}).status, 200);
  auto late = testing::SendGroupMany(*wa, g.group_id, "late", 2);
  ASSERT_EQ(late.size(), 2u);

  auto history = History(d, g);
  ASSERT_EQ(history.size(), 3u) << "the join and the two later messages";
  EXPECT_TRUE(testing::IsSystemEvent(history[0], "joined", d.id())) << json::serialize(history[0]);
  EXPECT_EQ(Int(history[0], "seq"), Int(early.back(), "seq") + 1);
  EXPECT_EQ(Int(history[1], "seq"), Int(late[0], "seq"));
  EXPECT_EQ(Int(history[2], "seq"), Int(late[1], "seq"));
  // Paging backwards stops at the join too.
  ApiResponse r = api_->Get("/conversations/" + g.conv_id +
                                "/messages?before_seq=" + std::to_string(Int(history[0], "seq")),
                            d.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_TRUE(Arr(r.json.as_object(), "messages")->empty()) << r.body;

  auto wd = OpenWs(d.token());
  ASSERT_TRUE(wd);
  auto listed = testing::HelloConv(*wd, g.conv_id);
  ASSERT_TRUE(listed) << json::serialize(wd->hello());
  EXPECT_EQ(Int(*listed, "last_seq"), Int(late.back(), "seq"));
  EXPECT_EQ(Seqs(testing::SyncAll(*wd, g.conv_id, 0, 2)), Seqs(history));
  json::object conv = testing::FindConv(
      testing::ConversationList(api_->Get("/conversations", d.token())), g.conv_id);
  EXPECT_EQ(Str(conv, "type"), "group");
  ASSERT_TRUE(Obj(conv, "group")) << json::serialize(conv);
  EXPECT_TRUE(IsGroupObject(conv.at("group")));
  EXPECT_EQ(Int(conv, "last_seq"), Int(late.back(), "seq"));
}

TEST_F(GroupsE2eTest, NonMembersAreRefusedSendReadSyncHistoryAndSearch) {
  Account a = NewAccount("nx_a");
  Account b = NewAccount("nx_b");
  Account e = NewAccount("nx_e");
  for (bool is_public : {false, true}) {
    SCOPED_TRACE(is_public ? "public" : "private");
    GroupRef g = Create(a, {b.id()}, is_public);
    ASSERT_FALSE(g.group_id.empty());
    const size_t history_size = History(b, g).size();
    auto we = OpenWs(e.token());
    ASSERT_TRUE(we);
    EXPECT_TRUE(IsErrorReply(we->Request(testing::GroupTextSend(g.group_id, "nx", "hi")),
                             "permission_denied"));
    EXPECT_TRUE(IsError(api_->Post("/messages",
                                   "{\"to\":{\"group\":" + JsonString(g.group_id) +
                                       "},\"client_msg_id\":\"nx\",\"body\":{\"text\":\"hi\"}}",
                                   e.token()),
                        403, "permission_denied"));
    EXPECT_TRUE(
        IsErrorReply(we->Request(json::object{{"op", "read"}, {"conv_id", g.conv_id}, {"seq", 1}}),
                     "permission_denied"));
    EXPECT_TRUE(
        IsError(api_->Post("/conversations/" + g.conv_id + "/read", "{\"seq\":1}", e.token()), 403,
                "permission_denied"));
    EXPECT_TRUE(IsErrorReply(
        we->Request(json::object{{"op", "sync"}, {"conv_id", g.conv_id}, {"after_seq", 0}}),
        "permission_denied"));
    EXPECT_TRUE(IsError(api_->Get("/conversations/" + g.conv_id + "/messages", e.token()), 403,
                        "permission_denied"));
    EXPECT_TRUE(
        IsError(testing::Search(*api_, e.token(), "hello", g.conv_id), 403, "permission_denied"));
    EXPECT_TRUE(IsError(api_->Patch("/conversations/" + g.conv_id, "{\"muted\":true}", e.token()),
                        403, "permission_denied"));
    // Nothing reached the conversation from the refused sends.
    EXPECT_EQ(History(b, g).size(), history_size);
  }
  // An unknown group: not_found.
  auto we = OpenWs(e.token());
  ASSERT_TRUE(we);
  EXPECT_TRUE(
      IsErrorReply(we->Request(testing::GroupTextSend(kUnknownGroup, "nx2", "hi")), "not_found"));
  EXPECT_TRUE(
      IsError(api_->Get(std::string("/conversations/g:") + kUnknownGroup + "/messages", e.token()),
              404, "not_found"));
}

TEST_F(GroupsE2eTest, PatchByOwnerOrAdminDeleteByOwnerOnly) {
  Account owner = NewAccount("pd_o");
  Account admin = NewAccount("pd_a");
  Account member = NewAccount("pd_m");
  Account out = NewAccount("pd_x");
  GroupRef g = Create(owner, {admin.id(), member.id()}, true, "before");
  ASSERT_FALSE(g.group_id.empty());
  ASSERT_EQ(SetRole(*api_, owner.token(), g.group_id, admin.id(), "admin").status, 200);
  const std::string path = "/groups/" + g.group_id;

  ApiResponse r = api_->Patch(path, "{\"name\":\"renamed\"}", owner.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_TRUE(IsGroupObject(r.json));
  EXPECT_EQ(Str(r.json.as_object(), "name"), "renamed");
  r = api_->Patch(path, "{\"public\":false}", admin.token());
  ASSERT_EQ(r.status, 200) << r.Describe();
  EXPECT_EQ(r.json.as_object()["public"], json::value(false));
  EXPECT_EQ(Str(r.json.as_object(), "name"), "renamed");
  EXPECT_TRUE(IsError(api_->Patch(path, "{\"name\":\"member\"}", member.token()), 403,
                      "permission_denied"));
  EXPECT_TRUE(
      IsError(api_->Patch(path, "{\"name\":\"outsider\"}", out.token()), 403, "permission_denied"));
  EXPECT_TRUE(
      IsError(api_->Patch(path, "{\"name\":\"\"}", owner.token()), 400, "invalid_argument"));
  EXPECT_TRUE(IsError(api_->Patch(path, "{\"public\":1}", owner.token()), 400, "invalid_argument"));
  EXPECT_EQ(Str(Get(member, g), "name"), "renamed");
  EXPECT_EQ(Get(member, g)["public"], json::value(false));
  // The rename is a system message.
  auto renamed = SystemMessages(History(member, g), "renamed");
  ASSERT_EQ(renamed.size(), 1u);
  EXPECT_EQ(Str(*Obj(renamed[0], "body"), "by"), owner.id()) << json::serialize(renamed[0]);

  EXPECT_TRUE(IsError(api_->Delete(path, admin.token()), 403, "permission_denied"));
  EXPECT_TRUE(IsError(api_->Delete(path, member.token()), 403, "permission_denied"));
  EXPECT_TRUE(IsError(api_->Delete(path, out.token()), 403, "permission_denied"));
  r = api_->Delete(path, owner.token());
  EXPECT_EQ(r.status, 204) << r.Describe();
  EXPECT_TRUE(IsError(api_->Get(path, owner.token()), 404, "not_found"));
  EXPECT_TRUE(IsError(api_->Get(path, member.token()), 404, "not_found"));
  EXPECT_TRUE(IsError(api_->Delete(path, owner.token()), 404, "not_found"));
  EXPECT_TRUE(MyGroups(owner).empty());
  EXPECT_TRUE(MyGroups(member).empty());
  EXPECT_TRUE(IsError(api_->Get("/conversations/" + g.conv_id + "/messages", owner.token()), 404,
                      "not_found"));
}

}  // namespace
}  // namespace mpim
