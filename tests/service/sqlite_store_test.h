// Moved to tests/support/sqlite_store_fixture.h. This forwarding header
// stays only for tests/gateway/ws_session_order_test.cc; it goes once
// tests/gateway includes the new path.
#pragma once

#include "../support/sqlite_store_fixture.h"

namespace mpim::service::testing {
using ::mpim::testing::SqliteStoreTest;
}  // namespace mpim::service::testing
