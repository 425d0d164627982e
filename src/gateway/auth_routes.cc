#include <strings.h>

#include "core/trace.h"
#include "gateway/json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

constexpr char kPrefix[] = "/api/v1/auth";

net::HttpResponse Unauthenticated(const core::Status& status) {
  net::HttpResponse r = net::HttpResponse::Error(status);
  r.headers.emplace_back("WWW-Authenticate", "Bearer");
  return r;
}

boost::json::object TokensJson(const service::TokenPair& t) {
  return {{"access_token", t.access_token},
          {"refresh_token", t.refresh_token},
          {"expires_in", t.expires_in}};
}

}  // namespace

net::HttpHandler Authed(service::AuthService& auth, AuthedHandler handler) {
  return [&auth, handler = std::move(handler)](net::HttpRequest req, net::HttpResponder respond) {
    std::string_view header = req.Header("authorization");
    constexpr std::string_view kScheme = "bearer ";
    if (header.size() <= kScheme.size() ||
        strncasecmp(header.data(), kScheme.data(), kScheme.size()) != 0) {
      return respond(Unauthenticated(absl::UnauthenticatedError("missing bearer token")));
    }
    auto span = core::trace::Span::Start("auth", core::trace::Current());
    auto principal = auth.Authenticate(header.substr(kScheme.size()));
    if (!principal.ok()) {
      span.SetError(std::string(principal.status().message()));
      return respond(Unauthenticated(principal.status()));
    }
    span.Set("mpim.user_id", principal->user_id);
    span.End();
    handler(std::move(req), *principal, std::move(respond));
  };
}

void AddAuthRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;

  router.Add("POST", std::string(kPrefix) + "/register",
             [&auth](net::HttpRequest req, net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
               auto username = RequiredString(*body, "username");
               auto password = RequiredString(*body, "password");
               auto display_name = OptionalString(*body, "display_name");
               for (const core::Status& s :
                    {username.status(), password.status(), display_name.status()}) {
                 if (!s.ok()) return respond(net::HttpResponse::Error(s));
               }
               service::RegisterRequest r{*username, *password, display_name->value_or(""),
                                          req.remote_address};
               auth.Register(std::move(r), [respond = std::move(respond)](
                                               core::StatusOr<int64_t> id) mutable {
                 if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
                 respond(JsonResponse(201, boost::json::object{{"user_id", std::to_string(*id)}}));
               });
             });

  router.Add(
      "POST", std::string(kPrefix) + "/login",
      [&auth](net::HttpRequest req, net::HttpResponder respond) {
        auto body = ParseObject(req.body);
        if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
        auto username = RequiredString(*body, "username");
        auto password = RequiredString(*body, "password");
        auto device = OptionalString(*body, "device");
        for (const core::Status& s : {username.status(), password.status(), device.status()}) {
          if (!s.ok()) return respond(net::HttpResponse::Error(s));
        }
        service::LoginRequest r{*username, *password, device->value_or(""), req.remote_address};
        auth.Login(std::move(r), [respond = std::move(respond)](
                                     core::StatusOr<service::LoginResult> result) mutable {
          if (!result.ok()) {
            if (result.status().code() == absl::StatusCode::kUnauthenticated) {
              return respond(Unauthenticated(result.status()));
            }
            return respond(net::HttpResponse::Error(result.status()));
          }
          boost::json::object o = TokensJson(result->tokens);
          o["user_id"] = std::to_string(result->user_id);
          o["session_id"] = std::to_string(result->session_id);
          respond(JsonResponse(200, o));
        });
      });

  router.Add("POST", std::string(kPrefix) + "/refresh",
             [&auth](net::HttpRequest req, net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
               auto token = RequiredString(*body, "refresh_token");
               if (!token.ok()) return respond(net::HttpResponse::Error(token.status()));
               auth.Refresh(*token, [respond = std::move(respond)](
                                        core::StatusOr<service::TokenPair> tokens) mutable {
                 if (!tokens.ok()) {
                   if (tokens.status().code() == absl::StatusCode::kUnauthenticated) {
                     return respond(Unauthenticated(tokens.status()));
                   }
                   return respond(net::HttpResponse::Error(tokens.status()));
                 }
                 respond(JsonResponse(200, TokensJson(*tokens)));
               });
             });

  router.Add(
      "POST", std::string(kPrefix) + "/logout",
      Authed(auth, [&auth](net::HttpRequest, service::Principal who, net::HttpResponder respond) {
        auth.Logout(who, ReplyNoContent(std::move(respond)));
      }));
}

}  // namespace mpim::gateway
