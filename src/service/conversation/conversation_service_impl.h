// ConversationService on a Store, a Deliverer and presence.
#pragma once

#include "core/config.h"
#include "service/conversation_service.h"
#include "service/presence_service.h"
#include "store/conv_id.h"
#include "store/store.h"

namespace mpim::service {

class ConversationServiceImpl final : public ConversationService {
 public:
  ConversationServiceImpl(const core::LimitsConfig& limits, store::Store& store,
                          Deliverer& deliverer, PresenceService& presence)
      : page_max_(static_cast<int>(limits.page_max)),
        store_(store),
        deliverer_(deliverer),
        presence_(presence) {}

  void List(Principal who, int limit, core::Callback<std::vector<ConversationView>> done) override;
  void History(Principal who, std::string conv_id, std::optional<int64_t> before_seq,
               std::optional<int64_t> after_seq, int limit,
               core::Callback<MessagePage> done) override;
  void Sync(Principal who, std::string conv_id, int64_t after_seq, int limit,
            core::Callback<MessagePage> done) override;
  void Read(Principal who, std::string conv_id, int64_t seq, uint64_t origin_conn,
            core::Callback<int64_t> done) override;
  void Ack(Principal who, std::string conv_id, int64_t seq, core::DoneCallback done) override;
  void Typing(Principal who, std::string conv_id, core::DoneCallback done) override;
  void Pending(Principal who,
               core::Callback<std::vector<store::PendingConversation>> done) override;

 private:
  // Calls `then(ref)` when `who` takes part in `conv_id`, else fails `fail`.
  void CheckMember(Principal who, const std::string& conv_id,
                   absl::AnyInvocable<void(core::StatusOr<store::ConvRef>) &&> then);
  // The other members to tell about reads and typing (private: the peer).
  static std::vector<int64_t> Others(const store::ConvRef& ref, int64_t me);
  void ReadRange(Principal who, std::string conv_id, store::RangeQuery query,
                 core::Callback<MessagePage> done);
  core::Status CheckLimit(int limit) const;

  const int page_max_;
  store::Store& store_;
  Deliverer& deliverer_;
  PresenceService& presence_;
};

}  // namespace mpim::service
