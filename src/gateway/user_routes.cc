#include "gateway/json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

constexpr char kApi[] = "/api/v1";

std::string Path(const char* suffix) { return std::string(kApi) + suffix; }

// A service callback that answers `status` with `encode(value)` on success
// and with the protocol's error body otherwise.
template <typename T, typename Encode>
core::Callback<T> ReplyJson(net::HttpResponder respond, int status, Encode encode) {
  return [respond = std::move(respond), status,
          encode = std::move(encode)](core::StatusOr<T> result) mutable {
    if (!result.ok()) return respond(net::HttpResponse::Error(result.status()));
    respond(JsonResponse(status, encode(*result)));
  };
}

boost::json::array EntriesJson(const std::vector<service::FriendEntry>& entries,
                               const char* time_key, bool nest_user) {
  boost::json::array out;
  for (const auto& e : entries) {
    if (nest_user) {
      out.push_back(boost::json::object{{"user", UserJson(e.user)}, {time_key, e.since}});
    } else {
      boost::json::object o = UserJson(e.user);
      o[time_key] = e.since;
      out.push_back(std::move(o));
    }
  }
  return out;
}

// Reads the {id} path parameter, or answers 400.
std::optional<int64_t> PathId(const net::HttpRequest& req, net::HttpResponder& respond) {
  auto id = ParseId(req.Param("id"), "id");
  if (!id.ok()) {
    respond(net::HttpResponse::Error(id.status()));
    return std::nullopt;
  }
  return *id;
}

// `after` query parameter as a user id (0 when absent), or answers 400.
std::optional<int64_t> AfterId(const net::HttpRequest& req, net::HttpResponder& respond) {
  auto text = req.Query("after");
  if (!text || text->empty()) return int64_t{0};
  auto id = ParseId(*text, "after");
  if (!id.ok()) {
    respond(net::HttpResponse::Error(id.status()));
    return std::nullopt;
  }
  return *id;
}

std::optional<int> Limit(const net::HttpRequest& req, int page_max, net::HttpResponder& respond) {
  auto limit = ParseLimit(req, page_max);
  if (!limit.ok()) {
    respond(net::HttpResponse::Error(limit.status()));
    return std::nullopt;
  }
  return *limit;
}

// The caller's own profile carries created_at too.
boost::json::object MeJson(const service::UserProfile& u) {
  boost::json::object o = UserJson(u);
  o["created_at"] = u.created_at;
  return o;
}

auto FriendPageJson(const char* list_key) {
  return [list_key](const service::FriendPage& page) {
    return boost::json::object{{list_key, EntriesJson(page.entries, "since", false)},
                               {"has_more", page.has_more}};
  };
}

using FriendListCall = void (service::FriendService::*)(int64_t, int64_t, int,
                                                        core::Callback<service::FriendPage>);

// GET of a paged list of users with a time (friends, blocks): ?after=&limit=.
net::HttpHandler FriendListHandler(service::AuthService& auth, service::FriendService& friends,
                                   int page_max, FriendListCall call, const char* list_key) {
  return Authed(
      auth, [&friends, page_max, call, list_key](net::HttpRequest req, service::Principal who,
                                                 net::HttpResponder respond) {
        auto limit = Limit(req, page_max, respond);
        if (!limit) return;
        auto after = AfterId(req, respond);
        if (!after) return;
        (friends.*call)(
            who.user_id, *after, *limit,
            ReplyJson<service::FriendPage>(std::move(respond), 200, FriendPageJson(list_key)));
      });
}

}  // namespace

void AddUserRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;
  service::UserService& users = api.users;
  service::FriendService& friends = api.friends;
  const int page_max = api.page_max;

  // ---- users
  router.Add(
      "GET", Path("/users/me"),
      Authed(auth, [&users](net::HttpRequest, service::Principal who, net::HttpResponder respond) {
        users.Get(who.user_id, ReplyJson<service::UserProfile>(std::move(respond), 200, MeJson));
      }));

  router.Add("PATCH", Path("/users/me"),
             Authed(auth, [&users](net::HttpRequest req, service::Principal who,
                                   net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
               auto display_name = OptionalString(*body, "display_name");
               auto avatar_url = OptionalString(*body, "avatar_url");
               for (const core::Status& s : {display_name.status(), avatar_url.status()}) {
                 if (!s.ok()) return respond(net::HttpResponse::Error(s));
               }
               users.Update(who.user_id, {*display_name, *avatar_url},
                            ReplyJson<service::UserProfile>(std::move(respond), 200, MeJson));
             }));

  router.Add(
      "GET", Path("/users/{id}"),
      Authed(auth, [&users](net::HttpRequest req, service::Principal, net::HttpResponder respond) {
        auto id = PathId(req, respond);
        if (!id) return;
        users.Get(*id, ReplyJson<service::UserProfile>(std::move(respond), 200, UserJson));
      }));

  router.Add(
      "GET", Path("/users"),
      Authed(auth, [&users, page_max](net::HttpRequest req, service::Principal,
                                      net::HttpResponder respond) {
        auto limit = Limit(req, page_max, respond);
        if (!limit) return;
        auto prefix = req.Query("prefix");
        if (!prefix) {
          return respond(net::HttpResponse::Error(absl::InvalidArgumentError("prefix: required")));
        }
        std::string after(req.Query("after").value_or(""));
        users.Search(
            std::string(*prefix), after, *limit,
            ReplyJson<
                service::UserPage>(std::move(respond), 200, [](const service::UserPage& page) {
              boost::json::array list;
              for (const auto& u : page.users) list.push_back(UserJson(u));
              return boost::json::object{{"users", std::move(list)}, {"has_more", page.has_more}};
            }));
      }));

  // ---- friends
  router.Add("GET", Path("/friends"),
             FriendListHandler(auth, friends, page_max, &service::FriendService::List, "friends"));

  router.Add("GET", Path("/friends/requests"),
             Authed(auth, [&friends, page_max](net::HttpRequest, service::Principal who,
                                               net::HttpResponder respond) {
               friends.Requests(who.user_id, page_max,
                                ReplyJson<service::FriendRequests>(
                                    std::move(respond), 200, [](const service::FriendRequests& r) {
                                      return boost::json::object{
                                          {"incoming", EntriesJson(r.incoming, "ts", true)},
                                          {"outgoing", EntriesJson(r.outgoing, "ts", true)}};
                                    }));
             }));

  router.Add(
      "POST", Path("/friends/{id}"),
      Authed(auth, [&friends](net::HttpRequest req, service::Principal who,
                              net::HttpResponder respond) {
        auto id = PathId(req, respond);
        if (!id) return;
        friends.Request(
            who.user_id, *id,
            [respond = std::move(respond)](core::StatusOr<service::FriendOutcome> outcome) mutable {
              if (!outcome.ok()) {
                return respond(net::HttpResponse::Error(outcome.status()));
              }
              bool now_friends = *outcome == service::FriendOutcome::kFriends;
              respond(JsonResponse(
                  now_friends ? 200 : 201,
                  boost::json::object{{"status", now_friends ? "friends" : "requested"}}));
            });
      }));

  router.Add("DELETE", Path("/friends/{id}"),
             Authed(auth, [&friends](net::HttpRequest req, service::Principal who,
                                     net::HttpResponder respond) {
               auto id = PathId(req, respond);
               if (!id) return;
               friends.Remove(who.user_id, *id, ReplyNoContent(std::move(respond)));
             }));

  // ---- blocks
  router.Add(
      "GET", Path("/blocks"),
      FriendListHandler(auth, friends, page_max, &service::FriendService::ListBlocked, "blocked"));

  router.Add("POST", Path("/blocks/{id}"),
             Authed(auth, [&friends](net::HttpRequest req, service::Principal who,
                                     net::HttpResponder respond) {
               auto id = PathId(req, respond);
               if (!id) return;
               friends.Block(who.user_id, *id, ReplyNoContent(std::move(respond)));
             }));

  router.Add("DELETE", Path("/blocks/{id}"),
             Authed(auth, [&friends](net::HttpRequest req, service::Principal who,
                                     net::HttpResponder respond) {
               auto id = PathId(req, respond);
               if (!id) return;
               friends.Unblock(who.user_id, *id, ReplyNoContent(std::move(respond)));
             }));
}

}  // namespace mpim::gateway
