// Runs `mpim-bench --suite smoke` (every scenario at a tiny scale, each
// against a fresh `mpim serve`) and checks that it worked and wrote its
// results: proof that the load generator works, not a measurement.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <boost/json/parse.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>

namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(BenchSmokeTest, EveryScenarioRunsAndReports) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("mpim-bench-smoke-" + std::to_string(std::random_device{}()));
  std::filesystem::create_directories(dir);
  const std::string command = std::string(MPIM_BENCH_BINARY) + " --server-bin " + MPIM_BINARY +
                              " --suite smoke --out-dir " + dir.string() + " --stem smoke > " +
                              (dir / "out.txt").string() + " 2>&1";
  const int status = std::system(command.c_str());
  const std::string output = ReadFile(dir / "out.txt");
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;

  boost::system::error_code ec;
  auto doc = boost::json::parse(ReadFile(dir / "smoke.json"), ec);
  ASSERT_FALSE(ec) << output;
  std::set<std::string> names;
  for (const auto& s : doc.at("scenarios").as_array()) {
    const auto& o = s.as_object();
    const std::string name(o.at("name").as_string());
    names.insert(name);
    EXPECT_TRUE(o.at("ok").as_bool()) << name << "\n" << output;
    const auto& f = o.at("figures").as_object();
    EXPECT_EQ(f.at("sessions_ready").to_number<int64_t>(), f.at("sessions").to_number<int64_t>())
        << name;
    if (name == "chat" || name == "group") {
      const auto expected = f.at("expected_deliveries").to_number<int64_t>();
      EXPECT_GT(expected, 0) << name;
      EXPECT_EQ(f.at("delivered").to_number<int64_t>(), expected) << name;
      EXPECT_EQ(f.at("replies_error").to_number<int64_t>(), 0) << name;
      EXPECT_GT(f.at("delivery_latency").at("count").to_number<int64_t>(), 0) << name;
    }
    if (name == "connect") {
      EXPECT_GT(f.at("server_rss_after_hold_kib").to_number<int64_t>(), 0);
    }
    if (name == "storm") {
      EXPECT_EQ(f.at("reconnected_synced").to_number<int64_t>(),
                f.at("sessions").to_number<int64_t>());
      EXPECT_GT(f.at("sync_messages").to_number<int64_t>(), 0);
    }
  }
  EXPECT_EQ(names, (std::set<std::string>{"connect", "chat", "group", "storm"}));
  const std::string md = ReadFile(dir / "smoke.md");
  EXPECT_NE(md.find("## chat"), std::string::npos);
  EXPECT_NE(md.find("## Machine"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "smoke-chat-timeline.svg"));
  EXPECT_TRUE(std::filesystem::exists(dir / "smoke-chat-latency.svg"));
  std::filesystem::remove_all(dir);
}

}  // namespace
