#include "store/sqlite/user_store.h"

#include <string>

#include "store/sql_queries.h"
#include "store/sqlite/rows.h"

namespace mpim::store::sqlite {
namespace {

// The smallest string greater than every string starting with `prefix`. A
// lone 0xff byte (never in UTF-8) stands for "no end".
std::string PrefixEnd(std::string prefix) {
  while (!prefix.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(prefix.back());
    if (last != 0xff) {
      ++last;
      return prefix;
    }
    prefix.pop_back();
  }
  return std::string(1, '\xff');
}

}  // namespace

void SqliteUserStore::Create(const NewUser& user, Callback<User> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<User>>([user, now](Connection& c) { return CreateUser(c, user, now); },
                                    std::move(done));
}

void SqliteUserStore::Get(int64_t user_id, Callback<User> done) {
  exec_.Read<core::StatusOr<User>>([user_id](Connection& c) { return LoadUser(c, user_id); },
                                   std::move(done));
}

void SqliteUserStore::GetByUsername(const std::string& username, Callback<User> done) {
  exec_.Read<core::StatusOr<User>>(
      [username](Connection& c) { return LoadUserByName(c, username); }, std::move(done));
}

void SqliteUserStore::GetMany(const std::vector<int64_t>& user_ids,
                              Callback<std::vector<User>> done) {
  exec_.Read<core::StatusOr<std::vector<User>>>(
      [user_ids](Connection& c) -> core::StatusOr<std::vector<User>> {
        if (user_ids.size() > static_cast<size_t>(kMaxPageLimit)) {
          return absl::InvalidArgumentError("too many user ids");
        }
        // One statement for any number of ids: they travel as a JSON array.
        const std::string ids = IdsJson(user_ids);
        MPIM_ASSIGN_OR_RETURN(
            Stmt st, c.Query(std::string("SELECT ") + kUserColumns +
                                 " FROM users WHERE user_id IN (SELECT value FROM json_each(?))"
                                 " ORDER BY user_id",
                             ids));
        return CollectRows<User>(st, ReadUser);
      },
      std::move(done));
}

void SqliteUserStore::Update(int64_t user_id, const UserUpdate& update, Callback<User> done) {
  exec_.Write<core::StatusOr<User>>(
      [user_id, update](Connection& c) { return UpdateUser(c, user_id, update); }, std::move(done));
}

void SqliteUserStore::TouchLastSeen(int64_t user_id, int64_t ts_ms, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_id, ts_ms](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(c.Exec(
            "UPDATE users SET last_seen = max(last_seen, ?) WHERE user_id = ?", ts_ms, user_id));
        if (c.Changes() == 0) {
          return absl::NotFoundError("user " + std::to_string(user_id) + " not found");
        }
        return core::Status();
      },
      std::move(done));
}

void SqliteUserStore::SearchByPrefix(const std::string& prefix, const std::string& after_username,
                                     int limit, Callback<Page<User>> done) {
  exec_.Read<core::StatusOr<Page<User>>>(
      [prefix, after_username, limit](Connection& c) -> core::StatusOr<Page<User>> {
        // A range on the unique index instead of LIKE: exact bytes, no
        // wildcards, and it uses the index.
        std::string end = PrefixEnd(prefix);
        bool after = !after_username.empty() && after_username >= prefix;
        std::string sql = std::string("SELECT ") + kUserColumns + " FROM users WHERE username " +
                          (after ? ">" : ">=") + " ?1 AND username < ?2 ORDER BY username LIMIT ?3";
        return QueryPage<User>(c, sql, limit, ReadUser, after ? after_username : prefix, end);
      },
      std::move(done));
}

void SqliteUserStore::Count(Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(auto n, c.QueryInt("SELECT COUNT(*) FROM users"));
        return n.value_or(0);
      },
      std::move(done));
}

}  // namespace mpim::store::sqlite
