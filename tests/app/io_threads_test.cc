// server.io_threads = 0 leaves a core to the SQLite writer where this
// process runs it, and uses every core elsewhere.
#include <gtest/gtest.h>

#include "app/node.h"

namespace mpim::app {
namespace {

core::Config WithRole(const std::string& role, const std::string& engine) {
  core::Config c;
  c.server.role = role;
  c.store.engine = engine;
  return c;
}

TEST(IoThreadsTest, OneCoreLeftToTheSqliteWriter) {
  EXPECT_EQ(IoThreads(WithRole("all", "sqlite"), 2), 1u);
  EXPECT_EQ(IoThreads(WithRole("all", "sqlite"), 8), 7u);
  EXPECT_EQ(IoThreads(WithRole("logic", "sqlite"), 4), 3u);
  EXPECT_EQ(IoThreads(WithRole("task", "sqlite"), 4), 3u);
}

TEST(IoThreadsTest, EveryCoreWithoutAWriterHere) {
  EXPECT_EQ(IoThreads(WithRole("all", "mysql"), 2), 2u);
  EXPECT_EQ(IoThreads(WithRole("logic", "mysql"), 4), 4u);
  // A gateway does not open the store, whatever the engine.
  EXPECT_EQ(IoThreads(WithRole("gateway", "sqlite"), 2), 2u);
}

TEST(IoThreadsTest, AtLeastOne) {
  EXPECT_EQ(IoThreads(WithRole("all", "sqlite"), 1), 1u);
  EXPECT_EQ(IoThreads(WithRole("all", "sqlite"), 0), 1u);
  EXPECT_EQ(IoThreads(WithRole("gateway", "sqlite"), 0), 1u);
}

TEST(IoThreadsTest, ConfiguredCountWins) {
  core::Config c = WithRole("all", "sqlite");
  c.server.io_threads = 2;
  EXPECT_EQ(IoThreads(c, 2), 2u);
  c.server.io_threads = 5;
  EXPECT_EQ(IoThreads(c, 2), 5u);
}

}  // namespace
}  // namespace mpim::app
