// The "fanout" job handler (service/task/fanout_job.h) on a real SQLite
// store with the recording FakeDeliverer: the jobs of one lease batch that carry
// messages of the same group go out together, in seq order, in one pass
// over the members (a page of groups.fanout_batch at a time); recalls one
// by one; a job whose message is gone is done.
#include "service/task/fanout_job.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "store/conv_id.h"
#include "support/fakes/fake_deliverer.h"
#include "support/sqlite_store_fixture.h"

namespace mpim::service {
namespace {

// The seqs of a batch.
std::vector<int64_t> Seqs(const testing::FakeDeliverer::MessagesCall& batch) {
  std::vector<int64_t> seqs;
  for (const auto& m : batch.msgs) seqs.push_back(m.seq);
  return seqs;
}

class FanoutJobTest : public testing::SqliteStoreTest {
 protected:
  void SetUp() override {
    SqliteStoreTest::SetUp();
    owner_ = MakeUser("owner");
    for (int i = 0; i < 4; ++i) members_.push_back(MakeUser("m" + std::to_string(i)));
    auto g = store::Call(store_->groups(), &store::GroupStore::Create,
                         store::NewGroup{"g", "", owner_, false, members_});
    ASSERT_TRUE(g.ok()) << g.status();
    conv_ = store::GroupConvId(g->group_id);
  }
  // Appends a message; its msg_id.
  int64_t Append(int64_t msg_id) {
    store::AppendRequest r;
    r.msg_id = msg_id;
    r.conv_id = conv_;
    r.sender = owner_;
    r.body = "{\"text\":\"x\"}";
    r.ts = 1;
    auto m = store::Call(store_->messages(), &store::MessageStore::Append, r);
    EXPECT_TRUE(m.ok()) << m.status();
    return msg_id;
  }
  static store::Job JobFor(int64_t msg_id, bool recall = false) {
    store::Job j;
    j.kind = "fanout";
    j.payload = boost::json::serialize(boost::json::object{
        {"msg_id", msg_id}, {"recall", recall}, {"qos1", true}, {"priority", 1}});
    return j;
  }

  int64_t owner_ = 0;
  std::vector<int64_t> members_;
  std::string conv_;
  testing::FakeDeliverer deliverer_;
};

TEST_F(FanoutJobTest, ABatchsMessagesOfOneGroupGoOutInOnePassPerPageInSeqOrder) {
  const int64_t m1 = Append(9001), m2 = Append(9002), m3 = Append(9003);
  // Jobs out of seq order (they may be enqueued so), one of a message gone.
  auto handler = FanoutJobHandler(*store_, deliverer_, /*batch=*/3);
  auto results = handler({JobFor(m3), JobFor(m1), JobFor(424242), JobFor(m2)});
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  // Five members, pages of three: two passes, each with all three messages.
  auto passes = deliverer_.batches.calls();
  ASSERT_EQ(passes.size(), 2u);
  std::vector<int64_t> everyone;
  for (const auto& p : passes) {
    EXPECT_EQ(Seqs(p), (std::vector<int64_t>{1, 2, 3}));
    everyone.insert(everyone.end(), p.users.begin(), p.users.end());
  }
  std::vector<int64_t> expected = members_;
  expected.push_back(owner_);
  std::sort(expected.begin(), expected.end());
  std::sort(everyone.begin(), everyone.end());
  EXPECT_EQ(everyone, expected);
  EXPECT_EQ(deliverer_.messages.size(), 0u);
}

TEST_F(FanoutJobTest, RecallsGoOneByOneAndABadPayloadFailsOnlyItsJob) {
  const int64_t m1 = Append(9101);
  store::Job bad;
  bad.kind = "fanout";
  bad.payload = "not json";
  auto handler = FanoutJobHandler(*store_, deliverer_, /*batch=*/100);
  auto results = handler({JobFor(m1, /*recall=*/true), bad, JobFor(m1)});
  ASSERT_EQ(results.size(), 3u);
  EXPECT_TRUE(results[0].ok()) << results[0];
  EXPECT_EQ(results[1].code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(results[2].ok()) << results[2];
  auto recalls = deliverer_.recalls.calls();
  ASSERT_EQ(recalls.size(), 1u);
  EXPECT_EQ(recalls[0].users.size(), 5u);
  EXPECT_EQ(recalls[0].seq, 1);
  auto passes = deliverer_.batches.calls();
  ASSERT_EQ(passes.size(), 1u);
  EXPECT_EQ(Seqs(passes[0]), std::vector<int64_t>{1});
}

}  // namespace
}  // namespace mpim::service
