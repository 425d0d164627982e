// HTTP request and response values as handlers see them. Deliberately free of
// Beast and Asio, so handler code compiles fast; net/http_server.cc converts.
//
// A handler is called on the connection's io thread with the request and an
// HttpResponder. It must not block: blocking work goes to a worker pool, and
// the responder may be called later from any thread. The responder must be
// called exactly once; if it is destroyed without being called, the client
// gets 500 (a bug, never a hang).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "core/status.h"

namespace mpim::net {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // as sent: "/api/v1/users?prefix=al"
  std::string path;    // percent-decoded path
  Headers query;       // percent-decoded query parameters, in order
  Headers headers;     // names in lower case
  Headers params;      // path parameters from the route's {name} parts
  std::string body;
  std::string remote_address;  // peer IP address
  std::string route;           // the matched route pattern, e.g. "/users/{id}"

  // Case-insensitive header lookup; empty if absent.
  std::string_view Header(std::string_view name) const;
  std::optional<std::string_view> Query(std::string_view key) const;
  // A path parameter of the matched route; empty if absent.
  std::string_view Param(std::string_view name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  Headers headers;  // extra headers, e.g. {"Retry-After", "2"}

  static HttpResponse Json(int status, std::string body);
  static HttpResponse Text(int status, std::string body);
  static HttpResponse NoContent();
  // The protocol's error body and status for `status` (which is not OK);
  // rate_limited also gets a Retry-After header.
  static HttpResponse Error(const core::Status& status);
};

class HttpResponder {
 public:
  using Fn = absl::AnyInvocable<void(HttpResponse)>;

  HttpResponder() = default;
  explicit HttpResponder(Fn fn) : fn_(std::move(fn)) {}
  HttpResponder(HttpResponder&&) = default;
  HttpResponder& operator=(HttpResponder&& other) noexcept;
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;
  ~HttpResponder();

  // Sends the response. Calls after the first are ignored.
  void operator()(HttpResponse response);

 private:
  Fn fn_;
};

using HttpHandler = std::function<void(HttpRequest, HttpResponder)>;

}  // namespace mpim::net
