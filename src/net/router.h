// Maps (method, path) to a handler. Patterns are paths whose segments are
// literals or `{name}` parameters matching exactly one non-empty segment:
// "/api/v1/groups/{id}/members/{user_id}". A literal segment wins over a
// parameter at the same depth. A path that matches a pattern registered for
// other methods only is a 405 (with the allowed methods); no pattern is 404.
//
// Build the router at start-up (Add is not thread-safe); Match is const and
// may then be called from every io thread at once.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "net/http.h"

namespace mpim::net {

// A request target split into percent-decoded path segments and query pairs.
struct ParsedTarget {
  std::string path;                   // decoded
  std::vector<std::string> segments;  // decoded; "/a/b" -> {"a", "b"}
  Headers query;
};

// Fails with invalid_argument for a target that is not an origin form
// ("/path?query") or has bad percent-encoding.
core::StatusOr<ParsedTarget> ParseTarget(std::string_view target);

class Router {
 public:
  struct Match {
    enum class Kind { kFound, kNotFound, kMethodNotAllowed } kind = Kind::kNotFound;
    const HttpHandler* handler = nullptr;  // kFound
    std::string pattern;                   // kFound: the route pattern
    Headers params;                        // kFound: {name} -> value
    std::vector<std::string> allowed;      // kMethodNotAllowed, sorted
  };

  Router();
  ~Router();

  // Registers `handler` for `method` on `pattern`. A second registration of
  // the same method and pattern replaces the first.
  void Add(std::string_view method, std::string_view pattern, HttpHandler handler);

  // Handles GET requests that match no route (static files); without one
  // they are 404.
  void SetFallback(HttpHandler handler) { fallback_ = std::move(handler); }
  const HttpHandler* fallback() const { return fallback_ ? &fallback_ : nullptr; }

  Match Find(std::string_view method, const std::vector<std::string>& segments) const;
  // Convenience for tests and internal callers: splits `path` on '/', no decoding.
  Match Find(std::string_view method, std::string_view path) const;

 private:
  struct Node;
  static const Node* Walk(const Node* node, const std::vector<std::string>& segments, size_t i,
                          Headers& params);

  std::unique_ptr<Node> root_;
  HttpHandler fallback_;
};

}  // namespace mpim::net
