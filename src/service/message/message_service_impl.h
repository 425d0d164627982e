// MessageService on a Store and a Deliverer.
#pragma once

#include <functional>

#include "core/config.h"
#include "core/rate_limiter.h"
#include "core/snowflake.h"
#include "service/message_service.h"
#include "store/store.h"

namespace mpim::service {

class MessageServiceImpl final : public MessageService {
 public:
  MessageServiceImpl(const core::LimitsConfig& limits, store::Store& store, Deliverer& deliverer,
                     core::SnowflakeGenerator& ids, std::function<int64_t()> now_ms);

  void Send(Principal who, SendRequest request, core::Callback<SendResult> done) override;

 private:
  void Append(Principal who, SendRequest request, std::string conv_id,
              core::Callback<SendResult> done);

  const core::LimitsConfig limits_;
  store::Store& store_;
  Deliverer& deliverer_;
  core::SnowflakeGenerator& ids_;
  std::function<int64_t()> now_ms_;
  core::KeyedRateLimiter<int64_t> send_limiter_;
};

}  // namespace mpim::service
