// ConversationService on a Store, a Deliverer, presence and the fan-out.
#pragma once

#include "core/config.h"
#include "service/conversation/delivered_cursors.h"
#include "service/conversation_service.h"
#include "service/fanout.h"
#include "route/presence.h"
#include "store/conv_id.h"
#include "store/store.h"

namespace mpim::service {

class ConversationServiceImpl final : public ConversationService {
 public:
  // Acks go to `cursors` (written in batches), and hello reads through it.
  ConversationServiceImpl(const core::LimitsConfig& limits, store::Store& store,
                          Deliverer& deliverer, const route::Presence& presence, Fanout& fanout,
                          DeliveredCursors& cursors)
      : page_max_(static_cast<int>(limits.page_max)),
        store_(store),
        deliverer_(deliverer),
        presence_(presence),
        fanout_(fanout),
        cursors_(cursors) {}

  void List(Principal who, int limit, core::Callback<std::vector<ConversationView>> done) override;
  void History(Principal who, std::string conv_id, std::optional<int64_t> before_seq,
               std::optional<int64_t> after_seq, int limit,
               core::Callback<MessagePage> done) override;
  void Sync(Principal who, std::string conv_id, int64_t after_seq, int limit,
            core::Callback<MessagePage> done) override;
  void Read(Principal who, std::string conv_id, int64_t seq, route::ConnId origin_conn,
            core::Callback<int64_t> done) override;
  void Ack(Principal who, std::string conv_id, int64_t seq, core::DoneCallback done) override;
  void Typing(Principal who, std::string conv_id, core::DoneCallback done) override;
  void Update(Principal who, std::string conv_id, std::optional<bool> muted,
              std::optional<bool> pinned, core::DoneCallback done) override;
  void Search(Principal who, std::string query, std::optional<std::string> conv_id, int limit,
              core::Callback<std::vector<store::Message>> done) override;
  void Pending(Principal who,
               core::Callback<std::vector<store::PendingConversation>> done) override;
  void StartSeq(Principal who, std::string conv_id, core::Callback<int64_t> done) override;

  // What a user may see of a conversation: the seq spans (inclusive) they
  // were present for. A current member sees one span, from their latest
  // joining on; a former member every past span, and nothing in between.
  struct Access {
    store::ConvRef ref;
    bool member = false;  // a current member (may send, read, type)
    std::vector<std::pair<int64_t, int64_t>> spans{{1, INT64_MAX}};

    int64_t min_seq() const { return spans.front().first; }
    int64_t max_seq() const { return spans.back().second; }
    bool Visible(int64_t seq) const {
      for (const auto& [lo, hi] : spans) {
        if (seq >= lo && seq <= hi) return true;
      }
      return false;
    }
  };

 private:
  void CheckAccess(Principal who, const std::string& conv_id,
                   absl::AnyInvocable<void(core::StatusOr<Access>) &&> then);
  // Like CheckAccess, and also requires a current member.
  void CheckMember(Principal who, const std::string& conv_id,
                   absl::AnyInvocable<void(core::StatusOr<Access>) &&> then);
  // The other members to tell about reads and typing: the peer, or a small
  // group's members; nobody for a large group.
  void Others(const store::ConvRef& ref, int64_t me,
              absl::AnyInvocable<void(std::vector<int64_t>) &&> then);
  void ReadRange(Principal who, std::string conv_id, store::RangeQuery query,
                 core::Callback<MessagePage> done);
  void CollectScopes(Principal who, std::optional<store::ConversationCursor> after,
                     std::shared_ptr<std::vector<store::SearchScope>> scopes,
                     core::DoneCallback done);
  core::Status CheckLimit(int limit) const;

  const int page_max_;
  store::Store& store_;
  Deliverer& deliverer_;
  const route::Presence& presence_;
  Fanout& fanout_;
  DeliveredCursors& cursors_;
};

}  // namespace mpim::service
