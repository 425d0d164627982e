// A real HTTP/1.1 server for tests of HTTP clients (net::HttpClient, the
// webhook and FCM push providers): Boost.Beast, one thread per connection,
// keep-alive, over TLS with a self-signed certificate it makes at start (its
// PEM in a temp file, ca_file(), for the client to trust) or cleartext.
// Listens on 127.0.0.1, a port chosen by the system.
//
// It records every request (with the connection it came on) and answers each
// as the handler says: at once, held until ReleaseHeld, by closing the
// connection without an answer, or with raw bytes. It counts connections
// (accepted, open, the most open at once) and can close the idle ones, as a
// server's idle timeout does.
//
// Threads: the handler runs on the request's connection thread (several at
// once); every other method may be called from any thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mpim::testing {

using TestHeaders = std::vector<std::pair<std::string, std::string>>;

struct HttpTestRequest {
  int connection = 0;  // 1, 2, ... in the order the server accepted them
  int index = 0;       // 0 for the first request on its connection
  std::string method;
  std::string target;
  TestHeaders headers;  // names in lower case, in order
  std::string body;

  // The first header named `name` (lower case), "" if none.
  std::string_view Header(std::string_view name) const;
};

struct HttpTestAnswer {
  enum class Action {
    kAnswer,  // status, headers and body now
    kHold,    // the same, once ReleaseHeld is called (or at shutdown)
    kClose,   // close the connection without answering
    kRaw,     // write `body` as it is (a broken answer), then close
  };
  int status = 200;
  TestHeaders headers;  // Content-Type: application/json unless given
  std::string body;
  Action action = Action::kAnswer;
  bool close = false;  // Connection: close, then close
};

// A self-signed certificate and its key, PEM.
struct TestCertificate {
  std::string cert_pem;
  std::string key_pem;
};
// EC P-256, valid from an hour ago for a day, subjectAltName DNS `dns_names`
// and IP `ips`. Empty on failure (OpenSSL's error in the test's log).
TestCertificate MakeSelfSignedCertificate(const std::vector<std::string>& dns_names,
                                          const std::vector<std::string>& ips);

class HttpTestServer {
 public:
  enum class Mode { kCleartext, kTls };
  using Handler = std::function<HttpTestAnswer(const HttpTestRequest&)>;

  // Starts listening; see ok() and error(). kTls: a certificate for
  // localhost and 127.0.0.1.
  explicit HttpTestServer(Mode mode = Mode::kCleartext);
  // kTls with this certificate.
  explicit HttpTestServer(TestCertificate certificate);
  ~HttpTestServer();  // closes everything, releases held answers, joins its threads
  HttpTestServer(const HttpTestServer&) = delete;
  HttpTestServer& operator=(const HttpTestServer&) = delete;

  bool ok() const { return error_.empty(); }
  const std::string& error() const { return error_; }
  uint16_t port() const { return port_; }
  // "https://127.0.0.1:PORT" or "http://127.0.0.1:PORT".
  std::string url() const;
  // The certificate's PEM file (kTls); "" for kCleartext.
  const std::string& ca_file() const { return ca_file_; }

  // For the requests that come after; the default answers 200, no body.
  void SetHandler(Handler handler);
  // A handler that answers every request with `action` (and 200, no body).
  static Handler Always(HttpTestAnswer::Action action);

  std::vector<HttpTestRequest> requests() const;
  size_t request_count() const;
  int connections_accepted() const;
  int open_connections() const;
  int max_open_connections() const;  // the most open at once
  size_t held_count() const;

  // Whether the condition held within `timeout`.
  bool WaitForRequests(size_t n, std::chrono::milliseconds timeout) const;
  bool WaitForHeld(size_t n, std::chrono::milliseconds timeout) const;
  bool WaitForOpenConnections(int n, std::chrono::milliseconds timeout) const;
  // At least `n` connections wait for their next request.
  bool WaitForIdleConnections(int n, std::chrono::milliseconds timeout) const;

  // Answers every held request now.
  void ReleaseHeld();
  // Closes every connection waiting for its next request.
  void CloseIdle();

 private:
  struct Connection;
  void Start(bool tls, const TestCertificate& certificate);
  void AcceptLoop();
  void Serve(std::shared_ptr<Connection> connection);
  template <typename Stream>
  void ServeRequests(Stream& stream, Connection& connection);
  template <typename Pred>
  bool WaitFor(std::chrono::milliseconds timeout, Pred pred) const;

  struct Internals;
  std::unique_ptr<Internals> in_;
  std::string error_;
  uint16_t port_ = 0;
  bool tls_ = false;
  std::string ca_dir_;
  std::string ca_file_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  // Guarded by mu_:
  Handler handler_;
  std::vector<HttpTestRequest> requests_;
  std::map<int, std::shared_ptr<Connection>> connections_;  // open ones, by id
  int accepted_ = 0;
  int max_open_ = 0;
  size_t held_ = 0;
  uint64_t release_epoch_ = 0;
  bool stopping_ = false;

  std::thread accept_thread_;
  std::vector<std::thread> threads_;  // one per connection; guarded by mu_
};

}  // namespace mpim::testing
