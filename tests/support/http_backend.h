// An upstream for the edge's tests: a real HTTP server on loopback
// (HttpTestServer) that answers {"upstream":"<name>"} with a status the test
// sets (its /readyz: always 200), and counts and records what it was sent.
#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "net/http_test_server.h"
#include "support/api_client.h"

namespace mpim::testing {

class HttpBackend {
 public:
  explicit HttpBackend(std::string name) : name_(std::move(name)) {
    server_.SetHandler([this](const HttpTestRequest& r) {
      HttpTestAnswer a;
      if (r.target == "/readyz") return a;
      hits_.fetch_add(1);
      a.status = status_.load();
      a.body = R"({"upstream":")" + name_ + R"("})";
      return a;
    });
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  uint16_t port() const { return server_.port(); }
  int hits() const { return hits_.load(); }
  void set_status(int s) { status_.store(s); }
  std::vector<HttpTestRequest> requests() const { return server_.requests(); }
  HttpTestServer& server() { return server_; }

 private:
  std::string name_;
  std::atomic<int> hits_{0};
  std::atomic<int> status_{200};
  HttpTestServer server_;
};

// Which backend answered: its name, or "<status> <body>" when none did.
inline std::string Who(int status, const boost::json::value& json, const std::string& describe) {
  if (status == 200 && json.is_object() && json.as_object().contains("upstream") &&
      json.at("upstream").is_string()) {
    return std::string(json.at("upstream").as_string());
  }
  return describe;
}
inline std::string Who(const ApiResponse& r) { return Who(r.status, r.json, r.Describe()); }

}  // namespace mpim::testing
