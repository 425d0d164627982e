// The "fanout" job handler (service/task/fanout_job.h) on a real SQLite
// store with a recording Deliverer: the jobs of one lease batch that carry
// messages of the same group go out together, in seq order, in one pass
// over the members (a page of groups.fanout_batch at a time); recalls one
// by one; a job whose message is gone is done.
#include "service/task/fanout_job.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/json/serialize.hpp>

#include "sqlite_store_test.h"
#include "store/conv_id.h"

namespace mpim::service {
namespace {

class RecordingDeliverer : public Deliverer {
 public:
  struct Pass {
    std::vector<int64_t> users;
    std::vector<int64_t> seqs;
  };
  void Message(const std::vector<int64_t>&, uint64_t, const store::Message&, bool,
               Priority) override {
    ++single;
  }
  void Messages(const std::vector<int64_t>& users, const std::vector<store::Message>& msgs, bool,
                Priority, std::function<void()> taken) override {
    Pass p{users, {}};
    for (const auto& m : msgs) p.seqs.push_back(m.seq);
    passes.push_back(std::move(p));
    taken();
  }
  void Receipt(const std::vector<int64_t>&, uint64_t, const std::string&, int64_t,
               int64_t) override {}
  void Typing(const std::vector<int64_t>&, const std::string&, int64_t) override {}
  void Presence(const std::vector<uint64_t>&, int64_t, bool, int64_t) override {}
  void Conv(const std::vector<int64_t>&, const std::string&, const std::string&) override {}
  void Recall(const std::vector<int64_t>& users, const std::string&, int64_t seq,
              int64_t) override {
    recalls.push_back({users, {seq}});
  }
  void Kick(int64_t, int64_t, const std::string&) override {}

  std::vector<Pass> passes;
  std::vector<Pass> recalls;
  int single = 0;
};

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
  RecordingDeliverer deliverer_;
};

TEST_F(FanoutJobTest, ABatchsMessagesOfOneGroupGoOutInOnePassPerPageInSeqOrder) {
  const int64_t m1 = Append(9001), m2 = Append(9002), m3 = Append(9003);
  // Jobs out of seq order (they may be enqueued so), one of a message gone.
  auto handler = FanoutJobHandler(*store_, deliverer_, /*batch=*/3);
  auto results = handler({JobFor(m3), JobFor(m1), JobFor(424242), JobFor(m2)});
  ASSERT_EQ(results.size(), 4u);
  for (const auto& r : results) EXPECT_TRUE(r.ok()) << r;
  // Five members, pages of three: two passes, each with all three messages.
  ASSERT_EQ(deliverer_.passes.size(), 2u);
  std::vector<int64_t> everyone;
  for (const auto& p : deliverer_.passes) {
    EXPECT_EQ(p.seqs, (std::vector<int64_t>{1, 2, 3}));
    everyone.insert(everyone.end(), p.users.begin(), p.users.end());
  }
  std::vector<int64_t> expected = members_;
  expected.push_back(owner_);
  std::sort(expected.begin(), expected.end());
  std::sort(everyone.begin(), everyone.end());
  EXPECT_EQ(everyone, expected);
  EXPECT_EQ(deliverer_.single, 0);
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
  ASSERT_EQ(deliverer_.recalls.size(), 1u);
  EXPECT_EQ(deliverer_.recalls[0].users.size(), 5u);
  ASSERT_EQ(deliverer_.passes.size(), 1u);
  EXPECT_EQ(deliverer_.passes[0].seqs, std::vector<int64_t>{1});
}

}  // namespace
}  // namespace mpim::service
