// Contract: UserStore and SessionStore.
#include <thread>

#include "store_contract.h"

namespace mpim::store::testing {
namespace {

using absl::StatusCode;

TEST_P(StoreContractTest, UserCreateGetAndIdsStartAt1001) {
  auto alice = Call(store().users(), &UserStore::Create, NewUser{"alice", "h1", "Alice", "a.png"});
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->user_id, 1001);
  EXPECT_EQ(alice->username, "alice");
  EXPECT_EQ(alice->password_hash, "h1");
  EXPECT_EQ(alice->display_name, "Alice");
  EXPECT_EQ(alice->avatar_url, "a.png");
  EXPECT_EQ(alice->created_at, kStartMs);
  EXPECT_EQ(alice->last_seen, 0);
  EXPECT_EQ(MakeUser("bob"), 1002);
  EXPECT_EQ(*Call(store().users(), &UserStore::Count), 2);

  auto got = Call(store().users(), &UserStore::Get, int64_t{1001});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->username, "alice");
  auto by_name = Call(store().users(), &UserStore::GetByUsername, std::string("bob"));
  ASSERT_TRUE(by_name.ok());
  EXPECT_EQ(by_name->user_id, 1002);
}

TEST_P(StoreContractTest, UserErrors) {
  MakeUser("alice");
  EXPECT_EQ(
      Call(store().users(), &UserStore::Create, NewUser{"alice", "x", "", ""}).status().code(),
      StatusCode::kAlreadyExists);
  EXPECT_EQ(Call(store().users(), &UserStore::Create, NewUser{"", "x", "", ""}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Call(store().users(), &UserStore::Get, int64_t{999}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().users(), &UserStore::GetByUsername, std::string("nobody")).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().users(), &UserStore::Update, int64_t{999}, UserUpdate{}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().users(), &UserStore::TouchLastSeen, int64_t{999}, int64_t{5}).code(),
            StatusCode::kNotFound);
}

TEST_P(StoreContractTest, UserUpdateChangesOnlySetFields) {
  int64_t id = MakeUser("alice");
  UserUpdate update;
  update.display_name = "Alice A.";
  auto updated = Call(store().users(), &UserStore::Update, id, update);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->display_name, "Alice A.");
  EXPECT_EQ(updated->avatar_url, "");
  EXPECT_EQ(updated->password_hash, "hash-alice");
  update = UserUpdate{};
  update.avatar_url = "new.png";
  update.password_hash = "h2";
  updated = Call(store().users(), &UserStore::Update, id, update);
  ASSERT_TRUE(updated.ok());
  EXPECT_EQ(updated->display_name, "Alice A.");
  EXPECT_EQ(updated->avatar_url, "new.png");
  EXPECT_EQ(updated->password_hash, "h2");
}

TEST_P(StoreContractTest, UserLastSeenOnlyMovesForward) {
  int64_t id = MakeUser("alice");
  ASSERT_TRUE(Call(store().users(), &UserStore::TouchLastSeen, id, int64_t{500}).ok());
  ASSERT_TRUE(Call(store().users(), &UserStore::TouchLastSeen, id, int64_t{100}).ok());
  EXPECT_EQ(Call(store().users(), &UserStore::Get, id)->last_seen, 500);
}

TEST_P(StoreContractTest, UserGetManySkipsUnknown) {
  int64_t a = MakeUser("alice");
  int64_t b = MakeUser("bob");
  auto users = Call(store().users(), &UserStore::GetMany, std::vector<int64_t>{b, 4242, a});
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].user_id, a);
  EXPECT_EQ((*users)[1].user_id, b);
  EXPECT_TRUE(Call(store().users(), &UserStore::GetMany, std::vector<int64_t>{})->empty());
  EXPECT_EQ(
      Call(store().users(), &UserStore::GetMany, std::vector<int64_t>(1001, 1)).status().code(),
      StatusCode::kInvalidArgument);
}

TEST_P(StoreContractTest, UserPrefixSearchPagesInOrder) {
  for (const char* name : {"al", "alice", "alina", "alan", "bob", "alz", "am"}) MakeUser(name);
  auto names = [](const Page<User>& page) {
    std::vector<std::string> out;
    for (const User& u : page.items) out.push_back(u.username);
    return out;
  };
  auto page =
      Call(store().users(), &UserStore::SearchByPrefix, std::string("al"), std::string(), 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(names(*page), (std::vector<std::string>{"al", "alan", "alice"}));
  EXPECT_TRUE(page->has_more);
  page =
      Call(store().users(), &UserStore::SearchByPrefix, std::string("al"), std::string("alice"), 3);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(names(*page), (std::vector<std::string>{"alina", "alz"}));
  EXPECT_FALSE(page->has_more);
  page = Call(store().users(), &UserStore::SearchByPrefix, std::string("zz"), std::string(), 10);
  ASSERT_TRUE(page.ok());
  EXPECT_TRUE(page->items.empty());
  EXPECT_FALSE(page->has_more);
  // Wildcard characters are plain bytes.
  page = Call(store().users(), &UserStore::SearchByPrefix, std::string("a%"), std::string(), 10);
  EXPECT_TRUE(page->items.empty());
  page = Call(store().users(), &UserStore::SearchByPrefix, std::string(), std::string(), 10);
  EXPECT_EQ(page->items.size(), 7u);
  for (int bad : {0, -1, kMaxPageLimit + 1}) {
    EXPECT_EQ(
        Call(store().users(), &UserStore::SearchByPrefix, std::string("a"), std::string(), bad)
            .status()
            .code(),
        StatusCode::kInvalidArgument);
  }
}

NewSession MakeSession(int64_t id, int64_t user, const std::string& hash, int64_t expires) {
  return NewSession{id, user, "phone", hash, expires};
}

TEST_P(StoreContractTest, SessionCreateGetAndErrors) {
  int64_t alice = MakeUser("alice");
  const int64_t expires = kStartMs + 1'000'000;
  auto s = Call(store().sessions(), &SessionStore::Create, MakeSession(77, alice, "r0", expires));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->session_id, 77);
  EXPECT_EQ(s->user_id, alice);
  EXPECT_EQ(s->device, "phone");
  EXPECT_EQ(s->refresh_token_hash, "r0");
  EXPECT_EQ(s->refresh_generation, 0);
  EXPECT_EQ(s->created_at, kStartMs);
  EXPECT_EQ(s->expires_at, expires);
  EXPECT_FALSE(s->revoked);
  EXPECT_EQ(Call(store().sessions(), &SessionStore::Create, MakeSession(77, alice, "x", expires))
                .status()
                .code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(Call(store().sessions(), &SessionStore::Create, MakeSession(78, 4242, "x", expires))
                .status()
                .code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().sessions(), &SessionStore::Get, int64_t{79}).status().code(),
            StatusCode::kNotFound);
  EXPECT_EQ(Call(store().sessions(), &SessionStore::Revoke, int64_t{79}).code(),
            StatusCode::kNotFound);
}

TEST_P(StoreContractTest, SessionRefreshRotationAndReuseDetection) {
  int64_t alice = MakeUser("alice");
  const int64_t expires = kStartMs + 1'000'000;
  ASSERT_TRUE(
      Call(store().sessions(), &SessionStore::Create, MakeSession(1, alice, "r0", expires)).ok());
  auto rotate = [&](const std::string& presented, const std::string& next) {
    return Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1}, presented, next,
                expires + 10, NowMs());
  };
  auto r = rotate("r0", "r1");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->outcome, RefreshOutcome::kRotated);
  EXPECT_EQ(r->session.refresh_token_hash, "r1");
  EXPECT_EQ(r->session.previous_refresh_token_hash, "r0");
  EXPECT_EQ(r->session.refresh_generation, 1);
  EXPECT_EQ(r->session.expires_at, expires + 10);
  // A token matching nothing is rejected and changes nothing.
  r = rotate("bogus", "r9");
  EXPECT_EQ(r->outcome, RefreshOutcome::kRejected);
  EXPECT_FALSE(r->session.revoked);
  EXPECT_EQ(r->session.refresh_token_hash, "r1");
  // Presenting the rotated-away token again: theft; the session dies.
  r = rotate("r0", "r2");
  EXPECT_EQ(r->outcome, RefreshOutcome::kReused);
  EXPECT_TRUE(r->session.revoked);
  // Even the current token no longer works.
  r = rotate("r1", "r3");
  EXPECT_EQ(r->outcome, RefreshOutcome::kRejected);
  EXPECT_EQ(Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{5},
                 std::string("r"), std::string("s"), expires, NowMs())
                .status()
                .code(),
            StatusCode::kNotFound);
}

TEST_P(StoreContractTest, SessionExpiredRefreshIsRejected) {
  int64_t alice = MakeUser("alice");
  ASSERT_TRUE(
      Call(store().sessions(), &SessionStore::Create, MakeSession(1, alice, "r0", kStartMs + 10))
          .ok());
  auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1},
                std::string("r0"), std::string("r1"), kStartMs + 100, kStartMs + 10);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->outcome, RefreshOutcome::kRejected);
  EXPECT_EQ(r->session.refresh_token_hash, "r0");
}

TEST_P(StoreContractTest, SessionConcurrentRotationOnlyOneWins) {
  int64_t alice = MakeUser("alice");
  ASSERT_TRUE(
      Call(store().sessions(), &SessionStore::Create, MakeSession(1, alice, "r0", kStartMs + 1000))
          .ok());
  std::vector<std::thread> threads;
  std::atomic<int> rotated{0}, reused{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1},
                    std::string("r0"), Numbered("n", i), kStartMs + 2000, NowMs());
      ASSERT_TRUE(r.ok());
      if (r->outcome == RefreshOutcome::kRotated) ++rotated;
      if (r->outcome == RefreshOutcome::kReused) ++reused;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), 1);
  EXPECT_GE(reused.load(), 1);
  EXPECT_TRUE(Call(store().sessions(), &SessionStore::Get, int64_t{1})->revoked);
}

// Creates session `id` with token "<prefix>0" and rotates it `rotations`
// times, to "<prefix>1", "<prefix>2", ...; every expiry is `expires`.
void CreateAndRotate(SessionStore& sessions, int64_t id, int64_t user, const std::string& prefix,
                     int rotations, int64_t expires, int64_t now) {
  auto token = [&](int i) {
    std::string t = prefix;
    t.append(std::to_string(i));
    return t;
  };
  ASSERT_TRUE(Call(sessions, &SessionStore::Create, MakeSession(id, user, token(0), expires)).ok());
  for (int i = 1; i <= rotations; ++i) {
    auto r =
        Call(sessions, &SessionStore::RotateRefreshToken, id, token(i - 1), token(i), expires, now);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->outcome, RefreshOutcome::kRotated);
    ASSERT_EQ(r->session.refresh_generation, i);
    ASSERT_EQ(r->session.previous_refresh_token_hash, token(i - 1));
  }
}

TEST_P(StoreContractTest, SessionReuseOfAnyEarlierTokenRevokes) {
  int64_t alice = MakeUser("alice");
  const int64_t expires = kStartMs + 1'000'000;
  for (int back = 1; back <= 3; ++back) {
    const int64_t id = 100 + back;
    CreateAndRotate(store().sessions(), id, alice, "t", 3, expires, NowMs());
    // Tokens t0..t3; t3 is current, t(3 - back) was rotated away `back`
    // rotations ago.
    auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, id,
                  Numbered("t", 3 - back), std::string("x"), expires, NowMs());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome, RefreshOutcome::kReused) << back << " back";
    EXPECT_TRUE(r->session.revoked);
    EXPECT_EQ(r->session.refresh_token_hash, "t3");
    EXPECT_TRUE(Call(store().sessions(), &SessionStore::Get, id)->revoked);
    // The current token is dead too, and so is every used one (rejected, not
    // reused: the session is already revoked).
    for (int i = 0; i <= 3; ++i) {
      r = Call(store().sessions(), &SessionStore::RotateRefreshToken, id, Numbered("t", i),
               std::string("y"), expires, NowMs());
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(r->outcome, RefreshOutcome::kRejected) << i;
    }
  }
}

TEST_P(StoreContractTest, SessionUnknownOrForeignTokenIsRejectedAndSessionStaysLive) {
  int64_t alice = MakeUser("alice");
  int64_t bob = MakeUser("bob");
  const int64_t expires = kStartMs + 1'000'000;
  CreateAndRotate(store().sessions(), 1, alice, "a", 3, expires, NowMs());
  CreateAndRotate(store().sessions(), 2, bob, "b", 3, expires, NowMs());
  // Never issued; an empty one; another session's used and current tokens.
  for (const std::string& presented : {std::string("never-issued-3f9c1a"), std::string(),
                                       std::string("b0"), std::string("b2"), std::string("b3")}) {
    auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1}, presented,
                  std::string("z"), expires, NowMs());
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->outcome, RefreshOutcome::kRejected) << presented;
    EXPECT_FALSE(r->session.revoked) << presented;
    EXPECT_EQ(r->session.refresh_token_hash, "a3");
    EXPECT_EQ(r->session.refresh_generation, 3);
  }
  // Both sessions still rotate normally.
  auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1},
                std::string("a3"), std::string("a4"), expires, NowMs());
  EXPECT_EQ(r->outcome, RefreshOutcome::kRotated);
  r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{2}, std::string("b3"),
           std::string("b4"), expires, NowMs());
  EXPECT_EQ(r->outcome, RefreshOutcome::kRotated);
}

TEST_P(StoreContractTest, SessionUsedTokenPastItsOwnExpiryIsRejected) {
  int64_t alice = MakeUser("alice");
  // t0 lives until +100; rotating it gives t1 until +1000, and so on.
  ASSERT_TRUE(
      Call(store().sessions(), &SessionStore::Create, MakeSession(1, alice, "t0", kStartMs + 100))
          .ok());
  auto rotate = [&](const std::string& presented, const std::string& next, int64_t now) {
    return Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1}, presented, next,
                kStartMs + 1000, now);
  };
  ASSERT_EQ(rotate("t0", "t1", kStartMs)->outcome, RefreshOutcome::kRotated);
  ASSERT_EQ(rotate("t1", "t2", kStartMs + 50)->outcome, RefreshOutcome::kRotated);
  // t0 expired at +100: it could not be used any more, so it proves nothing.
  auto r = rotate("t0", "x", kStartMs + 100);
  EXPECT_EQ(r->outcome, RefreshOutcome::kRejected);
  EXPECT_FALSE(r->session.revoked);
  // t1 (valid until +1000) is still evidence of theft.
  r = rotate("t1", "x", kStartMs + 999);
  EXPECT_EQ(r->outcome, RefreshOutcome::kReused);
  EXPECT_TRUE(r->session.revoked);
}

TEST_P(StoreContractTest, SessionConcurrentRotationAfterEarlierRotationsOnlyOneWins) {
  int64_t alice = MakeUser("alice");
  const int64_t expires = kStartMs + 1'000'000;
  CreateAndRotate(store().sessions(), 1, alice, "t", 3, expires, NowMs());
  // Eight clients present the current token at once: the first rotates, the
  // second is a reuse of the token just rotated away (revoking the session),
  // the rest find the session revoked.
  std::vector<std::thread> threads;
  std::atomic<int> rotated{0}, reused{0}, rejected{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto r = Call(store().sessions(), &SessionStore::RotateRefreshToken, int64_t{1},
                    std::string("t3"), Numbered("n", i), expires, NowMs());
      ASSERT_TRUE(r.ok());
      if (r->outcome == RefreshOutcome::kRotated) ++rotated;
      if (r->outcome == RefreshOutcome::kReused) ++reused;
      if (r->outcome == RefreshOutcome::kRejected) ++rejected;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(rotated.load(), 1);
  EXPECT_EQ(reused.load(), 1);
  EXPECT_EQ(rejected.load(), 6);
  auto s = Call(store().sessions(), &SessionStore::Get, int64_t{1});
  EXPECT_TRUE(s->revoked);
  EXPECT_EQ(s->refresh_generation, 4);
}

TEST_P(StoreContractTest, SessionRevocationAndListings) {
  int64_t alice = MakeUser("alice");
  int64_t bob = MakeUser("bob");
  const int64_t exp = kStartMs + 1'000'000;
  for (int64_t id : {10, 11, 12}) {
    ASSERT_TRUE(
        Call(store().sessions(), &SessionStore::Create, MakeSession(id, alice, "r", exp)).ok());
  }
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::Create, MakeSession(20, bob, "r", exp)).ok());

  auto listed = Call(store().sessions(), &SessionStore::ListForUser, alice);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 3u);
  EXPECT_EQ((*listed)[0].session_id, 10);
  EXPECT_EQ((*listed)[2].session_id, 12);
  EXPECT_TRUE(Call(store().sessions(), &SessionStore::ListForUser, int64_t{4242})->empty());

  auto none = Call(store().sessions(), &SessionStore::ListRevoked, int64_t{0}, int64_t{0}, 10);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->items.empty());

  ASSERT_TRUE(Call(store().sessions(), &SessionStore::Revoke, int64_t{11}).ok());
  AdvanceMs(5);
  // Revoking again keeps the first time.
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::Revoke, int64_t{11}).ok());
  EXPECT_EQ(Call(store().sessions(), &SessionStore::Get, int64_t{11})->revoked_at, kStartMs);
  auto count = Call(store().sessions(), &SessionStore::RevokeAllForUser, alice);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 2);  // 10 and 12; 11 already was
  EXPECT_FALSE(Call(store().sessions(), &SessionStore::Get, int64_t{20})->revoked);

  auto page = Call(store().sessions(), &SessionStore::ListRevoked, int64_t{0}, int64_t{0}, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_TRUE(page->has_more);
  EXPECT_EQ(page->items[0].session_id, 11);  // revoked first
  EXPECT_EQ(page->items[1].session_id, 10);
  const Session& last = page->items.back();
  page = Call(store().sessions(), &SessionStore::ListRevoked, last.revoked_at, last.session_id, 2);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 1u);
  EXPECT_EQ(page->items[0].session_id, 12);
  EXPECT_FALSE(page->has_more);
  // Since a later time: only what was revoked then.
  page = Call(store().sessions(), &SessionStore::ListRevoked, kStartMs + 1, int64_t{0}, 10);
  EXPECT_EQ(page->items.size(), 2u);
}

TEST_P(StoreContractTest, DevicesOnePerSessionGoneWithTheSession) {
  int64_t alice = MakeUser("alice");
  int64_t bob = MakeUser("bob");
  const int64_t exp = kStartMs + 1'000'000;
  for (int64_t id : {10, 11}) {
    ASSERT_TRUE(
        Call(store().sessions(), &SessionStore::Create, MakeSession(id, alice, "r", exp)).ok());
  }
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::Create, MakeSession(20, bob, "r", exp)).ok());
  auto set = [&](int64_t device_id, int64_t session, int64_t user, const std::string& token) {
    return Call(store().sessions(), &SessionStore::SetDevice,
                Device{.device_id = device_id,
                       .session_id = session,
                       .user_id = user,
                       .platform = "apns",
                       .token = token});
  };
  auto d1 = set(100, 10, alice, "t1");
  ASSERT_TRUE(d1.ok()) << d1.status();
  EXPECT_EQ(d1->created_at, kStartMs);
  ASSERT_TRUE(set(101, 11, alice, "t2").ok());
  ASSERT_TRUE(set(200, 20, bob, "t3").ok());
  // A new registration from session 10 replaces its device.
  AdvanceMs(3);
  auto d1b = set(102, 10, alice, "t1b");
  ASSERT_TRUE(d1b.ok());
  auto listed = Call(store().sessions(), &SessionStore::ListDevices, alice);
  ASSERT_TRUE(listed.ok());
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].device_id, 101);
  EXPECT_EQ((*listed)[1].device_id, 102);
  EXPECT_EQ((*listed)[1].token, "t1b");
  EXPECT_EQ((*listed)[1].platform, "apns");
  EXPECT_EQ((*listed)[1].session_id, 10);
  EXPECT_EQ((*listed)[1].created_at, kStartMs + 3);
  // Another user's session, or an unknown one: not found.
  EXPECT_EQ(set(103, 20, alice, "x").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(set(103, 99, alice, "x").status().code(), StatusCode::kNotFound);

  auto of = Call(store().sessions(), &SessionStore::DevicesOf, std::vector<int64_t>{bob, alice});
  ASSERT_TRUE(of.ok());
  ASSERT_EQ(of->size(), 3u);
  EXPECT_EQ((*of)[2].device_id, 200);
  auto by_id =
      Call(store().sessions(), &SessionStore::GetDevices, std::vector<int64_t>{200, 100, 4242});
  ASSERT_TRUE(by_id.ok());
  ASSERT_EQ(by_id->size(), 1u);  // 100 was replaced
  EXPECT_EQ((*by_id)[0].user_id, bob);

  // Deleting: only one's own.
  EXPECT_EQ(Call(store().sessions(), &SessionStore::DeleteDevice, bob, int64_t{101}).code(),
            StatusCode::kNotFound);
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::DeleteDevice, alice, int64_t{101}).ok());
  EXPECT_EQ(Call(store().sessions(), &SessionStore::DeleteDevice, alice, int64_t{101}).code(),
            StatusCode::kNotFound);
  // Revoking a session removes its device; a revoked session takes none.
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::Revoke, int64_t{10}).ok());
  EXPECT_TRUE(Call(store().sessions(), &SessionStore::ListDevices, alice)->empty());
  EXPECT_EQ(set(104, 10, alice, "x").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(Call(store().sessions(), &SessionStore::RevokeAllForUser, bob).ok());
  EXPECT_TRUE(Call(store().sessions(), &SessionStore::ListDevices, bob)->empty());
}

INSTANTIATE_TEST_SUITE_P(Contract, StoreContractTest, ::testing::ValuesIn(AllStoreFactories()),
                         StoreFactoryName);

}  // namespace
}  // namespace mpim::store::testing
