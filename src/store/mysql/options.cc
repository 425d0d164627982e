#include "store/mysql/options.h"

#include <boost/url/parse.hpp>

namespace mpim::store::mysql {

core::StatusOr<MysqlOptions> ParseMysqlUrl(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError("store.mysql_url: " + why +
                                      " (expected mysql://USER:PASS@HOST:PORT/DB)");
  };
  auto parsed = boost::urls::parse_uri(url);
  if (!parsed) return bad("not a URL");
  const boost::urls::url_view& u = *parsed;
  if (u.scheme() != "mysql" && u.scheme() != "mariadb") return bad("scheme must be mysql");
  if (!u.has_authority() || u.host().empty()) return bad("no host");
  MysqlOptions options;
  options.host = u.host_address();
  if (u.has_port()) {
    if (u.port_number() == 0) return bad("bad port");
    options.port = u.port_number();
  }
  options.user = u.user();
  if (options.user.empty()) return bad("no user");
  options.password = u.password();
  std::string path = u.path();
  if (path.size() < 2 || path[0] != '/' || path.find('/', 1) != std::string::npos) {
    return bad("no database");
  }
  options.database = path.substr(1);
  return options;
}

}  // namespace mpim::store::mysql
