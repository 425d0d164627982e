// MessageService on a Store, a Fanout and the search Indexer.
#pragma once

#include <functional>

#include "core/clock.h"
#include "core/config.h"
#include "core/rate_limiter.h"
#include "core/snowflake.h"
#include "core/trace.h"
#include "service/fanout.h"
#include "service/friend/block_cache.h"
#include "service/message_service.h"
#include "service/search/indexer.h"
#include "store/store.h"

namespace mpim::service {

class MessageServiceImpl final : public MessageService {
 public:
  MessageServiceImpl(const core::LimitsConfig& limits, const core::MessagesConfig& messages,
                     store::Store& store, BlockCache& blocks, Fanout& fanout, Indexer* indexer,
                     core::SnowflakeGenerator& ids, core::Clock& clock);

  void Send(Principal who, SendRequest request, core::Callback<SendResult> done,
            OrderedCallback ordered) override;
  void PostSystem(int64_t group_id, int64_t by, std::string body_json,
                  core::Callback<store::Message> done) override;
  void Recall(Principal who, int64_t msg_id, core::Callback<store::Message> done) override;

  // limits.send_per_sec and limits.send_burst from now on (run-time
  // configuration; any thread).
  void SetSendRate(int64_t per_sec, int64_t burst) {
    send_limiter_.SetRate(static_cast<double>(per_sec), static_cast<double>(burst));
  }

 private:
  // Appends, then fans out; `done` gets the stored message (the original
  // one for a duplicate, which is not delivered again).
  // `trace`: the send's (not recording: untraced).
  void Append(store::AppendRequest append, route::ConnId origin_conn, bool qos1,
              service::Priority priority, core::trace::SpanContext trace,
              core::Callback<store::AppendResult> done);
  static void EndAppendSpan(core::trace::Span& span,
                            const core::StatusOr<store::AppendResult>& result);
  void DoRecall(store::Message m, core::Callback<store::Message> done);

  const core::LimitsConfig limits_;
  const core::MessagesConfig messages_;
  store::Store& store_;
  BlockCache& blocks_;
  Fanout& fanout_;
  Indexer* indexer_;
  core::SnowflakeGenerator& ids_;
  core::Clock& clock_;
  core::KeyedRateLimiter<int64_t> send_limiter_;
};

}  // namespace mpim::service
