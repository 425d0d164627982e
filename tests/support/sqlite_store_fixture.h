// A fresh SQLite store in a temp dir for each test (closed at the end), for
// tests that want the real store rather than a fake.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "store/blocking.h"
#include "store/sqlite/sqlite_store.h"
#include "temp_dir.h"  // relative: reached from targets without tests/ on their path too

namespace mpim::testing {

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty()) << "no temp dir";
    store::sqlite::SqliteOptions options;
    options.path = dir_.File("mpim.db");
    auto opened = store::sqlite::Open(options);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
  }
  void TearDown() override {
    if (store_) store_->Close();
  }

  // A new user; its id (0 and a test failure if that failed).
  int64_t MakeUser(const std::string& name) {
    auto u = store::Call(store_->users(), &store::UserStore::Create,
                         store::NewUser{name, "h", name, ""});
    EXPECT_TRUE(u.ok()) << u.status();
    return u.ok() ? u->user_id : 0;
  }

  TempDir dir_;
  std::unique_ptr<store::Store> store_;
};

}  // namespace mpim::testing
