#include "service/push/device_service_impl.h"

#include "service/errors.h"

namespace mpim::service {
namespace {

DeviceInfo InfoOf(const store::Device& d) {
  return {.device_id = d.device_id, .platform = d.platform, .created_at = d.created_at};
}

}  // namespace

void DeviceServiceImpl::Register(Principal who, std::string platform, std::string token,
                                 core::Callback<DeviceInfo> done) {
  if (platform != "apns" && platform != "fcm" && platform != "webhook") {
    return std::move(done)(
        absl::InvalidArgumentError("platform must be \"apns\", \"fcm\" or \"webhook\""));
  }
  if (token.empty() || token.size() > kTokenMaxBytes) {
    return std::move(done)(absl::InvalidArgumentError("token must be 1-4096 bytes"));
  }
  store::Device device{.device_id = ids_.Next(),
                       .session_id = who.session_id,
                       .user_id = who.user_id,
                       .platform = std::move(platform),
                       .token = std::move(token)};
  store_.sessions().SetDevice(
      device, [done = std::move(done)](core::StatusOr<store::Device> d) mutable {
        if (d.ok()) return std::move(done)(InfoOf(*d));
        if (d.status().code() == absl::StatusCode::kNotFound) {
          return std::move(done)(absl::UnauthenticatedError("the session has been revoked"));
        }
        std::move(done)(StorageError(d.status()));
      });
}

void DeviceServiceImpl::List(Principal who, core::Callback<std::vector<DeviceInfo>> done) {
  store_.sessions().ListDevices(
      who.user_id,
      [done = std::move(done)](core::StatusOr<std::vector<store::Device>> devices) mutable {
        if (!devices.ok()) return std::move(done)(StorageError(devices.status()));
        std::vector<DeviceInfo> out;
        out.reserve(devices->size());
        for (const store::Device& d : *devices) out.push_back(InfoOf(d));
        std::move(done)(std::move(out));
      });
}

void DeviceServiceImpl::Delete(Principal who, int64_t device_id, core::DoneCallback done) {
  store_.sessions().DeleteDevice(
      who.user_id, device_id, [device_id, done = std::move(done)](core::Status s) mutable {
        if (s.ok()) return std::move(done)(s);
        if (s.code() == absl::StatusCode::kNotFound) {
          return std::move(done)(
              absl::NotFoundError("device " + std::to_string(device_id) + " not found"));
        }
        std::move(done)(StorageError(s));
      });
}

}  // namespace mpim::service
