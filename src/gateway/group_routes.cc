#include <boost/json/serialize.hpp>

#include "gateway/json.h"
#include "gateway/message_json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

// Reads a JSON array of decimal id strings.
core::StatusOr<std::vector<int64_t>> IdList(const boost::json::object& body, const char* field,
                                            bool required) {
  const boost::json::value* v = body.if_contains(field);
  std::vector<int64_t> ids;
  if (!v || v->is_null()) {
    if (required) return absl::InvalidArgumentError(std::string(field) + ": required");
    return ids;
  }
  if (!v->is_array()) {
    return absl::InvalidArgumentError(std::string(field) + ": must be an array of ids");
  }
  for (const auto& item : v->get_array()) {
    if (!item.is_string()) {
      return absl::InvalidArgumentError(std::string(field) + ": ids are decimal strings");
    }
    auto id = ParseId(std::string_view(item.get_string()), field);
    if (!id.ok()) return id.status();
    ids.push_back(*id);
  }
  return ids;
}

core::StatusOr<std::optional<bool>> OptionalBool(const boost::json::object& body,
                                                 const char* field) {
  const boost::json::value* v = body.if_contains(field);
  if (!v || v->is_null()) return std::optional<bool>();
  if (!v->is_bool()) return absl::InvalidArgumentError(std::string(field) + ": must be a boolean");
  return std::optional<bool>(v->get_bool());
}

// {id} and {user_id} path parameters.
core::StatusOr<int64_t> PathId(const net::HttpRequest& req, const char* name) {
  return ParseId(req.Param(name), name);
}

// {id} and {user_id} of /groups/{id}/members/{user_id}...
core::StatusOr<std::pair<int64_t, int64_t>> MemberPath(const net::HttpRequest& req) {
  auto id = PathId(req, "id");
  if (!id.ok()) return id.status();
  auto user = PathId(req, "user_id");
  if (!user.ok()) return user.status();
  return std::make_pair(*id, *user);
}

void Fail(net::HttpResponder& respond, const core::Status& s) {
  respond(net::HttpResponse::Error(s));
}

}  // namespace

void AddGroupRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;
  service::GroupService& groups = *api.groups;
  const int page_max = api.page_max;

  router.Add("POST", "/api/v1/groups",
             Authed(auth, [&groups](net::HttpRequest req, service::Principal who,
                                    net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return Fail(respond, body.status());
               auto name = RequiredString(*body, "name");
               auto members = IdList(*body, "members", false);
               auto is_public = OptionalBool(*body, "public");
               for (const core::Status& s : {name.status(), members.status(), is_public.status()}) {
                 if (!s.ok()) return Fail(respond, s);
               }
               groups.Create(
                   who, {*name, *members, is_public->value_or(false)},
                   [respond = std::move(respond)](core::StatusOr<store::Group> g) mutable {
                     if (!g.ok()) return Fail(respond, g.status());
                     respond(JsonResponse(
                         201, boost::json::object{{"group_id", std::to_string(g->group_id)},
                                                  {"conv_id", g->conv_id}}));
                   });
             }));

  router.Add(
      "GET", "/api/v1/groups",
      Authed(auth, [&groups](net::HttpRequest, service::Principal who, net::HttpResponder respond) {
        groups.ListMine(who, [respond = std::move(respond)](
                                 core::StatusOr<std::vector<service::GroupView>> list) mutable {
          if (!list.ok()) return Fail(respond, list.status());
          boost::json::array out;
          for (const auto& v : *list) out.push_back(GroupJson(v.group, v.role));
          respond(JsonResponse(200, boost::json::object{{"groups", std::move(out)}}));
        });
      }));

  auto reply_group = [](net::HttpResponder respond) {
    return [respond = std::move(respond)](core::StatusOr<service::GroupView> v) mutable {
      if (!v.ok()) return Fail(respond, v.status());
      respond(JsonResponse(200, GroupJson(v->group, v->role)));
    };
  };

  router.Add("GET", "/api/v1/groups/{id}",
             Authed(auth, [&groups, reply_group](net::HttpRequest req, service::Principal who,
                                                 net::HttpResponder respond) {
               auto id = PathId(req, "id");
               if (!id.ok()) return Fail(respond, id.status());
               groups.Get(who, *id, reply_group(std::move(respond)));
             }));

  router.Add("PATCH", "/api/v1/groups/{id}",
             Authed(auth, [&groups, reply_group](net::HttpRequest req, service::Principal who,
                                                 net::HttpResponder respond) {
               auto id = PathId(req, "id");
               if (!id.ok()) return Fail(respond, id.status());
               auto body = ParseObject(req.body);
               if (!body.ok()) return Fail(respond, body.status());
               auto name = OptionalString(*body, "name");
               auto is_public = OptionalBool(*body, "public");
               for (const core::Status& s : {name.status(), is_public.status()}) {
                 if (!s.ok()) return Fail(respond, s);
               }
               groups.Update(who, *id, *name, *is_public, reply_group(std::move(respond)));
             }));

  router.Add("DELETE", "/api/v1/groups/{id}",
             Authed(auth, [&groups](net::HttpRequest req, service::Principal who,
                                    net::HttpResponder respond) {
               auto id = PathId(req, "id");
               if (!id.ok()) return Fail(respond, id.status());
               groups.Delete(who, *id, ReplyNoContent(std::move(respond)));
             }));

  router.Add(
      "GET", "/api/v1/groups/{id}/members",
      Authed(auth, [&groups, page_max](net::HttpRequest req, service::Principal who,
                                       net::HttpResponder respond) {
        auto id = PathId(req, "id");
        if (!id.ok()) return Fail(respond, id.status());
        auto limit = ParseLimit(req, page_max);
        if (!limit.ok()) return Fail(respond, limit.status());
        int64_t after = 0;
        if (auto a = req.Query("after"); a && !a->empty()) {
          auto parsed = ParseId(*a, "after");
          if (!parsed.ok()) return Fail(respond, parsed.status());
          after = *parsed;
        }
        groups.ListMembers(
            who, *id, after, *limit,
            [respond = std::move(respond)](core::StatusOr<service::MemberPage> page) mutable {
              if (!page.ok()) return Fail(respond, page.status());
              boost::json::array out;
              for (const auto& m : page->members) {
                out.push_back(boost::json::object{{"user", UserJson(m.user)},
                                                  {"role", store::GroupRoleName(m.role)},
                                                  {"joined_at", m.joined_at}});
              }
              respond(JsonResponse(200, boost::json::object{{"members", std::move(out)},
                                                            {"has_more", page->has_more}}));
            });
      }));

  router.Add(
      "POST", "/api/v1/groups/{id}/members",
      Authed(auth, [&groups](net::HttpRequest req, service::Principal who,
                             net::HttpResponder respond) {
        auto id = PathId(req, "id");
        if (!id.ok()) return Fail(respond, id.status());
        auto body = ParseObject(req.body);
        if (!body.ok()) return Fail(respond, body.status());
        auto ids = IdList(*body, "user_ids", true);
        if (!ids.ok()) return Fail(respond, ids.status());
        groups.AddMembers(
            who, *id, std::move(*ids),
            [respond = std::move(respond)](core::StatusOr<std::vector<int64_t>> added) mutable {
              if (!added.ok()) return Fail(respond, added.status());
              boost::json::array a;
              for (int64_t u : *added) a.push_back(boost::json::value(std::to_string(u)));
              respond(JsonResponse(200, boost::json::object{{"added", std::move(a)}}));
            });
      }));

  router.Add("DELETE", "/api/v1/groups/{id}/members/{user_id}",
             Authed(auth, [&groups](net::HttpRequest req, service::Principal who,
                                    net::HttpResponder respond) {
               auto ids = MemberPath(req);
               if (!ids.ok()) return Fail(respond, ids.status());
               auto [id, user] = *ids;
               groups.RemoveMember(who, id, user, ReplyNoContent(std::move(respond)));
             }));

  router.Add("PUT", "/api/v1/groups/{id}/members/{user_id}/role",
             Authed(auth, [&groups](net::HttpRequest req, service::Principal who,
                                    net::HttpResponder respond) {
               auto ids = MemberPath(req);
               if (!ids.ok()) return Fail(respond, ids.status());
               auto [id, user] = *ids;
               auto body = ParseObject(req.body);
               if (!body.ok()) return Fail(respond, body.status());
               auto role = RequiredString(*body, "role");
               if (!role.ok()) return Fail(respond, role.status());
               if (*role != "admin" && *role != "member") {
                 return Fail(respond, absl::InvalidArgumentError("role: must be admin or member"));
               }
               groups.SetRole(
                   who, id, user,
                   *role == "admin" ? store::GroupRole::kAdmin : store::GroupRole::kMember,
                   [respond = std::move(respond)](core::StatusOr<store::GroupMember> m) mutable {
                     if (!m.ok()) return Fail(respond, m.status());
                     respond(JsonResponse(
                         200, boost::json::object{{"user_id", std::to_string(m->user_id)},
                                                  {"role", store::GroupRoleName(m->role)}}));
                   });
             }));
}

void AddMessageRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;
  service::MessageService& messages = *api.messages;
  service::ConversationService& convs = *api.conversations;
  const int page_max = api.page_max;

  router.Add("POST", "/api/v1/messages/{msg_id}/recall",
             Authed(auth, [&messages](net::HttpRequest req, service::Principal who,
                                      net::HttpResponder respond) {
               auto id = PathId(req, "msg_id");
               if (!id.ok()) return Fail(respond, id.status());
               messages.Recall(
                   who, *id,
                   [respond = std::move(respond)](core::StatusOr<store::Message> m) mutable {
                     if (!m.ok()) return Fail(respond, m.status());
                     respond(net::HttpResponse::Json(200, MessageObjectText(*m)));
                   });
             }));

  router.Add("GET", "/api/v1/search/messages",
             Authed(auth, [&convs, page_max](net::HttpRequest req, service::Principal who,
                                             net::HttpResponder respond) {
               auto limit = ParseLimit(req, page_max);
               if (!limit.ok()) return Fail(respond, limit.status());
               auto q = req.Query("q");
               if (!q) return Fail(respond, absl::InvalidArgumentError("q: required"));
               std::optional<std::string> conv_id;
               if (auto c = req.Query("conv_id"); c && !c->empty()) conv_id = std::string(*c);
               convs.Search(who, std::string(*q), conv_id, *limit,
                            [respond = std::move(respond)](
                                core::StatusOr<std::vector<store::Message>> found) mutable {
                              if (!found.ok()) return Fail(respond, found.status());
                              std::string text = MessagePageText("", *found, false);
                              // {messages: [...]}: no paging for search.
                              text = text.substr(0, text.rfind(",\"has_more\"")) + "}";
                              respond(net::HttpResponse::Json(200, std::move(text)));
                            });
             }));

  router.Add("PATCH", "/api/v1/conversations/{conv_id}",
             Authed(auth, [&convs](net::HttpRequest req, service::Principal who,
                                   net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return Fail(respond, body.status());
               auto muted = OptionalBool(*body, "muted");
               auto pinned = OptionalBool(*body, "pinned");
               for (const core::Status& s : {muted.status(), pinned.status()}) {
                 if (!s.ok()) return Fail(respond, s);
               }
               convs.Update(who, std::string(req.Param("conv_id")), *muted, *pinned,
                            ReplyNoContent(std::move(respond)));
             }));
}

}  // namespace mpim::gateway
