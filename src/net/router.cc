#include "net/router.h"

#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>

namespace mpim::net {

struct Router::Node {
  std::map<std::string, std::unique_ptr<Node>, std::less<>> literals;
  std::unique_ptr<Node> param;
  std::string param_name;                // name of `param`'s segment
  std::map<std::string, HttpHandler, std::less<>> handlers;  // by method
  std::string pattern;                   // set where handlers exist
};

namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    size_t end = path.find('/', i);
    if (end == std::string_view::npos) end = path.size();
    out.emplace_back(path.substr(i, end - i));
    i = end;
  }
  return out;
}

}  // namespace

core::StatusOr<ParsedTarget> ParseTarget(std::string_view target) {
  auto parsed = boost::urls::parse_origin_form(target);
  if (!parsed) return absl::InvalidArgumentError("malformed request target");
  boost::urls::url_view url = *parsed;
  ParsedTarget out;
  out.path = std::string(url.path());
  for (auto segment : url.segments()) {
    if (!segment.empty()) out.segments.push_back(std::string(segment));
  }
  for (auto param : url.params()) {
    out.query.emplace_back(std::string(param.key), std::string(param.value));
  }
  return out;
}

// Depth-first, literal before parameter; the first node with handlers for
// the whole path wins, and its method set decides between found and 405.
const Router::Node* Router::Walk(const Node* node, const std::vector<std::string>& segments,
                                 size_t i, Headers& params) {
  if (i == segments.size()) return node->handlers.empty() ? nullptr : node;
  if (auto it = node->literals.find(segments[i]); it != node->literals.end()) {
    if (const Node* n = Walk(it->second.get(), segments, i + 1, params)) return n;
  }
  if (node->param) {
    params.emplace_back(node->param_name, segments[i]);
    if (const Node* n = Walk(node->param.get(), segments, i + 1, params)) return n;
    params.pop_back();
  }
  return nullptr;
}

Router::Router() : root_(std::make_unique<Node>()) {}
Router::~Router() = default;

void Router::Add(std::string_view method, std::string_view pattern, HttpHandler handler) {
  Node* node = root_.get();
  for (const std::string& seg : SplitPath(pattern)) {
    if (seg.size() > 2 && seg.front() == '{' && seg.back() == '}') {
      if (!node->param) {
        node->param = std::make_unique<Node>();
        node->param_name = seg.substr(1, seg.size() - 2);
      }
      node = node->param.get();
    } else {
      auto& child = node->literals[seg];
      if (!child) child = std::make_unique<Node>();
      node = child.get();
    }
  }
  node->pattern = std::string(pattern);
  node->handlers[std::string(method)] = std::move(handler);
}

Router::Match Router::Find(std::string_view method,
                           const std::vector<std::string>& segments) const {
  Match result;
  Headers params;
  const Node* node = Walk(root_.get(), segments, 0, params);
  if (!node) return result;
  if (auto it = node->handlers.find(method); it != node->handlers.end()) {
    result.kind = Match::Kind::kFound;
    result.handler = &it->second;
    result.pattern = node->pattern;
    result.params = std::move(params);
    return result;
  }
  result.kind = Match::Kind::kMethodNotAllowed;
  for (const auto& [m, h] : node->handlers) result.allowed.push_back(m);
  return result;
}

Router::Match Router::Find(std::string_view method, std::string_view path) const {
  return Find(method, SplitPath(path));
}

}  // namespace mpim::net
