// A small blocking HTTP/1.1 client for tests and tools (mpim-bench): one
// keep-alive connection, reconnecting when the server closes it. Not
// thread-safe: one client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace mpim::client {

struct HttpResult {
  int status = 0;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-cased

  std::string Header(const std::string& name) const;  // "" if absent
};

class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  ~HttpClient();

  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request. unavailable when the connection fails or times out.
  core::StatusOr<HttpResult> Request(
      const std::string& method, const std::string& target, const std::string& body = "",
      const std::vector<std::pair<std::string, std::string>>& headers = {});

  core::StatusOr<HttpResult> Get(const std::string& target) { return Request("GET", target); }
  core::StatusOr<HttpResult> Post(const std::string& target, const std::string& body) {
    return Request("POST", target, body, {{"Content-Type", "application/json"}});
  }

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mpim::client
