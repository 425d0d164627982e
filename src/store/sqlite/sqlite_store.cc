#include "store/sqlite/sqlite_store.h"

#include <filesystem>

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
namespace {

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(std::unique_ptr<Executor> exec)
      : exec_(std::move(exec)),
        users_(*exec_),
        sessions_(*exec_),
        friends_(*exec_),
        groups_(*exec_),
        conversations_(*exec_),
        messages_(*exec_),
        search_(*exec_),
        jobs_(*exec_) {}
  ~SqliteStore() override { Close(); }

  UserStore& users() override { return users_; }
  SessionStore& sessions() override { return sessions_; }
  FriendStore& friends() override { return friends_; }
  GroupStore& groups() override { return groups_; }
  ConversationStore& conversations() override { return conversations_; }
  MessageStore& messages() override { return messages_; }
  SearchStore& search() override { return search_; }
  JobStore& jobs() override { return jobs_; }

  // A read, then a one-row write through the writer (so it shares a batch
  // with the writes under way): a full or read-only disk fails the write,
  // not the read, and once the cause is gone the write succeeds again, with
  // or without client traffic.
  void Ping(DoneCallback done) override {
    Executor* exec = exec_.get();
    exec_->Read<core::Status>(
        [](Connection& c) { return c.QueryInt("SELECT version FROM schema_version").status(); },
        [exec, done = std::move(done)](core::Status read) mutable {
          if (!read.ok()) return std::move(done)(read);
          exec->Write<core::Status>(
              [](Connection& c) {
                return c.Exec("UPDATE store_probe SET writes = writes + 1 WHERE id = 1");
              },
              std::move(done));
        });
  }

  void Close() override { exec_->Close(); }

 private:
  std::unique_ptr<Executor> exec_;
  SqliteUserStore users_;
  SqliteSessionStore sessions_;
  SqliteFriendStore friends_;
  SqliteGroupStore groups_;
  SqliteConversationStore conversations_;
  SqliteMessageStore messages_;
  SqliteSearchStore search_;
  SqliteJobStore jobs_;
};

}  // namespace

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
