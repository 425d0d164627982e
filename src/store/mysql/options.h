// Options of the MySQL/MariaDB engine (kept free of mysql.h).
#pragma once

#include <cstdint>
#include <string>

#include "core/config.h"
#include "core/status.h"
#include "store/common.h"

namespace mpim::store::mysql {

struct MysqlOptions {
  // Where: from store.mysql_url (mysql://USER:PASS@HOST:PORT/DB). HOST is an
  // IP address or a name (resolved by the connector when a connection opens).
  std::string host = "127.0.0.1";
  uint16_t port = 3306;
  std::string user;
  std::string password;
  std::string database;
  // Reader connections, one thread each; the writer has one more.
  int pool_size = 8;
  // Group commit: most writes in one transaction. A batch commits when no
  // more writes are queued or when it holds batch_max.
  int batch_max = 512;
  // Connect, read and write timeout of one call on a connection.
  int timeout_ms = 5000;
  // The clock for store-made timestamps (created_at, job times).
  NowMsFn now;
};

// Parses mysql://USER[:PASS]@HOST[:PORT]/DB (user and password
// percent-decoded). kInvalidArgument naming what is wrong.
core::StatusOr<MysqlOptions> ParseMysqlUrl(const std::string& url);

// The options a configuration gives: store.mysql_url and the [store] mysql_*
// keys.
core::StatusOr<MysqlOptions> OptionsFrom(const core::Config& config);

}  // namespace mpim::store::mysql
