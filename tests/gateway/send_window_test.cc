// SendWindow on its own: sends start in arrival order, each once the one
// before has its place; at most 64 in flight, 1000 waiting; the refused-send
// count behind close 4029; the refusals of sends left when closing.
#include "gateway/send_window.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace mpim::gateway {
namespace {

SendWindow::Send NewSend(int rid) {
  SendWindow::Send send;
  send.request.client_msg_id = "c" + std::to_string(rid);
  send.rid = rid;
  return send;
}

// Queues sends with rids from..to.
void QueueSends(SendWindow& window, int from, int to) {
  for (int rid = from; rid <= to; ++rid) ASSERT_TRUE(window.Queue(NewSend(rid)).ok());
}

TEST(SendWindowTest, TheNextSendWaitsUntilTheOneBeforeHasItsPlace) {
  SendWindow window;
  QueueSends(window, 1, 3);
  std::optional<SendWindow::Send> first = window.TakeNext();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->rid, 1);
  const uint64_t n1 = window.Start();
  EXPECT_FALSE(window.TakeNext()) << "1 has no place yet";
  EXPECT_TRUE(window.Ordered(n1));
  std::optional<SendWindow::Send> second = window.TakeNext();
  ASSERT_TRUE(second);
  EXPECT_EQ(second->request.client_msg_id, "c2");
  const uint64_t n2 = window.Start();
  // 1's result comes late: it does not let 3 pass 2.
  EXPECT_FALSE(window.Ordered(n1));
  window.Finished(n1);
  EXPECT_FALSE(window.TakeNext());
  EXPECT_EQ(window.in_flight(), 1);
  // A result without `ordered` (refused before it had a place) opens it too.
  window.Finished(n2);
  EXPECT_TRUE(window.TakeNext());
}

TEST(SendWindowTest, AtMost64AreInFlight) {
  SendWindow window;
  QueueSends(window, 1, 70);
  int started = 0;
  while (window.TakeNext()) {
    EXPECT_TRUE(window.Ordered(window.Start()));  // ordered at once
    ++started;
  }
  EXPECT_EQ(started, SendWindow::kMaxInFlight);
  EXPECT_EQ(window.waiting(), 6u);
  window.Finished(1);
  std::optional<SendWindow::Send> next = window.TakeNext();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->rid, 65);
}

TEST(SendWindowTest, AtMost1000Wait) {
  SendWindow window;
  QueueSends(window, 1, 1000);
  core::Status refused = window.Queue(NewSend(1001));
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(core::RetryAfterMs(refused), 1000);
  EXPECT_EQ(window.waiting(), 1000u);
}

TEST(SendWindowTest, RepliesAreOwedWhileSendsWaitOrAreInFlight) {
  SendWindow window;
  EXPECT_FALSE(window.owed());
  QueueSends(window, 1, 1);
  EXPECT_TRUE(window.owed());
  ASSERT_TRUE(window.TakeNext());
  EXPECT_FALSE(window.owed()) << "taken, not started: the owner answers it itself";
  const uint64_t n = window.Start();
  EXPECT_TRUE(window.owed());
  window.Finished(n);
  EXPECT_FALSE(window.owed());
}

TEST(SendWindowTest, RefusedSendsCountWithinTenSeconds) {
  SendWindow window;
  EXPECT_FALSE(window.Strike(0, 3));
  EXPECT_FALSE(window.Strike(5000, 3));
  EXPECT_FALSE(window.Strike(10001, 3)) << "the first one is out of the window";
  EXPECT_TRUE(window.Strike(10002, 3));
}

TEST(SendWindowTest, SendsLeftWhenClosingAreRefusedByTheReasonForIt) {
  core::Status restarting = SendWindow::ClosingRefusal(true);
  EXPECT_EQ(restarting.code(), absl::StatusCode::kUnavailable);
  core::Status rate = SendWindow::ClosingRefusal(false);
  EXPECT_EQ(rate.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(core::RetryAfterMs(rate), SendWindow::kStrikeWindowMs);
}

}  // namespace
}  // namespace mpim::gateway
