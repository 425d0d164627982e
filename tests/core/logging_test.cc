#include "core/logging.h"

#include <boost/json/parse.hpp>
#include <gtest/gtest.h>

namespace mpim::core {
namespace {

constexpr int64_t kTs = 1763758000123;  // 2025-11-21T20:46:40.123Z

TEST(LoggingTest, JsonLineHasTheFixedKeysThenFields) {
  std::string line = FormatLogLine(LogFormat::kJson, kTs, LogLevel::kWarn, "http", "slow \"req\"",
                                   {{"session_id", "42"}, {"ms", int64_t{17}}, {"ok", false}});
  EXPECT_EQ(line,
            R"({"ts":"2025-11-21T20:46:40.123Z","level":"warn","logger":"http",)"
            R"("msg":"slow \"req\"","session_id":"42","ms":17,"ok":false})");
  auto v = boost::json::parse(line);
  EXPECT_EQ(v.at("msg").as_string(), "slow \"req\"");
}

TEST(LoggingTest, JsonEscapesControlCharacters) {
  std::string line = FormatLogLine(LogFormat::kJson, kTs, LogLevel::kInfo, "x", "a\nb\x01", {});
  EXPECT_NE(line.find(R"("msg":"a\nb\u0001")"), std::string::npos) << line;
  EXPECT_NO_THROW(boost::json::parse(line));
}

TEST(LoggingTest, TextLineIsReadable) {
  std::string line = FormatLogLine(LogFormat::kText, kTs, LogLevel::kInfo, "app", "listening",
                                   {{"addr", "127.0.0.1:8080"}, {"note", "two words"}});
  EXPECT_EQ(line,
            "2025-11-21T20:46:40.123Z INFO  app: listening addr=127.0.0.1:8080 note=\"two words\"");
}

TEST(LoggingTest, LevelsFilter) {
  InitLogging(LogLevel::kWarn, LogFormat::kText);
  Logger log("t");
  EXPECT_FALSE(log.Enabled(LogLevel::kInfo));
  EXPECT_TRUE(log.Enabled(LogLevel::kError));
  InitLogging(LogLevel::kInfo, LogFormat::kText);
  EXPECT_TRUE(log.Enabled(LogLevel::kInfo));
  EXPECT_EQ(ParseLogLevel("debug"), LogLevel::kDebug);
  EXPECT_EQ(ParseLogFormat("json"), LogFormat::kJson);
}

}  // namespace
}  // namespace mpim::core
