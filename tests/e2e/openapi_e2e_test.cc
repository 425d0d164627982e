// docs/openapi.yaml against the real server: every operation the file
// documents is served at its path and method, and answers a request without
// credentials as the file says (401 where it names a security scheme; no
// 404 or 405 anywhere). A renamed route, a typo in a documented path or a
// method the router does not serve fails here.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "client/http_client.h"
#include "support/server_process.h"

#ifndef MPIM_SOURCE_DIR
#error "MPIM_SOURCE_DIR must name the source tree (for docs/openapi.yaml)"
#endif

namespace mpim {
namespace {

using testing::ServerProcess;

struct Operation {
  std::string method;    // upper case
  std::string path;      // as documented, with {parameters}
  std::string security;  // "bearerAuth", "adminKey" or "" (none)
};

// The operations of docs/openapi.yaml. The file is YAML; this reads only its
// fixed layout (two-space indents): "  /path:" opens a path, "    get:" an
// operation, "        - <scheme>: []" under "security:" names its scheme.
std::vector<Operation> DocumentedOperations(const std::string& file) {
  std::ifstream in(file);
  std::vector<Operation> ops;
  const std::regex path_re(R"(^  (/[^ :]*):\s*$)");
  const std::regex method_re(R"(^    (get|post|put|patch|delete):\s*$)");
  const std::regex scheme_re(R"(^        - (bearerAuth|adminKey): \[\]\s*$)");
  std::string line, path;
  bool in_paths = false;
  while (std::getline(in, line)) {
    if (line == "paths:") {
      in_paths = true;
      continue;
    }
    if (!in_paths) continue;
    if (!line.empty() && line[0] != ' ' && line[0] != '#') break;  // components:
    std::smatch m;
    if (std::regex_match(line, m, path_re)) {
      path = m[1];
    } else if (std::regex_match(line, m, method_re)) {
      std::string method = m[1];
      for (char& c : method) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      ops.push_back(Operation{method, path, ""});
    } else if (std::regex_match(line, m, scheme_re) && !ops.empty()) {
      ops.back().security = m[1];
    }
  }
  return ops;
}

// The documented path with its parameters filled in.
std::string Concrete(const std::string& path) {
  static const std::regex param(R"(\{([a-z_]+)\})");
  std::string out;
  auto begin = std::sregex_iterator(path.begin(), path.end(), param);
  size_t last = 0;
  for (auto it = begin; it != std::sregex_iterator(); ++it) {
    out += path.substr(last, static_cast<size_t>(it->position()) - last);
    out += (*it)[1] == "conv_id" ? "p:1:2" : "1";
    last = static_cast<size_t>(it->position() + it->length());
  }
  return out + path.substr(last);
}

TEST(OpenApiE2eTest, EveryDocumentedOperationIsServedAsDocumented) {
  const std::string file = std::string(MPIM_SOURCE_DIR) + "/docs/openapi.yaml";
  const std::vector<Operation> ops = DocumentedOperations(file);
  // The file documents 40-odd operations; far fewer means the reader above
  // no longer understands its layout.
  ASSERT_GE(ops.size(), 40u) << file;

  ServerProcess server({.extra_args = {"--set", "admin.api_key=openapi-test-key-0123456789"}});
  ASSERT_TRUE(server.Start()) << server.error();
  client::HttpClient http("127.0.0.1", server.port());

  std::set<std::string> seen;
  for (const Operation& op : ops) {
    SCOPED_TRACE(op.method + " " + op.path);
    EXPECT_TRUE(seen.insert(op.method + " " + op.path).second) << "documented twice";
    const bool has_body = op.method == "POST" || op.method == "PUT" || op.method == "PATCH";
    auto res = http.Request(op.method, Concrete(op.path), has_body ? "{}" : "");
    ASSERT_TRUE(res.ok()) << res.status();
    EXPECT_NE(res->status, 404) << res->body;
    EXPECT_NE(res->status, 405) << res->body;
    if (!op.security.empty()) {
      // No credentials: refused before anything else is looked at.
      EXPECT_EQ(res->status, 401) << res->body;
      if (res->status == 401) {
        EXPECT_EQ(boost::json::parse(res->body).at("error").at("code").as_string(),
                  "unauthenticated");
      }
    } else {
      // Open endpoints: the operations' (200) or a refused empty body (400).
      EXPECT_TRUE(res->status == 200 || res->status == 400) << res->status << " " << res->body;
    }
  }
}

}  // namespace
}  // namespace mpim
