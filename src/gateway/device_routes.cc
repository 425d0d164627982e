// /api/v1/devices (protocol.md section 4).
#include "gateway/json.h"
#include "gateway/routes.h"

namespace mpim::gateway {
namespace {

boost::json::object DeviceJson(const service::DeviceInfo& d, bool with_created_at) {
  boost::json::object o{{"device_id", std::to_string(d.device_id)}, {"platform", d.platform}};
  if (with_created_at) o["created_at"] = d.created_at;
  return o;
}

}  // namespace

void AddDeviceRoutes(net::Router& router, const ApiContext& api) {
  service::AuthService& auth = api.auth;
  service::DeviceService& devices = *api.devices;

  router.Add("POST", "/api/v1/devices",
             Authed(auth, [&devices](net::HttpRequest req, service::Principal who,
                                     net::HttpResponder respond) {
               auto body = ParseObject(req.body);
               if (!body.ok()) return respond(net::HttpResponse::Error(body.status()));
               auto platform = RequiredString(*body, "platform");
               if (!platform.ok()) return respond(net::HttpResponse::Error(platform.status()));
               auto token = RequiredString(*body, "token");
               if (!token.ok()) return respond(net::HttpResponse::Error(token.status()));
               devices.Register(
                   who, std::move(*platform), std::move(*token),
                   [respond = std::move(respond)](core::StatusOr<service::DeviceInfo> d) mutable {
                     if (!d.ok()) return respond(net::HttpResponse::Error(d.status()));
                     respond(JsonResponse(201, DeviceJson(*d, false)));
                   });
             }));

  router.Add(
      "GET", "/api/v1/devices",
      Authed(
          auth, [&devices](net::HttpRequest, service::Principal who, net::HttpResponder respond) {
            devices.List(who, [respond = std::move(respond)](
                                  core::StatusOr<std::vector<service::DeviceInfo>> list) mutable {
              if (!list.ok()) return respond(net::HttpResponse::Error(list.status()));
              boost::json::array out;
              for (const service::DeviceInfo& d : *list) out.push_back(DeviceJson(d, true));
              respond(JsonResponse(200, out));
            });
          }));

  router.Add("DELETE", "/api/v1/devices/{id}",
             Authed(auth, [&devices](net::HttpRequest req, service::Principal who,
                                     net::HttpResponder respond) {
               auto id = ParseId(req.Param("id"), "device_id");
               if (!id.ok()) return respond(net::HttpResponse::Error(id.status()));
               devices.Delete(who, *id, ReplyNoContent(std::move(respond)));
             }));
}

}  // namespace mpim::gateway
