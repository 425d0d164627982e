#include "service/push/notification.h"

#include <gtest/gtest.h>

namespace mpim::service::push {
namespace {

TEST(NotificationTest, JsonHasIdsAsStringsAndPreviewOnlyWhenSet) {
  Notification n{
      .conv_id = "p:1001:1002", .seq = 7, .msg_id = 9007199254740993, .from = 1001, .badge = 3};
  EXPECT_EQ(
      NotificationJson(n),
      R"({"conv_id":"p:1001:1002","seq":7,"msg_id":"9007199254740993","from":"1001","badge":3})");
  n.preview = "hi \"there\"";
  EXPECT_EQ(
      NotificationJson(n),
      R"({"conv_id":"p:1001:1002","seq":7,"msg_id":"9007199254740993","from":"1001","preview":"hi \"there\"","badge":3})");
}

TEST(NotificationTest, PreviewCutsWholeCharacters) {
  EXPECT_EQ(PreviewOf("hello", 5), "hello");
  EXPECT_EQ(PreviewOf("hello!", 5), "hello\xE2\x80\xA6");
  EXPECT_EQ(PreviewOf("h\xC3\xA9llo", 2), "h\xC3\xA9\xE2\x80\xA6");
  EXPECT_EQ(PreviewOf("\xF0\x9F\x98\x80\xF0\x9F\x98\x80", 1), "\xF0\x9F\x98\x80\xE2\x80\xA6");
  EXPECT_EQ(PreviewOf("", 3), "");
}

}  // namespace
}  // namespace mpim::service::push
