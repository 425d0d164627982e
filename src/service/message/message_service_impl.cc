#include "service/message/message_service_impl.h"

#include <chrono>

#include "core/metrics.h"
#include "service/errors.h"
#include "service/validation.h"
#include "store/conv_id.h"

namespace mpim::service {
namespace {

int64_t SteadyMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

core::Status ValidateClientMsgId(const std::string& id) {
  int64_t len = Utf8Length(id);
  if (id.empty() || id.size() > 64 || len < 0) {
    return absl::InvalidArgumentError("client_msg_id: must be 1-64 characters");
  }
  for (unsigned char c : id) {
    if (c < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError("client_msg_id: must not contain control characters");
    }
  }
  return absl::OkStatus();
}

}  // namespace

MessageServiceImpl::MessageServiceImpl(const core::LimitsConfig& limits, store::Store& store,
                                       Deliverer& deliverer, core::SnowflakeGenerator& ids,
                                       std::function<int64_t()> now_ms)
    : limits_(limits),
      store_(store),
      deliverer_(deliverer),
      ids_(ids),
      now_ms_(std::move(now_ms)),
      send_limiter_(static_cast<double>(limits.send_per_sec),
                    static_cast<double>(limits.send_burst)) {}

void MessageServiceImpl::Send(Principal who, SendRequest req, core::Callback<SendResult> done) {
  if (auto s = ValidateClientMsgId(req.client_msg_id); !s.ok()) return std::move(done)(s);
  if (req.type == "system") {
    return std::move(done)(absl::InvalidArgumentError("type: clients cannot send system messages"));
  }
  if (req.type != "text" && req.type != "custom") {
    return std::move(done)(absl::InvalidArgumentError("type: must be \"text\" or \"custom\""));
  }
  if (static_cast<int64_t>(req.body.size()) > limits_.body_max_bytes) {
    return std::move(done)(core::PayloadTooLargeError(
        "body: larger than " + std::to_string(limits_.body_max_bytes) + " bytes"));
  }
  if (req.to_id <= 0) return std::move(done)(absl::InvalidArgumentError("to: bad id"));
  if (int64_t wait = send_limiter_.TryAcquire(who.user_id, SteadyMs()); wait > 0) {
    return std::move(done)(core::RateLimitedError("sending too fast", wait));
  }
  if (req.to_group) {
    return std::move(done)(
        absl::InvalidArgumentError("to: group conversations are not available yet"));
  }
  if (req.to_id == who.user_id) {
    return std::move(done)(absl::InvalidArgumentError("to: you cannot send to yourself"));
  }
  // A user who blocks the sender receives nothing from them.
  int64_t peer = req.to_id;
  store_.friends().IsBlocked(peer, who.user_id,
                             [this, who, peer, req = std::move(req),
                              done = std::move(done)](core::StatusOr<bool> blocked) mutable {
                               if (!blocked.ok())
                                 return std::move(done)(StorageError(blocked.status()));
                               if (*blocked) {
                                 return std::move(done)(absl::PermissionDeniedError(
                                     "this user does not accept your messages"));
                               }
                               std::string conv_id = store::PrivateConvId(who.user_id, peer);
                               Append(who, std::move(req), std::move(conv_id), std::move(done));
                             });
}

void MessageServiceImpl::Append(Principal who, SendRequest req, std::string conv_id,
                                core::Callback<SendResult> done) {
  store::AppendRequest append;
  append.msg_id = ids_.Next();
  append.conv_id = std::move(conv_id);
  append.sender = who.user_id;
  append.recipient = req.to_id;
  append.type = req.type;
  append.body = std::move(req.body);
  append.ts = now_ms_();
  append.client_msg_id = req.client_msg_id;
  store_.messages().Append(append, [this, who, to = req.to_id, qos1 = req.qos1,
                                    priority = req.priority, origin = req.origin_conn,
                                    done = std::move(done)](
                                       core::StatusOr<store::AppendResult> result) mutable {
    if (!result.ok()) {
      if (result.status().code() == absl::StatusCode::kNotFound) {
        return std::move(done)(absl::NotFoundError("user " + std::to_string(to) + " not found"));
      }
      if (result.status().code() == absl::StatusCode::kInvalidArgument) {
        return std::move(done)(result.status());
      }
      return std::move(done)(StorageError(result.status()));
    }
    const store::Message& m = result->message;
    std::move(done)(SendResult{m.msg_id, m.conv_id, m.seq, m.ts});
    // A duplicate was dispatched when it was first written.
    if (!result->duplicate) {
      deliverer_.Message({who.user_id, to}, origin, m, qos1, priority);
    }
  });
}

}  // namespace mpim::service
