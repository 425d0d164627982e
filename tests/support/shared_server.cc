#include "support/shared_server.h"

namespace mpim::testing {

void SharedServerTest::SetUpTestSuite() {
  start_error_.clear();
  server_ = std::make_unique<RestartTarget>(FastAuthEnv());
  if (!server_->Start()) start_error_ = "server did not start: " + server_->error();
}

void SharedServerTest::TearDownTestSuite() { server_.reset(); }

void SharedServerTest::SetUp() {
  ASSERT_TRUE(start_error_.empty()) << start_error_;
  api_ = std::make_unique<ApiClient>(port());
}

}  // namespace mpim::testing
