// A fixture whose tests share one server (started with FastAuthEnv() by
// SetUpTestSuite, stopped by TearDownTestSuite) and get a fresh ApiClient:
// `mpim serve`, or the cluster of `mpim cluster up` with
// MPIM_E2E_TARGET=cluster (ClusterTarget(); support/restart_target.h), the
// REST client then on its first gateway.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>

#include "support/api_client.h"
#include "support/restart_target.h"

namespace mpim::testing {

class SharedServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite();
  static void TearDownTestSuite();
  void SetUp() override;

  // The (first) client-facing port.
  static uint16_t port() { return server_->port(); }
  // Every log line of the server so far (every node's on a cluster).
  static std::string Logs() { return server_->Logs(); }

  static inline std::unique_ptr<RestartTarget> server_;
  static inline std::string start_error_;
  std::unique_ptr<ApiClient> api_;
};

}  // namespace mpim::testing
