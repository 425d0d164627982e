// Contract: MessageStore, ConversationStore and SearchStore.
#include <future>

#include "store/conv_id.h"
#include "store_contract.h"

namespace mpim::store::testing {
namespace {

using absl::StatusCode;

std::vector<int64_t> Seqs(const Page<Message>& page) {
  std::vector<int64_t> out;
  for (const Message& m : page.items) out.push_back(m.seq);
  return out;
}

class MessageContract : public StoreContractTest {
 protected:
  void SetUp() override {
    StoreContractTest::SetUp();
    alice_ = MakeUser("alice");
    bob_ = MakeUser("bob");
    conv_ = PrivateConvId(alice_, bob_);
  }

  // Appends `n` messages alice -> bob; returns their msg_ids.
  std::vector<int64_t> AppendN(int n, const std::string& tag = "m") {
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i) {
      auto r = Append(TextMessage(conv_, alice_, bob_, tag, Numbered(tag, i)));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) ids.push_back(r->message.msg_id);
    }
    return ids;
  }

  core::StatusOr<Page<Message>> Read(std::optional<int64_t> after, std::optional<int64_t> before,
                                     int limit) {
    return Call(store().messages(), &MessageStore::Read, conv_, RangeQuery{after, before, limit});
  }

  int64_t alice_ = 0, bob_ = 0;
  std::string conv_;
};

TEST_P(StoreContractTest, ConvIdHelpers) {
  EXPECT_EQ(PrivateConvId(1002, 1001), "p:1001:1002");
  EXPECT_EQ(GroupConvId(77), "g:77");
  auto p = ParseConvId("p:1001:1002");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->type, ConvType::kPrivate);
  EXPECT_EQ(p->a, 1001);
  EXPECT_EQ(p->b, 1002);
  auto g = ParseConvId("g:77");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(g->type, ConvType::kGroup);
  EXPECT_EQ(g->a, 77);
  for (const char* bad : {"", "p:", "g:", "g:0", "g:-1", "g:01", "p:2:1", "p:1:1", "p:1", "x:1",
                          "g:1x", "g:99999999999999999999", "p:1:2:3"}) {
    EXPECT_FALSE(ParseConvId(bad).has_value()) << bad;
  }
}

TEST_P(MessageContract, AppendAssignsSeqsAndCreatesPrivateConversation) {
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, conv_).status().code(),
            StatusCode::kNotFound);
  AppendRequest req = TextMessage(conv_, alice_, bob_, "hi", "c1");
  auto first = Append(req);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->duplicate);
  const Message& m = first->message;
  EXPECT_EQ(m.msg_id, req.msg_id);
  EXPECT_EQ(m.conv_id, conv_);
  EXPECT_EQ(m.seq, 1);
  EXPECT_EQ(m.sender, alice_);
  EXPECT_EQ(m.recipient, bob_);
  EXPECT_EQ(m.type, "text");
  EXPECT_EQ(m.body, req.body);
  EXPECT_EQ(m.ts, req.ts);
  EXPECT_EQ(m.client_msg_id, "c1");
  EXPECT_FALSE(m.recalled);
  auto second = Append(TextMessage(conv_, bob_, alice_, "yo", "c1"));  // other sender, same key
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->message.seq, 2);

  auto conv = Call(store().conversations(), &ConversationStore::Get, conv_);
  ASSERT_TRUE(conv.ok());
  EXPECT_EQ(conv->type, ConvType::kPrivate);
  EXPECT_EQ(conv->last_seq, 2);
  EXPECT_EQ(conv->last_msg_id, second->message.msg_id);
  // Both users take part now.
  EXPECT_TRUE(Call(store().conversations(), &ConversationStore::GetForUser, alice_, conv_).ok());
  EXPECT_TRUE(Call(store().conversations(), &ConversationStore::GetForUser, bob_, conv_).ok());
  auto got = Call(store().messages(), &MessageStore::Get, req.msg_id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->body, req.body);
}

TEST_P(MessageContract, DuplicateReturnsOriginalAndWritesNothing) {
  AppendRequest req = TextMessage(conv_, alice_, bob_, "hi", "dup");
  auto first = Append(req);
  ASSERT_TRUE(first.ok());
  AppendRequest again = TextMessage(conv_, alice_, bob_, "different body", "dup");
  auto second = Append(again);
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second->duplicate);
  EXPECT_EQ(second->message.msg_id, req.msg_id);
  EXPECT_EQ(second->message.seq, 1);
  EXPECT_EQ(second->message.body, req.body);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, conv_)->last_seq, 1);
  EXPECT_EQ(Call(store().messages(), &MessageStore::Get, again.msg_id).status().code(),
            StatusCode::kNotFound);
  auto by_key =
      Call(store().messages(), &MessageStore::GetByClientMsgId, alice_, std::string("dup"));
  ASSERT_TRUE(by_key.ok());
  EXPECT_EQ(by_key->msg_id, req.msg_id);
  EXPECT_EQ(Call(store().messages(), &MessageStore::GetByClientMsgId, bob_, std::string("dup"))
                .status()
                .code(),
            StatusCode::kNotFound);
}

TEST_P(MessageContract, MessagesWithoutClientIdAreNeverDuplicates) {
  AppendRequest a = TextMessage(conv_, alice_, bob_, "sys", "");
  a.type = "system";
  AppendRequest b = a;
  b.msg_id = NextMsgId();
  ASSERT_TRUE(Append(a).ok());
  auto r = Append(b);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->duplicate);
  EXPECT_EQ(r->message.seq, 2);
  EXPECT_EQ(r->message.client_msg_id, "");
}

TEST_P(MessageContract, AppendErrorsConsumeNoSeq) {
  ASSERT_TRUE(Append(TextMessage(conv_, alice_, bob_, "ok", "c0")).ok());
  AppendRequest bad = TextMessage("p:1002:1001", alice_, bob_, "x", "c1");
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kInvalidArgument);
  bad = TextMessage("nonsense", alice_, bob_, "x", "c1");
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kInvalidArgument);
  bad = TextMessage(conv_, alice_, bob_, "x", "c1");
  bad.type = "html";
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kInvalidArgument);
  bad = TextMessage(conv_, alice_, bob_, "x", std::string(65, 'k'));
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kInvalidArgument);
  bad = TextMessage(conv_, alice_, bob_, "x", "c1");
  bad.msg_id = 0;
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kInvalidArgument);
  // Unknown group conversation; private chat with an unknown user.
  EXPECT_EQ(Append(TextMessage("g:4242", alice_, 4242, "x", "c1")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(
      Append(TextMessage(PrivateConvId(alice_, 4242), alice_, 4242, "x", "c1")).status().code(),
      StatusCode::kNotFound);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::Get, PrivateConvId(alice_, 4242))
                .status()
                .code(),
            StatusCode::kNotFound);
  // A msg_id already used by another message.
  auto first = Call(store().messages(), &MessageStore::Read, conv_, RangeQuery{0, std::nullopt, 1});
  bad = TextMessage(conv_, alice_, bob_, "x", "c2");
  bad.msg_id = first->items[0].msg_id;
  EXPECT_EQ(Append(bad).status().code(), StatusCode::kAlreadyExists);

  auto next = Append(TextMessage(conv_, alice_, bob_, "ok", "c3"));
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->message.seq, 2);
}

TEST_P(MessageContract, RangeReads) {
  AppendN(10);
  auto p = Read(std::nullopt, std::nullopt, 3);  // latest
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{8, 9, 10}));
  EXPECT_TRUE(p->has_more);
  p = Read(0, std::nullopt, 4);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_TRUE(p->has_more);
  p = Read(7, std::nullopt, 3);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{8, 9, 10}));
  EXPECT_FALSE(p->has_more);
  p = Read(10, std::nullopt, 3);
  EXPECT_TRUE(p->items.empty());
  EXPECT_FALSE(p->has_more);
  p = Read(std::nullopt, 4, 5);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_FALSE(p->has_more);
  p = Read(std::nullopt, 6, 2);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{4, 5}));
  EXPECT_TRUE(p->has_more);
  p = Read(2, 7, 2);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{3, 4}));
  EXPECT_TRUE(p->has_more);
  p = Read(2, 5, 10);
  EXPECT_EQ(Seqs(*p), (std::vector<int64_t>{3, 4}));
  EXPECT_FALSE(p->has_more);
  p = Read(5, 5, 10);
  EXPECT_TRUE(p->items.empty());
  p = Read(std::nullopt, 1, 10);
  EXPECT_TRUE(p->items.empty());
  EXPECT_FALSE(p->has_more);
  p = Read(0, std::nullopt, 10);
  EXPECT_EQ(p->items.size(), 10u);
  EXPECT_FALSE(p->has_more);
  for (int bad : {0, -3, kMaxPageLimit + 1}) {
    EXPECT_EQ(Read(0, std::nullopt, bad).status().code(), StatusCode::kInvalidArgument);
  }
  // An unknown conversation reads as empty.
  auto empty = Call(store().messages(), &MessageStore::Read, std::string("g:4242"),
                    RangeQuery{std::nullopt, std::nullopt, 10});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->items.empty());
  EXPECT_FALSE(empty->has_more);
}

TEST_P(MessageContract, RecallTombstonesAndLeavesSearch) {
  auto ids = AppendN(2, "secret");
  ASSERT_EQ(ids.size(), 2u);
  auto indexed = Call(store().search(), &SearchStore::Index,
                      std::vector<SearchDocument>{{ids[0], "secret plan"}, {ids[1], "secret too"}});
  ASSERT_TRUE(indexed.ok());
  EXPECT_EQ(*indexed, 2);
  auto recalled = Call(store().messages(), &MessageStore::Recall, ids[0], std::string("{}"));
  ASSERT_TRUE(recalled.ok()) << recalled.status();
  EXPECT_TRUE(recalled->recalled);
  EXPECT_EQ(recalled->body, "{}");
  EXPECT_EQ(recalled->seq, 1);
  auto got = Call(store().messages(), &MessageStore::Get, ids[0]);
  EXPECT_TRUE(got->recalled);
  EXPECT_EQ(got->body, "{}");
  // Again: unchanged, not an error.
  EXPECT_TRUE(
      Call(store().messages(), &MessageStore::Recall, ids[0], std::string("{\"x\":1}"))->recalled);
  EXPECT_EQ(Call(store().messages(), &MessageStore::Get, ids[0])->body, "{}");
  EXPECT_EQ(Call(store().messages(), &MessageStore::Recall, int64_t{42}, std::string("{}"))
                .status()
                .code(),
            StatusCode::kNotFound);

  SearchQuery q{"secret", {{conv_, 1, INT64_MAX}}, 10};
  auto hits = Call(store().search(), &SearchStore::Search, q);
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 1u);
  EXPECT_EQ((*hits)[0].msg_id, ids[1]);
  // A late index job cannot bring the recalled text back.
  EXPECT_EQ(*Call(store().search(), &SearchStore::Index,
                  std::vector<SearchDocument>{{ids[0], "secret plan"}, {4242, "ghost"}}),
            0);
  EXPECT_EQ(Call(store().search(), &SearchStore::Search, q)->size(), 1u);
}

TEST_P(MessageContract, SearchOnlyWithinScopes) {
  int64_t carol = MakeUser("carol");
  std::string other = PrivateConvId(alice_, carol);
  std::vector<SearchDocument> docs;
  for (int i = 0; i < 4; ++i) {
    auto r = Append(TextMessage(conv_, alice_, bob_, "x", Numbered("a", i)));
    docs.push_back({r->message.msg_id, i % 2 == 0 ? "Café meeting tomorrow" : "lunch"});
  }
  auto r = Append(TextMessage(other, alice_, carol, "x", "o"));
  docs.push_back({r->message.msg_id, "cafe meeting with carol"});
  ASSERT_EQ(*Call(store().search(), &SearchStore::Index, docs), 5);

  auto search = [&](const std::string& text, std::vector<SearchScope> scopes, int limit = 10) {
    return Call(store().search(), &SearchStore::Search,
                SearchQuery{text, std::move(scopes), limit});
  };
  auto hits = search("cafe", {{conv_, 1, INT64_MAX}});
  ASSERT_TRUE(hits.ok()) << hits.status();
  ASSERT_EQ(hits->size(), 2u);  // diacritics and case folded; other conv excluded
  for (const auto& m : *hits) EXPECT_EQ(m.conv_id, conv_);
  EXPECT_EQ(search("cafe", {{conv_, 1, INT64_MAX}, {other, 1, INT64_MAX}})->size(), 3u);
  EXPECT_EQ(search("cafe", {{conv_, 2, 3}})->size(), 1u);  // seq span: only seq 3
  EXPECT_EQ(search("MEETING tomorrow", {{conv_, 1, INT64_MAX}, {other, 1, INT64_MAX}})->size(), 2u);
  EXPECT_EQ(search("meet*", {{other, 1, INT64_MAX}})->size(), 1u);
  EXPECT_EQ(search("cafe", {{conv_, 1, INT64_MAX}}, 1)->size(), 1u);
  EXPECT_TRUE(search("cafe", {})->empty());
  EXPECT_TRUE(search("nothing", {{conv_, 1, INT64_MAX}})->empty());
  // Syntax characters are plain text, never an error.
  EXPECT_TRUE(search("\"unbalanced AND OR NOT (", {{conv_, 1, INT64_MAX}}).ok());
  EXPECT_EQ(search("   ", {{conv_, 1, INT64_MAX}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(search("cafe", {{"bogus", 1, 2}}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(search("cafe", {{conv_, 1, 2}}, 0).status().code(), StatusCode::kInvalidArgument);
}

// What an indexer that died before flushing left behind: text messages the
// index lacks (not custom ones, not recalled ones), in msg_id order.
TEST_P(MessageContract, UnindexedListsTheTextMessagesTheIndexLacks) {
  auto unindexed = [&](int64_t after, int limit) {
    std::vector<int64_t> out;
    auto page = Call(store().search(), &SearchStore::Unindexed, after, limit);
    EXPECT_TRUE(page.ok()) << page.status();
    if (page.ok()) {
      for (const Message& m : *page) out.push_back(m.msg_id);
    }
    return out;
  };
  EXPECT_EQ(*Call(store().search(), &SearchStore::LastIndexed), 0);
  EXPECT_TRUE(unindexed(0, 10).empty());
  auto ids = AppendN(5, "lost");
  ASSERT_EQ(ids.size(), 5u);
  AppendRequest custom = TextMessage(conv_, alice_, bob_, "x", "custom-1");
  custom.type = "custom";
  ASSERT_TRUE(Append(custom).ok());
  EXPECT_EQ(unindexed(0, 10), ids);

  ASSERT_EQ(*Call(store().search(), &SearchStore::Index,
                  std::vector<SearchDocument>{{ids[1], "lost one"}, {ids[3], "lost three"}}),
            2);
  EXPECT_EQ(*Call(store().search(), &SearchStore::LastIndexed), ids[3]);
  EXPECT_EQ(unindexed(0, 10), (std::vector<int64_t>{ids[0], ids[2], ids[4]}));
  EXPECT_EQ(unindexed(ids[0], 10), (std::vector<int64_t>{ids[2], ids[4]}));
  EXPECT_EQ(unindexed(0, 1), (std::vector<int64_t>{ids[0]}));
  ASSERT_TRUE(Call(store().messages(), &MessageStore::Recall, ids[2], std::string("{}")).ok());
  EXPECT_EQ(unindexed(0, 10), (std::vector<int64_t>{ids[0], ids[4]}));
  EXPECT_EQ(Call(store().search(), &SearchStore::Unindexed, int64_t{0}, 0).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_P(MessageContract, ReadCursorForwardOnlyAndClamped) {
  AppendN(5);
  auto mark = [&](int64_t user, int64_t seq) {
    return Call(store().conversations(), &ConversationStore::MarkRead, user, conv_, seq);
  };
  EXPECT_EQ(*mark(bob_, 3), 3);
  EXPECT_EQ(*mark(bob_, 2), 3);   // regression ignored
  EXPECT_EQ(*mark(bob_, 99), 5);  // clamped to last_seq
  EXPECT_EQ(*mark(bob_, -1), 5);
  EXPECT_EQ(mark(4242, 1).status().code(), StatusCode::kNotFound);
  int64_t carol = MakeUser("carol");
  EXPECT_EQ(mark(carol, 1).status().code(), StatusCode::kNotFound);  // not taking part
  auto uc = Call(store().conversations(), &ConversationStore::GetForUser, bob_, conv_);
  EXPECT_EQ(uc->read_seq, 5);
  // alice's cursor is hers alone.
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::GetForUser, alice_, conv_)->read_seq,
            0);
}

TEST_P(MessageContract, DeliveredCursorPerSessionAndPendingList) {
  AppendN(4);
  auto deliver = [&](int64_t session, int64_t seq) {
    return Call(store().conversations(), &ConversationStore::MarkDelivered, session, conv_, seq);
  };
  auto pending = [&](int64_t user, int64_t session) {
    return Call(store().conversations(), &ConversationStore::ListPending, user, session);
  };
  auto p = pending(bob_, 1);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 1u);
  EXPECT_EQ((*p)[0].conv_id, conv_);
  EXPECT_EQ((*p)[0].last_seq, 4);
  EXPECT_EQ((*p)[0].delivered_seq, 0);
  EXPECT_EQ(*deliver(1, 2), 2);
  EXPECT_EQ(*deliver(1, 1), 2);  // regression ignored
  EXPECT_EQ((*pending(bob_, 1))[0].delivered_seq, 2);
  EXPECT_EQ(*deliver(1, 10), 4);  // clamped
  EXPECT_TRUE(pending(bob_, 1)->empty());
  // Another session (device) of the same user has its own cursor.
  EXPECT_EQ(pending(bob_, 2)->size(), 1u);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::MarkDelivered, int64_t{1},
                 std::string("g:4242"), int64_t{1})
                .status()
                .code(),
            StatusCode::kNotFound);
  // A group joined after its history: nothing pending until a new message.
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"g", "", alice_, false, {}});
  ASSERT_TRUE(Append(TextMessage(g->conv_id, alice_, g->group_id, "x", "g1")).ok());
  ASSERT_TRUE(
      Call(store().groups(), &GroupStore::AddMembers, g->group_id, std::vector<int64_t>{bob_})
          .ok());
  EXPECT_TRUE(pending(bob_, 1)->empty());
  ASSERT_TRUE(Append(TextMessage(g->conv_id, alice_, g->group_id, "x", "g2")).ok());
  EXPECT_EQ(pending(bob_, 1)->size(), 1u);
}

TEST_P(MessageContract, StartSeqIsTheSessionsCursorOrTheJoinPoint) {
  AppendN(4);
  auto start = [&](int64_t user, int64_t session, const std::string& conv) {
    return Call(store().conversations(), &ConversationStore::StartSeq, user, session, conv);
  };
  EXPECT_EQ(*start(bob_, 1, conv_), 0) << "never acked";
  ASSERT_TRUE(Call(store().conversations(), &ConversationStore::MarkDelivered, int64_t{1}, conv_,
                   int64_t{3})
                  .ok());
  EXPECT_EQ(*start(bob_, 1, conv_), 3);
  EXPECT_EQ(*start(bob_, 2, conv_), 0) << "per session";
  EXPECT_EQ(start(bob_, 1, "g:4242").status().code(), StatusCode::kNotFound);
  // A group joined after two messages starts at the join point.
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"g", "", alice_, false, {}});
  ASSERT_TRUE(Append(TextMessage(g->conv_id, alice_, g->group_id, "x", "s1")).ok());
  ASSERT_TRUE(Append(TextMessage(g->conv_id, alice_, g->group_id, "x", "s2")).ok());
  EXPECT_EQ(start(bob_, 1, g->conv_id).status().code(), StatusCode::kNotFound) << "not a member";
  ASSERT_TRUE(
      Call(store().groups(), &GroupStore::AddMembers, g->group_id, std::vector<int64_t>{bob_})
          .ok());
  EXPECT_EQ(*start(bob_, 1, g->conv_id), 2);
}

TEST_P(MessageContract, DeliveredCursorsInOneWrite) {
  AppendN(4);
  auto pending = [&](int64_t session) {
    return Call(store().conversations(), &ConversationStore::ListPending, bob_, session);
  };
  auto many = [&](std::vector<DeliveredCursor> cursors) {
    return Call(store().conversations(), &ConversationStore::MarkDeliveredMany, cursors);
  };
  ASSERT_TRUE(many({{1, conv_, 2}, {2, conv_, 99}, {3, "g:4242", 1}, {3, conv_, -5}}).ok());
  EXPECT_EQ((*pending(1))[0].delivered_seq, 2);
  EXPECT_TRUE(pending(2)->empty());  // clamped to last_seq: 4
  EXPECT_EQ((*pending(3))[0].delivered_seq, 0);
  ASSERT_TRUE(many({{1, conv_, 1}}).ok());  // regression ignored
  EXPECT_EQ((*pending(1))[0].delivered_seq, 2);
  EXPECT_EQ(*Call(store().conversations(), &ConversationStore::MarkDelivered, int64_t{1}, conv_,
                  int64_t{3}),
            3);
  ASSERT_TRUE(many({{1, conv_, 4}}).ok());
  EXPECT_TRUE(pending(1)->empty());
  AppendN(1, "n");  // seq 5: session 2 was clamped to 4, so it is pending again
  EXPECT_EQ((*pending(2))[0].delivered_seq, 4);
  EXPECT_TRUE(many({}).ok());
}

TEST_P(MessageContract, WritesQueuedBetweenAppendsSeeEveryEarlierAppend) {
  // Queued together, so that they share batches: every other write sees the
  // conversation as of every append queued before it (an engine may keep
  // last_seq in memory within a batch, never visibly).
  AppendN(1);  // the conversation exists
  constexpr int kRounds = 20, kAppendsPerRound = 10;
  std::vector<std::future<core::StatusOr<AppendResult>>> appends;
  std::vector<std::future<core::StatusOr<int64_t>>> reads;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kAppendsPerRound; ++i) {
      auto done = std::make_shared<std::promise<core::StatusOr<AppendResult>>>();
      appends.push_back(done->get_future());
      store().messages().Append(
          TextMessage(conv_, alice_, bob_, "q", Numbered("q", round * kAppendsPerRound + i)),
          [done](core::StatusOr<AppendResult> r) { done->set_value(std::move(r)); });
    }
    auto done = std::make_shared<std::promise<core::StatusOr<int64_t>>>();
    reads.push_back(done->get_future());
    store().conversations().MarkRead(
        bob_, conv_, int64_t{1} << 40,
        [done](core::StatusOr<int64_t> r) { done->set_value(std::move(r)); });
  }
  for (size_t i = 0; i < appends.size(); ++i) {
    auto r = appends[i].get();
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->message.seq, static_cast<int64_t>(i) + 2);
  }
  for (int round = 0; round < kRounds; ++round) {
    auto read_seq = reads[round].get();
    ASSERT_TRUE(read_seq.ok()) << read_seq.status();
    EXPECT_EQ(*read_seq, 1 + (round + 1) * kAppendsPerRound) << "round " << round;
  }
  auto c = Call(store().conversations(), &ConversationStore::Get, conv_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->last_seq, 1 + kRounds * kAppendsPerRound);
  auto last = Call(store().messages(), &MessageStore::Read, conv_, RangeQuery{{}, {}, 1});
  ASSERT_TRUE(last.ok());
  ASSERT_EQ(last->items.size(), 1u);
  EXPECT_EQ(c->last_msg_id, last->items[0].msg_id);
}

TEST_P(MessageContract, MuteAndPin) {
  AppendN(1);
  ASSERT_TRUE(Call(store().conversations(), &ConversationStore::SetMuted, bob_, conv_, true).ok());
  ASSERT_TRUE(Call(store().conversations(), &ConversationStore::SetPinned, bob_, conv_, true).ok());
  auto uc = Call(store().conversations(), &ConversationStore::GetForUser, bob_, conv_);
  EXPECT_TRUE(uc->muted);
  EXPECT_TRUE(uc->pinned);
  EXPECT_FALSE(Call(store().conversations(), &ConversationStore::GetForUser, alice_, conv_)->muted);
  ASSERT_TRUE(Call(store().conversations(), &ConversationStore::SetMuted, bob_, conv_, false).ok());
  EXPECT_FALSE(Call(store().conversations(), &ConversationStore::GetForUser, bob_, conv_)->muted);
  EXPECT_EQ(
      Call(store().conversations(), &ConversationStore::SetMuted, bob_, std::string("g:4242"), true)
          .code(),
      StatusCode::kNotFound);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::SetPinned, int64_t{4242}, conv_, true)
                .code(),
            StatusCode::kNotFound);
}

TEST_P(MessageContract, MutedAmongAndTotalUnreadForPush) {
  int64_t carol = MakeUser("carol");
  AppendN(3);  // alice -> bob
  const std::string other = PrivateConvId(carol, bob_);
  ASSERT_TRUE(Append(TextMessage(other, carol, bob_, "c", "c1")).ok());
  ASSERT_TRUE(Append(TextMessage(other, bob_, carol, "b", "b1")).ok());
  ASSERT_TRUE(
      Call(store().conversations(), &ConversationStore::MarkRead, bob_, conv_, int64_t{1}).ok());
  auto unread = Call(store().conversations(), &ConversationStore::TotalUnread,
                     std::vector<int64_t>{carol, bob_, alice_, int64_t{4242}});
  ASSERT_TRUE(unread.ok()) << unread.status();
  // bob: 2 after his read cursor from alice, 1 from carol (not his own);
  // alice: none (her own); carol: bob's 1.
  using P = std::pair<int64_t, int64_t>;
  EXPECT_EQ(*unread, (std::vector<P>{{alice_, 0}, {bob_, 3}, {carol, 1}}));

  ASSERT_TRUE(Call(store().conversations(), &ConversationStore::SetMuted, bob_, conv_, true).ok());
  auto muted = Call(store().conversations(), &ConversationStore::MutedAmong, conv_,
                    std::vector<int64_t>{alice_, bob_, carol});
  ASSERT_TRUE(muted.ok()) << muted.status();
  EXPECT_EQ(*muted, std::vector<int64_t>{bob_});
  EXPECT_TRUE(Call(store().conversations(), &ConversationStore::MutedAmong, other,
                   std::vector<int64_t>{bob_})
                  ->empty());
  EXPECT_TRUE(
      Call(store().conversations(), &ConversationStore::MutedAmong, conv_, std::vector<int64_t>{})
          ->empty());
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::TotalUnread,
                 std::vector<int64_t>(kMaxPageLimit + 1, alice_))
                .status()
                .code(),
            StatusCode::kInvalidArgument);
}

TEST_P(MessageContract, EnsurePrivate) {
  auto c = Call(store().conversations(), &ConversationStore::EnsurePrivate, bob_, alice_);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->conv_id, conv_);
  EXPECT_EQ(c->last_seq, 0);
  EXPECT_EQ(c->created_at, kStartMs);
  AppendN(2);
  c = Call(store().conversations(), &ConversationStore::EnsurePrivate, alice_, bob_);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->last_seq, 2);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::EnsurePrivate, alice_, alice_)
                .status()
                .code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().conversations(), &ConversationStore::EnsurePrivate, alice_, int64_t{4242})
                .status()
                .code(),
            StatusCode::kNotFound);
  auto uc = Call(store().conversations(), &ConversationStore::GetForUser, alice_, conv_);
  ASSERT_TRUE(uc.ok());
  ASSERT_TRUE(uc->last_message.has_value());
  EXPECT_EQ(uc->last_message->seq, 2);
}

TEST_P(MessageContract, ConversationListingOrderUnreadAndPaging) {
  int64_t carol = MakeUser("carol");
  std::string with_carol = PrivateConvId(alice_, carol);
  auto g = Call(store().groups(), &GroupStore::Create, NewGroup{"g", "", alice_, false, {bob_}});
  ASSERT_TRUE(g.ok());
  // Activity order (oldest first): group (created, empty), conv_ , with_carol.
  AdvanceMs(10);
  ASSERT_TRUE(Append(TextMessage(conv_, bob_, alice_, "x", "b1")).ok());
  ASSERT_TRUE(Append(TextMessage(conv_, alice_, bob_, "x", "a1")).ok());
  ASSERT_TRUE(Append(TextMessage(conv_, bob_, alice_, "x", "b2")).ok());
  AdvanceMs(10);
  ASSERT_TRUE(Append(TextMessage(with_carol, carol, alice_, "x", "c1")).ok());

  auto list = [&](std::optional<ConversationCursor> after, int limit) {
    return Call(store().conversations(), &ConversationStore::ListForUser, alice_, after, limit);
  };
  auto page = list(std::nullopt, 10);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->items.size(), 3u);
  EXPECT_FALSE(page->has_more);
  EXPECT_EQ(page->items[0].conversation.conv_id, with_carol);
  EXPECT_EQ(page->items[1].conversation.conv_id, conv_);
  EXPECT_EQ(page->items[2].conversation.conv_id, g->conv_id);
  // Unread counts only the others' messages after read_seq.
  EXPECT_EQ(page->items[1].unread, 2);
  EXPECT_EQ(page->items[1].conversation.last_seq, 3);
  ASSERT_TRUE(page->items[1].last_message.has_value());
  EXPECT_EQ(page->items[1].last_message->client_msg_id, "b2");
  EXPECT_EQ(page->items[0].unread, 1);
  EXPECT_EQ(page->items[2].unread, 0);
  EXPECT_FALSE(page->items[2].last_message.has_value());
  ASSERT_TRUE(
      Call(store().conversations(), &ConversationStore::MarkRead, alice_, conv_, int64_t{1}).ok());
  page = list(std::nullopt, 10);
  EXPECT_EQ(page->items[1].unread, 1);
  EXPECT_EQ(page->items[1].read_seq, 1);

  // Pinned first, whatever the activity.
  ASSERT_TRUE(
      Call(store().conversations(), &ConversationStore::SetPinned, alice_, g->conv_id, true).ok());
  page = list(std::nullopt, 2);
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->has_more);
  ASSERT_TRUE(page->next.has_value());
  EXPECT_EQ(page->items[0].conversation.conv_id, g->conv_id);
  EXPECT_TRUE(page->items[0].pinned);
  EXPECT_EQ(page->items[1].conversation.conv_id, with_carol);
  auto rest = list(page->next, 2);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->items.size(), 1u);
  EXPECT_EQ(rest->items[0].conversation.conv_id, conv_);
  EXPECT_FALSE(rest->has_more);
  EXPECT_FALSE(rest->next.has_value());

  auto none = Call(store().conversations(), &ConversationStore::ListForUser, int64_t{4242},
                   std::optional<ConversationCursor>(), 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->items.empty());
  EXPECT_EQ(list(std::nullopt, 0).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(MessageContract, ConversationListingTiesPageByConvId) {
  // Same activity time everywhere: the conv_id order decides, and paging
  // with a cursor neither skips nor repeats.
  std::vector<std::string> expected;
  for (int i = 0; i < 5; ++i) {
    int64_t u = MakeUser(Numbered("peer", i));
    std::string conv = PrivateConvId(alice_, u);
    ASSERT_TRUE(Append(TextMessage(conv, u, alice_, "x", "k")).ok());
    expected.push_back(conv);
  }
  std::sort(expected.begin(), expected.end());
  std::vector<std::string> seen;
  std::optional<ConversationCursor> after;
  for (;;) {
    auto page = Call(store().conversations(), &ConversationStore::ListForUser, alice_, after, 2);
    ASSERT_TRUE(page.ok());
    for (const auto& uc : page->items) seen.push_back(uc.conversation.conv_id);
    if (!page->has_more) break;
    after = page->next;
  }
  EXPECT_EQ(seen, expected);
}

INSTANTIATE_TEST_SUITE_P(Contract, MessageContract, ::testing::ValuesIn(AllStoreFactories()),
                         StoreFactoryName);

}  // namespace
}  // namespace mpim::store::testing
