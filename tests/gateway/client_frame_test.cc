#include "gateway/client_frame.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "gateway/message_json.h"

namespace mpim::gateway {
namespace {

TEST(ClientFrameTest, DecodesOpRidAndFields) {
  ClientFrame f;
  ASSERT_TRUE(DecodeClientFrame(R"({"op":"ping","rid":7,"x":[1]})", f).ok());
  EXPECT_EQ(f.op, "ping");
  EXPECT_EQ(f.rid, 7);
  EXPECT_TRUE(f.fields.contains("x"));
  ASSERT_TRUE(DecodeClientFrame(R"({"op":"ack","conv_id":"p:1:2","seq":3})", f).ok());
  EXPECT_FALSE(f.rid.has_value());
}

TEST(ClientFrameTest, RejectsMalformedFramesKeepingAUsableRid) {
  struct Case {
    std::string text;
    std::string message;
    std::optional<int64_t> rid;
  };
  const Case cases[] = {
      {"not json", "frame: invalid JSON", std::nullopt},
      {"", "frame: invalid JSON", std::nullopt},
      {"[1,2]", "frame: must be a JSON object", std::nullopt},
      {R"("op")", "frame: must be a JSON object", std::nullopt},
      {R"({"op":"ping","rid":"7"})", "rid: must be an integer", std::nullopt},
      {R"({"op":"ping","rid":1.5})", "rid: must be an integer", std::nullopt},
      {R"({"op":"ping","rid":18446744073709551615})", "rid: must be an integer", std::nullopt},
      {R"({"rid":3})", "op: required, a string", 3},
      {R"({"op":5,"rid":4})", "op: required, a string", 4},
      {std::string(10000, '[') + std::string(10000, ']'), "frame: invalid JSON", std::nullopt},
      {"{\"op\":\"ping\",\"x\":\"\\ud800\"}", "frame: invalid JSON", std::nullopt},
  };
  for (const auto& c : cases) {
    ClientFrame f;
    core::Status s = DecodeClientFrame(c.text, f);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.text.substr(0, 40);
    EXPECT_EQ(std::string(s.message()), c.message) << c.text.substr(0, 40);
    EXPECT_EQ(f.rid, c.rid) << c.text.substr(0, 40);
  }
}

TEST(ParseSendRequestTest, AcceptsTheProtocolShapes) {
  auto frame = boost::json::parse(
                   R"({"op":"send","to":{"user":"1002"},"client_msg_id":"c1","body":{"text":"hi"},)"
                   R"("qos":0,"priority":"urgent"})")
                   .as_object();
  auto r = ParseSendRequest(frame);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->to_group);
  EXPECT_EQ(r->to_id, 1002);
  EXPECT_EQ(r->type, "text");
  EXPECT_FALSE(r->qos1);
  EXPECT_EQ(r->priority, service::Priority::kUrgent);
  EXPECT_EQ(r->body, R"({"text":"hi"})");

  auto custom = boost::json::parse(
                    R"({"to":{"group":"77"},"client_msg_id":"c2","type":"custom","body":{"k":[1]}})")
                    .as_object();
  auto g = ParseSendRequest(custom);
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(g->to_group);
  EXPECT_EQ(g->type, "custom");
}

TEST(ParseSendRequestTest, RejectsBadFields) {
  for (const char* bad : {
           R"({"client_msg_id":"c","body":{"text":"x"}})",                               // no to
           R"({"to":{"user":1002},"client_msg_id":"c","body":{"text":"x"}})",            // id not string
           R"({"to":{"user":"1","group":"2"},"client_msg_id":"c","body":{"text":"x"}})", // both
           R"({"to":{"user":"x"},"client_msg_id":"c","body":{"text":"x"}})",             // bad id
           R"({"to":{"user":"1"},"body":{"text":"x"}})",                                 // no id
           R"({"to":{"user":"1"},"client_msg_id":5,"body":{"text":"x"}})",               // id type
           R"({"to":{"user":"1"},"client_msg_id":"c","body":"x"})",                      // body
           R"({"to":{"user":"1"},"client_msg_id":"c","body":{"txt":"x"}})",              // no text
           R"({"to":{"user":"1"},"client_msg_id":"c","body":{"text":1}})",               // text type
           R"({"to":{"user":"1"},"client_msg_id":"c","body":{"text":"x"},"qos":2})",
           R"({"to":{"user":"1"},"client_msg_id":"c","body":{"text":"x"},"priority":"max"})",
           // numbers without a JSON text (1e400 is infinity), anywhere in the body
           R"({"to":{"user":"1"},"client_msg_id":"c","type":"custom","body":{"n":1e400}})",
           R"({"to":{"user":"1"},"client_msg_id":"c","body":{"text":"x","a":[{"n":-1e999}]}})",
       }) {
    auto r = ParseSendRequest(boost::json::parse(bad).as_object());
    EXPECT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

}  // namespace
}  // namespace mpim::gateway
