#include "service/conversation/conversation_service_impl.h"

#include <unordered_map>

#include "service/errors.h"
#include "service/user/user_service_impl.h"

namespace mpim::service {

core::Status ConversationServiceImpl::CheckLimit(int limit) const {
  if (limit < 1 || limit > page_max_) {
    return absl::InvalidArgumentError("limit: must be between 1 and " + std::to_string(page_max_));
  }
  return absl::OkStatus();
}

void ConversationServiceImpl::CheckMember(
    Principal who, const std::string& conv_id,
    absl::AnyInvocable<void(core::StatusOr<store::ConvRef>) &&> then) {
  auto ref = store::ParseConvId(conv_id);
  if (!ref) return std::move(then)(absl::InvalidArgumentError("conv_id: malformed"));
  if (ref->type == store::ConvType::kPrivate) {
    if (who.user_id != ref->a && who.user_id != ref->b) {
      return std::move(then)(absl::PermissionDeniedError("not a member of " + conv_id));
    }
    return std::move(then)(*ref);
  }
  store_.groups().GetMember(
      ref->a, who.user_id,
      [ref = *ref, conv_id, then = std::move(then)](core::StatusOr<store::GroupMember> m) mutable {
        if (m.ok()) return std::move(then)(ref);
        if (m.status().code() == absl::StatusCode::kNotFound) {
          return std::move(then)(absl::PermissionDeniedError("not a member of " + conv_id));
        }
        std::move(then)(StorageError(m.status()));
      });
}

std::vector<int64_t> ConversationServiceImpl::Others(const store::ConvRef& ref, int64_t me) {
  if (ref.type == store::ConvType::kPrivate) return {ref.a == me ? ref.b : ref.a};
  return {};  // group fan-out of receipts and typing comes with groups
}

void ConversationServiceImpl::List(Principal who, int limit,
                                   core::Callback<std::vector<ConversationView>> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  store_.conversations().ListForUser(
      who.user_id, std::nullopt, limit,
      [this, who, done = std::move(done)](core::StatusOr<store::ConversationPage> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        std::vector<int64_t> peers;
        for (const auto& c : page->items) {
          auto ref = store::ParseConvId(c.conversation.conv_id);
          if (ref && ref->type == store::ConvType::kPrivate)
            peers.push_back(Others(*ref, who.user_id)[0]);
        }
        auto items = std::make_shared<std::vector<store::UserConversation>>(std::move(page->items));
        store_.users().GetMany(peers, [this, who, items, done = std::move(done)](
                                          core::StatusOr<std::vector<store::User>> users) mutable {
          if (!users.ok()) return std::move(done)(StorageError(users.status()));
          std::unordered_map<int64_t, const store::User*> by_id;
          for (const auto& u : *users) by_id[u.user_id] = &u;
          std::vector<ConversationView> views;
          views.reserve(items->size());
          for (auto& c : *items) {
            ConversationView v{std::move(c), std::nullopt};
            auto ref = store::ParseConvId(v.conv.conversation.conv_id);
            if (ref && ref->type == store::ConvType::kPrivate) {
              if (auto it = by_id.find(Others(*ref, who.user_id)[0]); it != by_id.end()) {
                UserProfile p = ToProfile(*it->second);
                presence_.Decorate(p);
                v.peer = std::move(p);
              }
            }
            views.push_back(std::move(v));
          }
          std::move(done)(std::move(views));
        });
      });
}

void ConversationServiceImpl::ReadRange(Principal who, std::string conv_id, store::RangeQuery query,
                                        core::Callback<MessagePage> done) {
  if (auto s = CheckLimit(query.limit); !s.ok()) return std::move(done)(s);
  CheckMember(
      who, conv_id,
      [this, conv_id, query, done = std::move(done)](core::StatusOr<store::ConvRef> ref) mutable {
        if (!ref.ok()) return std::move(done)(ref.status());
        store_.messages().Read(
            conv_id, query,
            [done = std::move(done)](core::StatusOr<store::Page<store::Message>> page) mutable {
              if (!page.ok()) return std::move(done)(StorageError(page.status()));
              std::move(done)(MessagePage{std::move(page->items), page->has_more});
            });
      });
}

void ConversationServiceImpl::History(Principal who, std::string conv_id,
                                      std::optional<int64_t> before_seq,
                                      std::optional<int64_t> after_seq, int limit,
                                      core::Callback<MessagePage> done) {
  ReadRange(who, std::move(conv_id), store::RangeQuery{after_seq, before_seq, limit},
            std::move(done));
}

void ConversationServiceImpl::Sync(Principal who, std::string conv_id, int64_t after_seq, int limit,
                                   core::Callback<MessagePage> done) {
  if (after_seq < 0) return std::move(done)(absl::InvalidArgumentError("after_seq: must be >= 0"));
  ReadRange(who, std::move(conv_id), store::RangeQuery{after_seq, std::nullopt, limit},
            std::move(done));
}

void ConversationServiceImpl::Read(Principal who, std::string conv_id, int64_t seq,
                                   uint64_t origin_conn, core::Callback<int64_t> done) {
  if (seq < 0) return std::move(done)(absl::InvalidArgumentError("seq: must be >= 0"));
  CheckMember(who, conv_id,
              [this, who, conv_id, seq, origin_conn,
               done = std::move(done)](core::StatusOr<store::ConvRef> ref) mutable {
                if (!ref.ok()) return std::move(done)(ref.status());
                store_.conversations().MarkRead(
                    who.user_id, conv_id, seq,
                    [this, who, conv_id, origin_conn, ref = *ref,
                     done = std::move(done)](core::StatusOr<int64_t> read_seq) mutable {
                      if (!read_seq.ok()) {
                        if (read_seq.status().code() == absl::StatusCode::kNotFound) {
                          return std::move(done)(
                              absl::NotFoundError("conversation " + conv_id + " not found"));
                        }
                        return std::move(done)(StorageError(read_seq.status()));
                      }
                      std::move(done)(*read_seq);
                      std::vector<int64_t> to = Others(ref, who.user_id);
                      to.push_back(who.user_id);  // the reader's other devices
                      deliverer_.Receipt(to, origin_conn, conv_id, who.user_id, *read_seq);
                    });
              });
}

void ConversationServiceImpl::Ack(Principal who, std::string conv_id, int64_t seq,
                                  core::DoneCallback done) {
  if (seq < 0) return std::move(done)(absl::InvalidArgumentError("seq: must be >= 0"));
  CheckMember(
      who, conv_id,
      [this, who, conv_id, seq,
       done = std::move(done)](core::StatusOr<store::ConvRef> ref) mutable {
        if (!ref.ok()) return std::move(done)(ref.status());
        store_.conversations().MarkDelivered(
            who.session_id, conv_id, seq,
            [done = std::move(done)](core::StatusOr<int64_t> delivered) mutable {
              if (!delivered.ok() && delivered.status().code() != absl::StatusCode::kNotFound) {
                return std::move(done)(StorageError(delivered.status()));
              }
              std::move(done)(absl::OkStatus());
            });
      });
}

void ConversationServiceImpl::Typing(Principal who, std::string conv_id, core::DoneCallback done) {
  CheckMember(
      who, conv_id,
      [this, who, conv_id, done = std::move(done)](core::StatusOr<store::ConvRef> ref) mutable {
        if (!ref.ok()) return std::move(done)(ref.status());
        deliverer_.Typing(Others(*ref, who.user_id), conv_id, who.user_id);
        std::move(done)(absl::OkStatus());
      });
}

void ConversationServiceImpl::Pending(
    Principal who, core::Callback<std::vector<store::PendingConversation>> done) {
  store_.conversations().ListPending(
      who.user_id, who.session_id,
      [done = std::move(done)](core::StatusOr<std::vector<store::PendingConversation>> r) mutable {
        if (!r.ok()) return std::move(done)(StorageError(r.status()));
        std::move(done)(std::move(*r));
      });
}

}  // namespace mpim::service
