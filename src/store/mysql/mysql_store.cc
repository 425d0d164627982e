#include "store/mysql/mysql_store.h"

#include "store/mysql/conversation_store.h"
#include "store/mysql/executor.h"
#include "store/mysql/friend_store.h"
#include "store/mysql/group_store.h"
#include "store/mysql/job_store.h"
#include "store/mysql/message_store.h"
#include "store/mysql/schema.h"
#include "store/mysql/search_store.h"
#include "store/mysql/session_store.h"
#include "store/mysql/user_store.h"
#include "store/sql_store.h"

namespace mpim::store::mysql {

core::StatusOr<MysqlOptions> OptionsFrom(const core::Config& config) {
  MPIM_ASSIGN_OR_RETURN(MysqlOptions options, ParseMysqlUrl(config.store.mysql_url));
  options.pool_size = static_cast<int>(config.store.mysql_pool_size);
  options.batch_max = static_cast<int>(config.store.mysql_batch_max);
  options.timeout_ms = static_cast<int>(config.store.mysql_timeout_ms);
  return options;
}

using MysqlStore =
    SqlStore<Executor, MysqlUserStore, MysqlSessionStore, MysqlFriendStore, MysqlGroupStore,
             MysqlConversationStore, MysqlMessageStore, MysqlSearchStore, MysqlJobStore>;

core::StatusOr<std::unique_ptr<Store>> Open(const MysqlOptions& options) {
  MPIM_RETURN_IF_ERROR(Migrate(options).status());
  MPIM_ASSIGN_OR_RETURN(auto exec, Executor::Start(options));
  return std::unique_ptr<Store>(new MysqlStore(std::move(exec)));
}

}  // namespace mpim::store::mysql
