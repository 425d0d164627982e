// The logic role's side of proto/mpim/logic.proto: every method, served on
// a node's rpc::Server by the local service it mirrors. A gateway's Remote*
// services (remote_services.h) are the clients.
//
// Handlers are registered before the server starts (rpc::Server's rule),
// but a node learns its node id (and builds its services) only once it is
// registered at the address the server bound: until SetServices, calls
// answer `unavailable` ("starting"), which clients retry on another node.
// A call whose caller's deadline has already passed when it arrives is
// refused with `deadline_exceeded` without starting any work.
//
// Thread-safe; handlers run on gRPC threads and never block (each starts
// the service's asynchronous call, which answers from the service's
// threads).
#pragma once

#include <atomic>
#include <memory>

#include "rpc/server.h"
#include "service/admin_service.h"
#include "service/auth_service.h"
#include "service/conversation_service.h"
#include "service/device_service.h"
#include "service/friend_service.h"
#include "service/group_service.h"
#include "service/message_service.h"
#include "service/user_service.h"
#include "store/store.h"

namespace mpim::service::remote {

struct LogicServices {
  AuthService* auth = nullptr;
  UserService* users = nullptr;
  DeviceService* devices = nullptr;
  AdminService* admin = nullptr;
  FriendService* friends = nullptr;
  GroupService* groups = nullptr;
  ConversationService* conversations = nullptr;
  MessageService* messages = nullptr;
  // Revoked sessions (for gateways starting) and last_seen (for their
  // presence), which no service interface offers.
  store::Store* store = nullptr;
};

class LogicServer {
 public:
  // Registers every method on `server` (before its Start()).
  explicit LogicServer(rpc::Server& server);

  // From now on calls go to `services` (every pointer set; they must
  // outlive the server's calls: shut the server down first).
  void SetServices(const LogicServices& services);

 private:
  template <typename Request, typename Response, typename Body>
  void On(rpc::Server& server, const char* service, const char* method, Body body);

  std::unique_ptr<LogicServices> services_;
  std::atomic<const LogicServices*> ready_{nullptr};
};

}  // namespace mpim::service::remote
