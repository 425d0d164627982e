// The store contract suite run against the MySQL engine on a real mariadbd
// (one per test binary, tests/support/mariadb_server.h), each test on a
// fresh database, with group commit as configured by default. (No second
// run with batches of one write, as SQLite has: on MySQL a batch of one
// takes the same path as a larger one, and the contract's 80,000 appends
// would cost a durable commit each, about a minute of CI.)
#include <atomic>

#include "contract/store_contract.h"
#include "store/mysql/mysql_store.h"
#include "support/mariadb_server.h"

namespace mpim::store::testing {

namespace {

StoreFactory MysqlFactory(std::string name, int batch_max) {
  return StoreFactory{std::move(name), [batch_max](const std::string&, NowMsFn now) {
                        static std::atomic<int> databases{0};
                        std::string url = ::mpim::testing::SharedMariaDb().CreateDatabase(
                            "contract_" + std::to_string(databases.fetch_add(1)));
                        auto options = mysql::ParseMysqlUrl(url);
                        if (!options.ok()) return core::StatusOr<std::unique_ptr<Store>>(
                            options.status());
                        options->batch_max = batch_max;
                        options->pool_size = 4;
                        options->now = std::move(now);
                        return mysql::Open(*options);
                      }};
}

}  // namespace

std::vector<StoreFactory> AllStoreFactories() {
  return {MysqlFactory("mysql", 512)};
}

}  // namespace mpim::store::testing
