#include "service/conversation/conversation_service_impl.h"

#include <unordered_map>

#include "core/async.h"
#include "service/errors.h"
#include "service/user/user_service_impl.h"
#include "service/validation.h"

namespace mpim::service {

core::Status ConversationServiceImpl::CheckLimit(int limit) const {
  if (limit < 1 || limit > page_max_) {
    return absl::InvalidArgumentError("limit: must be between 1 and " + std::to_string(page_max_));
  }
  return absl::OkStatus();
}

void ConversationServiceImpl::CheckAccess(
    Principal who, const std::string& conv_id,
    absl::AnyInvocable<void(core::StatusOr<Access>) &&> then) {
  auto ref = store::ParseConvId(conv_id);
  if (!ref) return std::move(then)(absl::InvalidArgumentError("conv_id: malformed"));
  if (ref->type == store::ConvType::kPrivate) {
    if (who.user_id != ref->a && who.user_id != ref->b) {
      return std::move(then)(absl::PermissionDeniedError("not a member of " + conv_id));
    }
    return std::move(then)(Access{*ref, true});
  }
  int64_t group = ref->a;
  store_.groups().GetMember(
      group, who.user_id,
      [this, who, group, ref = *ref, conv_id,
       then = std::move(then)](core::StatusOr<store::GroupMember> m) mutable {
        if (m.ok()) return std::move(then)(Access{ref, true, {{m->joined_seq + 1, INT64_MAX}}});
        if (m.status().code() != absl::StatusCode::kNotFound) {
          return std::move(then)(StorageError(m.status()));
        }
        // A former member still sees what they were present for; an unknown
        // group is not_found.
        store_.groups().ListPastSpans(
            group, who.user_id,
            [this, group, ref, conv_id, then = std::move(then)](
                core::StatusOr<std::vector<store::MembershipSpan>> spans) mutable {
              if (!spans.ok() && spans.status().code() != absl::StatusCode::kNotFound) {
                return std::move(then)(StorageError(spans.status()));
              }
              if (spans.ok() && !spans->empty()) {
                Access access{ref, false, {}};
                for (const auto& span : *spans) {
                  access.spans.emplace_back(span.joined_seq + 1, span.left_seq);
                }
                return std::move(then)(std::move(access));
              }
              store_.groups().Get(
                  group, [conv_id, then = std::move(then)](core::StatusOr<store::Group> g) mutable {
                    if (!g.ok() && g.status().code() == absl::StatusCode::kNotFound) {
                      return std::move(then)(
                          absl::NotFoundError("conversation " + conv_id + " not found"));
                    }
                    if (!g.ok()) return std::move(then)(StorageError(g.status()));
                    std::move(then)(absl::PermissionDeniedError("not a member of " + conv_id));
                  });
            });
      });
}

void ConversationServiceImpl::CheckMember(
    Principal who, const std::string& conv_id,
    absl::AnyInvocable<void(core::StatusOr<Access>) &&> then) {
  CheckAccess(who, conv_id,
              [conv_id, then = std::move(then)](core::StatusOr<Access> access) mutable {
                if (access.ok() && !access->member) {
                  return std::move(then)(absl::PermissionDeniedError("not a member of " + conv_id));
                }
                std::move(then)(std::move(access));
              });
}

void ConversationServiceImpl::Others(const store::ConvRef& ref, int64_t me,
                                     absl::AnyInvocable<void(std::vector<int64_t>) &&> then) {
  fanout_.SmallRecipients(ref, [me, then = std::move(then)](core::StatusOr<MemberList> m) mutable {
    std::vector<int64_t> out;
    if (m.ok() && *m) {
      for (int64_t u : **m) {
        if (u != me) out.push_back(u);
      }
    }
    std::move(then)(std::move(out));
  });
}

void ConversationServiceImpl::List(Principal who, int limit,
                                   core::Callback<std::vector<ConversationView>> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  store_.conversations().ListForUser(
      who.user_id, std::nullopt, limit,
      [this, who, done = std::move(done)](core::StatusOr<store::ConversationPage> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        auto peer_of = [me = who.user_id](const std::string& conv_id) -> int64_t {
          auto ref = store::ParseConvId(conv_id);
          if (!ref || ref->type != store::ConvType::kPrivate) return 0;
          return ref->a == me ? ref->b : ref->a;
        };
        std::vector<int64_t> peers;
        for (const auto& c : page->items) {
          if (int64_t p = peer_of(c.conversation.conv_id)) peers.push_back(p);
        }
        auto items = std::make_shared<std::vector<store::UserConversation>>(std::move(page->items));
        store_.users().GetMany(peers, [this, peer_of, items, done = std::move(done)](
                                          core::StatusOr<std::vector<store::User>> users) mutable {
          if (!users.ok()) return std::move(done)(StorageError(users.status()));
          std::unordered_map<int64_t, const store::User*> by_id;
          for (const auto& u : *users) by_id[u.user_id] = &u;
          auto views = std::make_shared<std::vector<ConversationView>>();
          views->reserve(items->size());
          for (auto& c : *items) {
            ConversationView v{std::move(c), std::nullopt, std::nullopt};
            if (auto it = by_id.find(peer_of(v.conv.conversation.conv_id)); it != by_id.end()) {
              UserProfile p = ToProfile(*it->second);
              DecoratePresence(&presence_, p);
              v.peer = std::move(p);
            }
            views->push_back(std::move(v));
          }
          // Group conversations carry their group.
          core::ForEachSequential(
              views->size(),
              [this, views](size_t i, auto next) {
                auto ref = store::ParseConvId((*views)[i].conv.conversation.conv_id);
                if (!ref || ref->type != store::ConvType::kGroup) return next();
                store_.groups().Get(ref->a, [views, i, next = std::move(next)](
                                                core::StatusOr<store::Group> g) mutable {
                  if (g.ok()) (*views)[i].group = std::move(*g);
                  next();
                });
              },
              [views, done = std::move(done)]() mutable { std::move(done)(std::move(*views)); });
        });
      });
}

void ConversationServiceImpl::ReadRange(Principal who, std::string conv_id, store::RangeQuery query,
                                        core::Callback<MessagePage> done) {
  if (auto s = CheckLimit(query.limit); !s.ok()) return std::move(done)(s);
  CheckAccess(
      who, conv_id,
      [this, conv_id, query, done = std::move(done)](core::StatusOr<Access> access) mutable {
        if (!access.ok()) return std::move(done)(access.status());
        // Clip the window to what this user may see.
        store::RangeQuery q = query;
        int64_t min_seq = access->min_seq();
        if (q.after_seq) q.after_seq = std::max(*q.after_seq, min_seq - 1);
        if (access->max_seq() != INT64_MAX) {
          q.before_seq = std::min(q.before_seq.value_or(INT64_MAX), access->max_seq() + 1);
        }
        // Nothing strictly between them (written so INT64_MAX cannot overflow).
        if (q.after_seq && q.before_seq &&
            (*q.before_seq <= *q.after_seq || *q.before_seq - *q.after_seq <= 1)) {
          return std::move(done)(MessagePage{});
        }
        store_.messages().Read(
            conv_id, q,
            [min_seq, scrolling_back = !q.after_seq, spans = access->spans,
             done = std::move(done)](core::StatusOr<store::Page<store::Message>> page) mutable {
              if (!page.ok()) return std::move(done)(StorageError(page.status()));
              MessagePage out{std::move(page->items), page->has_more};
              if (spans.size() > 1) {
                // Between two memberships: not this user's to see.
                Access visible{{}, false, std::move(spans)};
                std::erase_if(out.messages, [&visible](const store::Message& m) {
                  return !visible.Visible(m.seq);
                });
              }
              if (scrolling_back) {
                // Reading backwards: drop what lies before the member's start.
                size_t before = out.messages.size();
                std::erase_if(out.messages,
                              [min_seq](const store::Message& m) { return m.seq < min_seq; });
                if (out.messages.size() != before ||
                    (!out.messages.empty() && out.messages.front().seq == min_seq)) {
                  out.has_more = false;
                }
              }
              std::move(done)(std::move(out));
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
                                   route::ConnId origin_conn, core::Callback<int64_t> done) {
  if (seq < 0) return std::move(done)(absl::InvalidArgumentError("seq: must be >= 0"));
  CheckMember(
      who, conv_id,
      [this, who, conv_id, seq, origin_conn,
       done = std::move(done)](core::StatusOr<Access> access) mutable {
        if (!access.ok()) return std::move(done)(access.status());
        store_.conversations().MarkRead(
            who.user_id, conv_id, seq,
            [this, who, conv_id, seq, origin_conn, ref = access->ref,
             done = std::move(done)](core::StatusOr<int64_t> read_seq) mutable {
              if (!read_seq.ok()) {
                if (read_seq.status().code() == absl::StatusCode::kNotFound) {
                  return std::move(done)(
                      absl::NotFoundError("conversation " + conv_id + " not found"));
                }
                return std::move(done)(StorageError(read_seq.status()));
              }
              int64_t value = *read_seq;
              std::move(done)(value);
              // read_seq was already past `seq`: nothing moved, nobody is told.
              if (value > seq) return;
              Others(ref, who.user_id,
                     [this, who, conv_id, origin_conn, value](std::vector<int64_t> to) mutable {
                       to.push_back(who.user_id);  // the reader's other devices
                       deliverer_.Receipt(to, origin_conn, conv_id, who.user_id, value);
                     });
            });
      });
}

void ConversationServiceImpl::Ack(Principal who, std::string conv_id, int64_t seq,
                                  core::DoneCallback done) {
  if (seq < 0) return std::move(done)(absl::InvalidArgumentError("seq: must be >= 0"));
  auto ref = store::ParseConvId(conv_id);
  if (!ref) return std::move(done)(absl::InvalidArgumentError("conv_id: malformed"));
  if (ref->type == store::ConvType::kPrivate && who.user_id != ref->a && who.user_id != ref->b) {
    return std::move(done)(absl::PermissionDeniedError("not a member of " + conv_id));
  }
  // No store read for a group: an ack moves only this session's own cursor,
  // which is read only for conversations the user takes part in (and is
  // clamped to last_seq when written), so a non-member's ack changes
  // nothing anyone sees. Hundreds of thousands of acks per second in a
  // large group would otherwise each cost a membership read.
  cursors_.Advance(who.session_id, conv_id, seq);
  std::move(done)(absl::OkStatus());
}

void ConversationServiceImpl::Typing(Principal who, std::string conv_id, core::DoneCallback done) {
  CheckMember(who, conv_id,
              [this, who, conv_id, done = std::move(done)](core::StatusOr<Access> access) mutable {
                if (!access.ok()) return std::move(done)(access.status());
                Others(access->ref, who.user_id, [this, who, conv_id](std::vector<int64_t> to) {
                  deliverer_.Typing(to, conv_id, who.user_id);
                });
                std::move(done)(absl::OkStatus());
              });
}

void ConversationServiceImpl::Update(Principal who, std::string conv_id, std::optional<bool> muted,
                                     std::optional<bool> pinned, core::DoneCallback done) {
  CheckMember(
      who, conv_id,
      [this, who, conv_id, muted, pinned,
       done = std::move(done)](core::StatusOr<Access> access) mutable {
        if (!access.ok()) return std::move(done)(access.status());
        auto finish = [this, who, conv_id, done = std::move(done)](core::Status s) mutable {
          if (s.code() == absl::StatusCode::kNotFound) {
            return std::move(done)(absl::NotFoundError("conversation " + conv_id + " not found"));
          }
          if (!s.ok()) return std::move(done)(StorageError(s));
          deliverer_.Conv({who.user_id}, conv_id, "updated");  // the user's devices
          std::move(done)(absl::OkStatus());
        };
        auto then_pin = [this, who, conv_id, pinned,
                         finish = std::move(finish)](core::Status s) mutable {
          if (!s.ok() || !pinned) return finish(s);
          store_.conversations().SetPinned(who.user_id, conv_id, *pinned, std::move(finish));
        };
        if (!muted) return then_pin(absl::OkStatus());
        store_.conversations().SetMuted(who.user_id, conv_id, *muted, std::move(then_pin));
      });
}

void ConversationServiceImpl::CollectScopes(Principal who,
                                            std::optional<store::ConversationCursor> after,
                                            std::shared_ptr<std::vector<store::SearchScope>> scopes,
                                            core::DoneCallback done) {
  store_.conversations().ListForUser(
      who.user_id, after, store::kMaxPageLimit,
      [this, who, scopes,
       done = std::move(done)](core::StatusOr<store::ConversationPage> page) mutable {
        if (!page.ok()) return std::move(done)(StorageError(page.status()));
        auto ids = std::make_shared<std::vector<std::string>>();
        for (const auto& c : page->items) ids->push_back(c.conversation.conv_id);
        auto next = page->has_more ? page->next : std::nullopt;
        // Each conversation's visible span, one at a time.
        core::ForEachSequential(
            ids->size(),
            [this, who, ids, scopes](size_t i, auto next_step) {
              CheckAccess(who, (*ids)[i],
                          [ids, scopes, i, next_step = std::move(next_step)](
                              core::StatusOr<Access> access) mutable {
                            if (access.ok()) {
                              for (const auto& [lo, hi] : access->spans) {
                                scopes->push_back(store::SearchScope{(*ids)[i], lo, hi});
                              }
                            }
                            next_step();
                          });
            },
            [this, who, next, scopes, done = std::move(done)]() mutable {
              if (next && scopes->size() < store::kMaxPageLimit) {
                return CollectScopes(who, next, scopes, std::move(done));
              }
              if (scopes->size() > store::kMaxPageLimit) scopes->resize(store::kMaxPageLimit);
              std::move(done)(absl::OkStatus());
            });
      });
}

void ConversationServiceImpl::Search(Principal who, std::string query,
                                     std::optional<std::string> conv_id, int limit,
                                     core::Callback<std::vector<store::Message>> done) {
  if (auto s = CheckLimit(limit); !s.ok()) return std::move(done)(s);
  int64_t len = Utf8Length(query);
  if (len < 1 || len > 256) {
    return std::move(done)(absl::InvalidArgumentError("q: must be 1-256 characters"));
  }
  auto run = [this, query, limit](std::vector<store::SearchScope> scopes,
                                  core::Callback<std::vector<store::Message>> done) {
    if (scopes.empty()) return std::move(done)(std::vector<store::Message>{});
    store_.search().Search(
        store::SearchQuery{query, std::move(scopes), limit},
        [done = std::move(done)](core::StatusOr<std::vector<store::Message>> r) mutable {
          if (!r.ok() && r.status().code() != absl::StatusCode::kInvalidArgument) {
            return std::move(done)(StorageError(r.status()));
          }
          if (!r.ok()) {
            return std::move(done)(absl::InvalidArgumentError("q: needs at least one word"));
          }
          std::move(done)(std::move(*r));
        });
  };
  if (conv_id) {
    CheckAccess(who, *conv_id,
                [run = std::move(run), conv_id = *conv_id,
                 done = std::move(done)](core::StatusOr<Access> access) mutable {
                  if (!access.ok()) return std::move(done)(access.status());
                  std::vector<store::SearchScope> scopes;
                  for (const auto& [lo, hi] : access->spans) {
                    scopes.push_back(store::SearchScope{conv_id, lo, hi});
                  }
                  run(std::move(scopes), std::move(done));
                });
    return;
  }
  auto scopes = std::make_shared<std::vector<store::SearchScope>>();
  CollectScopes(who, std::nullopt, scopes,
                [scopes, run = std::move(run), done = std::move(done)](core::Status s) mutable {
                  if (!s.ok()) return std::move(done)(s);
                  run(std::move(*scopes), std::move(done));
                });
}

void ConversationServiceImpl::Pending(
    Principal who, core::Callback<std::vector<store::PendingConversation>> done) {
  // Taken before the read: a cursor leaves memory only once it is written.
  DeliveredCursors::SessionCursors unwritten = cursors_.Snapshot(who.session_id);
  store_.conversations().ListPending(
      who.user_id, who.session_id,
      [unwritten = std::move(unwritten),
       done = std::move(done)](core::StatusOr<std::vector<store::PendingConversation>> r) mutable {
        if (!r.ok()) return std::move(done)(StorageError(r.status()));
        DeliveredCursors::Overlay(unwritten, *r);
        std::move(done)(std::move(*r));
      });
}

void ConversationServiceImpl::StartSeq(Principal who, std::string conv_id,
                                       core::Callback<int64_t> done) {
  // Taken before the read, as in Pending.
  DeliveredCursors::SessionCursors unwritten = cursors_.Snapshot(who.session_id);
  int64_t acked = 0;
  if (auto it = unwritten.find(conv_id); it != unwritten.end()) acked = it->second;
  store_.conversations().StartSeq(
      who.user_id, who.session_id, conv_id,
      [acked, done = std::move(done)](core::StatusOr<int64_t> r) mutable {
        if (r.status().code() == absl::StatusCode::kNotFound) return std::move(done)(r.status());
        if (!r.ok()) return std::move(done)(StorageError(r.status()));
        std::move(done)(std::max(*r, acked));
      });
}

}  // namespace mpim::service
