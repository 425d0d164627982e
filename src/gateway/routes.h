// The REST API (protocol.md section 2) as routes on a Router. Handlers parse
// and validate the wire format, call service interfaces, and map results and
// errors back to the wire; they hold no state of their own.
//
// To add an endpoint group: a file <group>_routes.cc with an Add<Group>Routes
// declared here, called from app wiring.
#pragma once

#include <functional>

#include "net/http.h"
#include "net/router.h"
#include "service/admin_service.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/device_service.h"
#include "service/friend_service.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "service/user_service.h"

namespace mpim::gateway {

struct ApiContext {
  service::AuthService& auth;
  service::UserService& users;
  service::FriendService& friends;
  int page_max = 200;  // limits.page_max
  service::ConversationService* conversations = nullptr;
  service::MessageService* messages = nullptr;
  service::GroupService* groups = nullptr;
  service::DeviceService* devices = nullptr;
  service::AdminService* admin = nullptr;
};

// POST /api/v1/auth/{register,login,refresh,logout}
void AddAuthRoutes(net::Router& router, const ApiContext& api);
// /api/v1/users..., /api/v1/friends..., /api/v1/blocks...
void AddUserRoutes(net::Router& router, const ApiContext& api);
// /api/v1/conversations..., POST /api/v1/messages (needs conversations and
// messages set in `api`).
void AddConversationRoutes(net::Router& router, const ApiContext& api);
// /api/v1/groups... (needs groups).
void AddGroupRoutes(net::Router& router, const ApiContext& api);
// Recall, search, PATCH /api/v1/conversations/{id} (needs messages and
// conversations).
void AddMessageRoutes(net::Router& router, const ApiContext& api);

// /api/v1/devices... (needs devices).
void AddDeviceRoutes(net::Router& router, const ApiContext& api);

// /api/v1/admin... (protocol.md section 5), when `api_key` is set and
// `api.admin` too; otherwise nothing (the paths are 404).
void AddAdminRoutes(net::Router& router, const ApiContext& api, const std::string& api_key);

// A handler that needs the caller's identity.
using AuthedHandler = std::function<void(net::HttpRequest, service::Principal, net::HttpResponder)>;

// Checks `Authorization: Bearer <token>` first; failures answer 401 with
// `WWW-Authenticate: Bearer` and never reach `handler`.
net::HttpHandler Authed(service::AuthService& auth, AuthedHandler handler);

}  // namespace mpim::gateway
