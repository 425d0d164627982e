// The Store root shared by the SQL engines (SQLite and MySQL): an engine's
// executor and one of each of its sub-stores, all built on that executor.
#pragma once

#include <memory>
#include <utility>

#include "core/status.h"
#include "store/store.h"

namespace mpim::store {

// `Exec` is the engine's executor (Read, Write, Close); the others are its
// sub-stores, each constructed from an `Exec&`.
template <typename Exec, typename Users, typename Sessions, typename Friends, typename Groups,
          typename Conversations, typename Messages, typename Search, typename Jobs>
class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<Exec> exec)
      : exec_(std::move(exec)),
        users_(*exec_),
        sessions_(*exec_),
        friends_(*exec_),
        groups_(*exec_),
        conversations_(*exec_),
        messages_(*exec_),
        search_(*exec_),
        jobs_(*exec_) {}
  ~SqlStore() override { Close(); }

  UserStore& users() override { return users_; }
  SessionStore& sessions() override { return sessions_; }
  FriendStore& friends() override { return friends_; }
  GroupStore& groups() override { return groups_; }
  ConversationStore& conversations() override { return conversations_; }
  MessageStore& messages() override { return messages_; }
  SearchStore& search() override { return search_; }
  JobStore& jobs() override { return jobs_; }

  // A read on a reader, then a one-row write through the writer (so it
  // shares a batch with the writes under way). With SQLite a full or
  // read-only disk fails the write, not the read, and once the cause is gone
  // the write succeeds again, with or without client traffic; with MySQL it
  // is OK only while the server answers both.
  void Ping(DoneCallback done) override {
    Exec* exec = exec_.get();
    exec_->template Read<core::Status>(
        [](auto& c) { return c.QueryInt("SELECT version FROM schema_version").status(); },
        [exec, done = std::move(done)](core::Status read) mutable {
          if (!read.ok()) return std::move(done)(read);
          exec->template Write<core::Status>(
              [](auto& c) {
                return c.Exec("UPDATE store_probe SET writes = writes + 1 WHERE id = 1");
              },
              std::move(done));
        });
  }

  void Close() override { exec_->Close(); }

 private:
  std::unique_ptr<Exec> exec_;
  Users users_;
  Sessions sessions_;
  Friends friends_;
  Groups groups_;
  Conversations conversations_;
  Messages messages_;
  Search search_;
  Jobs jobs_;
};

}  // namespace mpim::store
