#include "store/sqlite/sqlite_store.h"

#include <filesystem>

#include "store/sql_store.h"
#include "store/sqlite/conversation_store.h"
#include "store/sqlite/executor.h"
#include "store/sqlite/friend_store.h"
#include "store/sqlite/group_store.h"
#include "store/sqlite/job_store.h"
#include "store/sqlite/message_store.h"
#include "store/sqlite/schema.h"
#include "store/sqlite/search_store.h"
#include "store/sqlite/session_store.h"
#include "store/sqlite/user_store.h"

namespace mpim::store::sqlite {

SqliteOptions OptionsFrom(const core::Config& config) {
  SqliteOptions options;
  options.path = (std::filesystem::path(config.server.data_dir) / "mpim.db").string();
  options.synchronous = config.store.sqlite_synchronous;
  options.reader_threads = static_cast<int>(config.store.sqlite_reader_threads);
  options.batch_max = static_cast<int>(config.store.sqlite_batch_max);
  options.batch_delay = std::chrono::microseconds(config.store.sqlite_batch_delay_us);
  return options;
}

using SqliteStore =
    SqlStore<Executor, SqliteUserStore, SqliteSessionStore, SqliteFriendStore, SqliteGroupStore,
             SqliteConversationStore, SqliteMessageStore, SqliteSearchStore, SqliteJobStore>;

core::StatusOr<std::unique_ptr<Store>> Open(const SqliteOptions& options) {
  if (options.synchronous != "normal" && options.synchronous != "full") {
    return absl::InvalidArgumentError("synchronous must be \"normal\" or \"full\", got \"" +
                                      options.synchronous + "\"");
  }
  MPIM_RETURN_IF_ERROR(Migrate(options).status());
  MPIM_ASSIGN_OR_RETURN(auto exec, Executor::Start(options));
  return std::unique_ptr<Store>(new SqliteStore(std::move(exec)));
}

}  // namespace mpim::store::sqlite
