// The store contract suite run against the SQLite engine: once with group
// commit as configured by default, once with a batch of one write (every
// write its own transaction), so both paths of the writer are held to it.
#include "contract/store_contract.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/sqlite_store.h"

namespace mpim::store::testing {

namespace {

StoreFactory SqliteFactory(std::string name, int batch_max) {
  return StoreFactory{std::move(name), [batch_max](const std::string& dir, NowMsFn now) {
                        sqlite::SqliteOptions options;
                        options.path = dir + "/mpim.db";
                        options.batch_max = batch_max;
                        options.now = std::move(now);
                        return sqlite::Open(options);
                      }};
}

}  // namespace

std::vector<StoreFactory> AllStoreFactories() {
  return {SqliteFactory("sqlite", 512), SqliteFactory("sqlite_batch1", 1)};
}

}  // namespace mpim::store::testing
