#include "support/group_helpers.h"

#include <atomic>
#include <boost/json/serialize.hpp>
#include <thread>

namespace mpim::testing {

namespace json = boost::json;

std::string IdsJson(const std::vector<std::string>& ids) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += JsonString(ids[i]);
  }
  return out + "]";
}

ApiResponse Put(ApiClient& api, const std::string& path, const std::string& body,
                const std::string& token) {
  return api.Call("PUT", "/api/v1" + path, body, token);
}

GroupRef CreateGroup(ApiClient& api, const std::string& token, const std::string& name,
                     const std::vector<std::string>& members, bool is_public) {
  std::string body =
      "{\"name\":" + JsonString(name) + ",\"public\":" + (is_public ? "true" : "false");
  if (!members.empty()) body += ",\"members\":" + IdsJson(members);
  body += "}";
  ApiResponse r = api.Post("/groups", body, token);
  if (r.status != 201 || !r.json.is_object()) {
    ADD_FAILURE() << "create group " << name << ": " << r.Describe();
    return {};
  }
  GroupRef g{Str(r.json.as_object(), "group_id"), Str(r.json.as_object(), "conv_id")};
  if (!IsDecimalId(g.group_id) || g.conv_id != "g:" + g.group_id) {
    ADD_FAILURE() << "create group answer is not {group_id, conv_id \"g:<id>\"}: " << r.body;
    return {};
  }
  return g;
}

ApiResponse AddMembers(ApiClient& api, const std::string& token, const std::string& group_id,
                       const std::vector<std::string>& user_ids) {
  return api.Post("/groups/" + group_id + "/members", "{\"user_ids\":" + IdsJson(user_ids) + "}",
                  token);
}

ApiResponse RemoveMember(ApiClient& api, const std::string& token, const std::string& group_id,
                         const std::string& user_id) {
  return api.Delete("/groups/" + group_id + "/members/" + user_id, token);
}

ApiResponse SetRole(ApiClient& api, const std::string& token, const std::string& group_id,
                    const std::string& user_id, const std::string& role) {
  return Put(api, "/groups/" + group_id + "/members/" + user_id + "/role",
             "{\"role\":" + JsonString(role) + "}", token);
}

::testing::AssertionResult IsGroupObject(const json::value& v) {
  if (!v.is_object()) return ::testing::AssertionFailure() << "not an object: " << v;
  const json::object& g = v.as_object();
  const json::value* pub = g.if_contains("public");
  const std::string id = Str(g, "group_id");
  bool ok = IsDecimalId(id) && Str(g, "conv_id") == "g:" + id && g.contains("name") &&
            g.at("name").is_string() && IsDecimalId(Str(g, "owner")) && pub && pub->is_bool() &&
            Int(g, "member_count") >= 1 && Int(g, "created_at") > 0;
  if (const json::value* role = g.if_contains("role")) {
    ok = ok && role->is_string() &&
         (role->as_string() == "owner" || role->as_string() == "admin" ||
          role->as_string() == "member");
  }
  if (!ok) {
    return ::testing::AssertionFailure()
           << "not a group object {group_id, conv_id, name, owner, public, member_count, "
              "created_at, role?}: "
           << json::serialize(g);
  }
  return ::testing::AssertionSuccess();
}

json::object GetGroup(ApiClient& api, const std::string& token, const std::string& group_id) {
  ApiResponse r = api.Get("/groups/" + group_id, token);
  if (r.status != 200 || !r.json.is_object()) {
    ADD_FAILURE() << "GET /groups/" << group_id << ": " << r.Describe();
    return {};
  }
  EXPECT_TRUE(IsGroupObject(r.json));
  return r.json.as_object();
}

namespace {

// Follows a paged listing ({<items_key>: [...], has_more}): GETs
// target(cursor) from an empty cursor on, and takes the next cursor from
// each item with cursor_of ("" for an item that breaks the listing's
// shape or order). Records a failure and stops on anything unexpected.
std::vector<json::object> FollowPages(
    ApiClient& api, const std::string& token, std::string_view items_key,
    const std::function<std::string(const std::string& cursor)>& target,
    const std::function<std::string(const json::object& item, const std::string& cursor)>&
        cursor_of) {
  std::vector<json::object> out;
  std::string cursor;
  for (int page = 0; page < 1000; ++page) {
    const std::string url = target(cursor);
    ApiResponse r = api.Get(url, token);
    const json::array* items = r.json.is_object() ? Arr(r.json.as_object(), items_key) : nullptr;
    const json::value* more =
        r.json.is_object() ? r.json.as_object().if_contains("has_more") : nullptr;
    if (r.status != 200 || !items || !more || !more->is_bool()) {
      ADD_FAILURE() << "GET " << url << ": " << r.Describe();
      return out;
    }
    for (const auto& item : *items) {
      std::string next = item.is_object() ? cursor_of(item.as_object(), cursor) : "";
      if (next.empty()) {
        ADD_FAILURE() << "GET " << url << ": unexpected item " << json::serialize(item);
        return out;
      }
      out.push_back(item.as_object());
      cursor = std::move(next);
    }
    if (!more->as_bool()) return out;
    if (items->empty()) {
      ADD_FAILURE() << "GET " << url << ": has_more with an empty page";
      return out;
    }
  }
  ADD_FAILURE() << items_key << ": too many pages";
  return out;
}

}  // namespace

std::vector<json::object> AllMembers(ApiClient& api, const std::string& token,
                                     const std::string& group_id, int limit) {
  return FollowPages(
      api, token, "members",
      [&](const std::string& after) {
        std::string t = "/groups/" + group_id + "/members?limit=" + std::to_string(limit);
        return after.empty() ? t : t + "&after=" + after;
      },
      [](const json::object& m, const std::string&) {
        const json::object* user = Obj(m, "user");
        return user ? Str(*user, "user_id") : std::string();
      });
}

std::vector<json::object> History(ApiClient& api, const std::string& token,
                                  const std::string& conv_id, int64_t after_seq) {
  return FollowPages(
      api, token, "messages",
      [&](const std::string& after) {
        return "/conversations/" + conv_id +
               "/messages?after_seq=" + (after.empty() ? std::to_string(after_seq) : after) +
               "&limit=200";
      },
      [after_seq](const json::object& m, const std::string& cursor) {
        const int64_t seq = Int(m, "seq");
        const int64_t before = cursor.empty() ? after_seq : std::stoll(cursor);
        return seq > before ? std::to_string(seq) : std::string();  // ascending
      });
}

json::array ConversationList(const ApiResponse& r) {
  if (r.status != 200 || !r.json.is_array()) {
    ADD_FAILURE() << "GET /conversations is not a 200 JSON array: " << r.Describe();
    return {};
  }
  return r.json.as_array();
}

json::object FindConv(const json::array& list, const std::string& conv_id) {
  for (const auto& c : list) {
    if (c.is_object() && Str(c.as_object(), "conv_id") == conv_id) return c.as_object();
  }
  ADD_FAILURE() << conv_id << " not listed in " << json::serialize(list);
  return {};
}

std::vector<std::string> ConvIds(const json::array& list) {
  std::vector<std::string> out;
  for (const auto& c : list) out.push_back(c.is_object() ? Str(c.as_object(), "conv_id") : "");
  return out;
}

ApiResponse Search(ApiClient& api, const std::string& token, const std::string& q,
                   const std::string& conv_id, int limit) {
  std::string target = "/search/messages?q=" + UrlEncode(q);
  if (!conv_id.empty()) target += "&conv_id=" + UrlEncode(conv_id);
  if (limit) target += "&limit=" + std::to_string(limit);
  return api.Get(target, token);
}

std::vector<std::string> SearchIds(const ApiResponse& r) {
  const json::array* msgs = r.json.is_object() ? Arr(r.json.as_object(), "messages") : nullptr;
  if (r.status != 200 || !msgs) {
    ADD_FAILURE() << "search is not 200 {messages}: " << r.Describe();
    return {};
  }
  std::vector<std::string> out;
  for (const auto& m : *msgs) {
    EXPECT_TRUE(IsMessage(m));
    out.push_back(m.is_object() ? Str(m.as_object(), "msg_id") : "");
  }
  return out;
}

bool PollUntil(const std::function<bool()>& probe, std::chrono::milliseconds deadline) {
  const auto end = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (probe()) return true;
    if (std::chrono::steady_clock::now() >= end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

json::object GroupTextSend(const std::string& group_id, const std::string& client_msg_id,
                           const std::string& text) {
  return json::object{{"op", "send"},
                      {"to", json::object{{"group", group_id}}},
                      {"client_msg_id", client_msg_id},
                      {"type", "text"},
                      {"body", json::object{{"text", text}}}};
}

std::vector<json::object> SendGroupMany(WsConn& ws, const std::string& group_id,
                                        const std::string& prefix, int n, int batch) {
  std::vector<json::object> replies;
  for (int start = 1; start <= n; start += batch) {
    std::vector<int64_t> rids;
    for (int i = start; i < start + batch && i <= n; ++i) {
      const std::string key = prefix + "-" + std::to_string(i);
      json::object f = GroupTextSend(group_id, key, key);
      const int64_t rid = ws.NextRid();
      f["rid"] = rid;
      if (!ws.Send(f)) {
        ADD_FAILURE() << ws.last_error();
        return replies;
      }
      rids.push_back(rid);
    }
    for (int64_t rid : rids) {
      auto r = ws.ReplyTo(rid, Ms(15000));
      if (auto ok = IsSendResult(r); !ok) {
        ADD_FAILURE() << "group send " << prefix << " rid " << rid << ": " << ok.message() << " "
                      << ws.last_error();
        return replies;
      }
      replies.push_back(*r);
    }
  }
  return replies;
}

std::vector<Account> RegisterMany(uint16_t port, std::string_view prefix, int n, int threads,
                                  bool login) {
  std::vector<std::string> names;
  for (int i = 0; i < n; ++i) names.push_back(UniqueName(prefix));
  std::vector<Account> out(static_cast<size_t>(n));
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      ApiClient api(port);
      for (int i = next.fetch_add(1); i < n; i = next.fetch_add(1)) {
        Account& a = out[static_cast<size_t>(i)];
        a.username = names[static_cast<size_t>(i)];
        a.password = std::string(kPassword);
        if (login) {
          a = api.NewAccount(a.username);
        } else {
          a.session.user_id = api.Register(a.username);
        }
      }
    });
  }
  for (auto& t : pool) t.join();
  return out;
}

std::vector<json::object> SystemMessages(const std::vector<json::object>& messages,
                                         std::string_view event, std::string_view user) {
  std::vector<json::object> out;
  for (const auto& m : messages) {
    if (IsSystemEvent(m, event, user)) out.push_back(m);
  }
  return out;
}

bool IsSystemEvent(const json::object& m, std::string_view event, std::string_view user) {
  const json::object* body = Obj(m, "body");
  if (Str(m, "type") != "system" || !body || Str(*body, "event") != event) return false;
  if (user.empty() || Str(*body, "user") == user) return true;
  if (const json::array* users = Arr(*body, "users")) {
    for (const auto& u : *users) {
      if (u.is_string() && u.as_string() == user) return true;
    }
  }
  return false;
}

std::vector<int64_t> Seqs(const std::vector<json::object>& messages) {
  std::vector<int64_t> out;
  for (const auto& m : messages) out.push_back(Int(m, "seq"));
  return out;
}

std::vector<int64_t> CollectSeqs(WsConn& ws, const std::string& conv_id,
                                 const std::set<int64_t>& want, Ms timeout) {
  std::vector<int64_t> got;
  std::set<int64_t> missing = want;
  const auto end = std::chrono::steady_clock::now() + timeout;
  int64_t acked = 0;
  while (!missing.empty()) {
    const auto left = std::chrono::duration_cast<Ms>(end - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    auto m = ws.NextMsg(conv_id, left);
    if (!m) break;
    const int64_t seq = Int(MsgOf(*m), "seq");
    got.push_back(seq);
    missing.erase(seq);
    if (seq > acked) {
      acked = seq;
      ws.Ack(conv_id, seq);
    }
  }
  return got;
}

std::optional<json::object> HelloConv(const WsConn& ws, const std::string& conv_id) {
  const json::array* convs = Arr(ws.hello(), "conversations");
  if (!convs) return std::nullopt;
  for (const auto& c : *convs) {
    if (c.is_object() && Str(c.as_object(), "conv_id") == conv_id) return c.as_object();
  }
  return std::nullopt;
}

}  // namespace mpim::testing
