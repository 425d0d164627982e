// DeviceService on the store's sessions (store/session_store.h).
#pragma once

#include "core/snowflake.h"
#include "service/device_service.h"
#include "store/store.h"

namespace mpim::service {

class DeviceServiceImpl final : public DeviceService {
 public:
  DeviceServiceImpl(store::Store& store, core::SnowflakeGenerator& ids)
      : store_(store), ids_(ids) {}

  void Register(Principal who, std::string platform, std::string token,
                core::Callback<DeviceInfo> done) override;
  void List(Principal who, core::Callback<std::vector<DeviceInfo>> done) override;
  void Delete(Principal who, int64_t device_id, core::DoneCallback done) override;

  static constexpr size_t kTokenMaxBytes = 4096;

 private:
  store::Store& store_;
  core::SnowflakeGenerator& ids_;
};

}  // namespace mpim::service
