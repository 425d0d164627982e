// Push devices (protocol.md section 4): a login session registers at most
// one device (a new registration from the session replaces it); logout (any
// revocation of the session) removes it. The task role pushes to devices
// whose session has no live WebSocket (service/push/push_planner.h).
//
// Asynchronous; callbacks run once on an internal thread. Errors:
// invalid_argument (platform not apns, fcm or webhook; token not 1-4096
// bytes), unauthenticated (the session was revoked meanwhile), not_found
// (no such device of the caller's), unavailable.
//
// Remote: in role `gateway` this interface is a gRPC client of a logic node
// (same contract): every call may be a network round trip and also fails
// with unavailable when no logic node answers in time; callers never wait
// for it synchronously on an io thread.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/callback.h"
#include "service/auth_service.h"

namespace mpim::service {

struct DeviceInfo {
  int64_t device_id = 0;
  std::string platform;
  int64_t created_at = 0;  // ms
};

class DeviceService {
 public:
  virtual ~DeviceService() = default;

  virtual void Register(Principal who, std::string platform, std::string token,
                        core::Callback<DeviceInfo> done) = 0;
  // The caller's devices (every session's), ascending by device_id.
  virtual void List(Principal who, core::Callback<std::vector<DeviceInfo>> done) = 0;
  virtual void Delete(Principal who, int64_t device_id, core::DoneCallback done) = 0;
};

}  // namespace mpim::service
