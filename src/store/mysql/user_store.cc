#include "store/mysql/user_store.h"

#include <string>

#include "store/mysql/rows.h"
#include "store/sql_queries.h"

namespace mpim::store::mysql {
namespace {

// A LIKE pattern matching the strings that start with `prefix`, byte for
// byte: the wildcards and the escape character itself escaped with '!'.
std::string PrefixPattern(const std::string& prefix) {
  std::string out;
  for (char ch : prefix) {
    if (ch == '!' || ch == '%' || ch == '_') out += '!';
    out += ch;
  }
  return out + '%';
}

}  // namespace

void MysqlUserStore::Create(const NewUser& user, Callback<User> done) {
  int64_t now = exec_.NowMs();
  exec_.Write<core::StatusOr<User>>([user, now](Connection& c) { return CreateUser(c, user, now); },
                                    std::move(done));
}

void MysqlUserStore::Get(int64_t user_id, Callback<User> done) {
  exec_.Read<core::StatusOr<User>>([user_id](Connection& c) { return LoadUser(c, user_id); },
                                   std::move(done));
}

void MysqlUserStore::GetByUsername(const std::string& username, Callback<User> done) {
  exec_.Read<core::StatusOr<User>>(
      [username](Connection& c) { return LoadUserByName(c, username); }, std::move(done));
}

void MysqlUserStore::GetMany(const std::vector<int64_t>& user_ids,
                             Callback<std::vector<User>> done) {
  exec_.Read<core::StatusOr<std::vector<User>>>(
      [user_ids](Connection& c) -> core::StatusOr<std::vector<User>> {
        if (user_ids.size() > static_cast<size_t>(kMaxPageLimit)) {
          return absl::InvalidArgumentError("too many user ids");
        }
        // One statement for any number of ids: they travel as a JSON array.
        const std::string ids = IdsJson(user_ids);
        MPIM_ASSIGN_OR_RETURN(
            Rows rows,
            c.Query(std::string("SELECT ") + kUserColumns +
                        " FROM users WHERE user_id IN (SELECT id FROM JSON_TABLE(?, '$[*]'"
                        " COLUMNS (id BIGINT PATH '$')) AS j) ORDER BY user_id",
                    ids));
        return CollectRows<User>(rows, ReadUser);
      },
      std::move(done));
}

void MysqlUserStore::Update(int64_t user_id, const UserUpdate& update, Callback<User> done) {
  exec_.Write<core::StatusOr<User>>(
      [user_id, update](Connection& c) { return UpdateUser(c, user_id, update); }, std::move(done));
}

void MysqlUserStore::TouchLastSeen(int64_t user_id, int64_t ts_ms, DoneCallback done) {
  exec_.Write<core::Status>(
      [user_id, ts_ms](Connection& c) -> core::Status {
        MPIM_RETURN_IF_ERROR(
            c.Exec("UPDATE users SET last_seen = GREATEST(last_seen, ?) WHERE user_id = ?", ts_ms,
                   user_id));
        if (c.Changes() == 0) {
          return absl::NotFoundError("user " + std::to_string(user_id) + " not found");
        }
        return core::Status();
      },
      std::move(done));
}

void MysqlUserStore::SearchByPrefix(const std::string& prefix, const std::string& after_username,
                                    int limit, Callback<Page<User>> done) {
  exec_.Read<core::StatusOr<Page<User>>>(
      [prefix, after_username, limit](Connection& c) -> core::StatusOr<Page<User>> {
        // LIKE instead of SQLite's [prefix, PrefixEnd(prefix)) range: the end
        // bound would be a string that is not UTF-8, which MySQL does not
        // compare as bytes. A LIKE with a constant prefix is still a range on
        // the unique index; the column's binary collation makes it exact.
        bool after = !after_username.empty() && after_username >= prefix;
        std::string sql = std::string("SELECT ") + kUserColumns + " FROM users WHERE username " +
                          (after ? ">" : ">=") +
                          " ? AND username LIKE ? ESCAPE '!' ORDER BY username LIMIT ?";
        return QueryPage<User>(c, sql, limit, ReadUser, after ? after_username : prefix,
                               PrefixPattern(prefix));
      },
      std::move(done));
}

void MysqlUserStore::Count(Callback<int64_t> done) {
  exec_.Read<core::StatusOr<int64_t>>(
      [](Connection& c) -> core::StatusOr<int64_t> {
        MPIM_ASSIGN_OR_RETURN(auto n, c.QueryInt("SELECT COUNT(*) FROM users"));
        return n.value_or(0);
      },
      std::move(done));
}

}  // namespace mpim::store::mysql
