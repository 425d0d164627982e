// The edge's end-to-end fixture (issue 23): the real `mpim serve --role
// edge` on an edge.routes_file the test writes (and rewrites, by rename),
// optionally with TLS on a self-signed certificate the test installs; and
// helpers for routes files. Used by edge_routes_e2e_test and
// edge_h2_e2e_test.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "net/http_test_server.h"
#include "support/api_client.h"
#include "support/http_backend.h"
#include "support/server_process.h"
#include "support/temp_dir.h"

namespace mpim::testing {

// An upstream cluster with a static list: [upstreams.NAME], its addresses,
// and `more` lines of its settings.
inline std::string Upstream(const std::string& name, const std::vector<std::string>& addresses,
                            const std::string& more = "") {
  std::string out = "[upstreams." + name + "]\naddresses = [";
  for (size_t i = 0; i < addresses.size(); ++i) {
    out += (i > 0 ? ", \"" : "\"") + addresses[i] + "\"";
  }
  return out + "]\n" + more + "\n";
}

inline std::string Loopback(uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

inline std::string RoutesTo(const HttpBackend& to) {
  return Upstream("one", {to.address()}) + "[[routes]]\nupstream = \"one\"\n";
}

class EdgeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTempDir("mpim-edge-routes-");
    routes_ = dir_ / "routes.toml";
  }
  void TearDown() override {
    if (HasFailure() && edge_) std::printf("edge log:\n%s\n", edge_->LogTail(6000).c_str());
    edge_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Replaces the routes file whole (a rename, as editors and config
  // managers do), with a new modification time.
  void WriteRoutes(const std::string& text) {
    const auto tmp = dir_ / "routes.toml.new";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, routes_);
  }

  // Starts the edge on the routes file written now.
  bool StartEdge(const std::string& text, std::vector<std::string> extra = {}) {
    WriteRoutes(text);
    std::vector<std::string> args = {"--role", "edge",
                                     "--set",  "edge.routes_file=" + routes_.string(),
                                     "--set",  "edge.routes_reload_ms=100",
                                     "--set",  "edge.health_interval_ms=100",
                                     "--set",  "edge.access_log=true"};
    args.insert(args.end(), extra.begin(), extra.end());
    edge_ = std::make_unique<ServerProcess>(
        ServerProcess::Options{.extra_args = args, .env = FastAuthEnv()});
    if (!edge_->Start()) {
      start_error_ = edge_->error();
      return false;
    }
    return true;
  }

  ApiResponse Get(const std::string& target,
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
    return ApiClient(edge_->port()).Call("GET", target, "", "", std::move(headers));
  }

  std::filesystem::path dir_;
  std::filesystem::path routes_;
  std::unique_ptr<ServerProcess> edge_;
  std::string start_error_;

  // --- TLS ---
  static TestCertificate NewCertificate() {
    TestCertificate c = MakeSelfSignedCertificate({"localhost"}, {"127.0.0.1"});
    EXPECT_FALSE(c.cert_pem.empty());
    return c;
  }

  // Writes `c` over the edge's certificate and key (the key mode 600 unless
  // `key_mode` says otherwise), key first, each by a rename; ca.pem (what
  // clients trust) becomes the certificate.
  void Install(const TestCertificate& c,
               std::filesystem::perms key_mode = std::filesystem::perms::owner_read |
                                                 std::filesystem::perms::owner_write) {
    const auto key_tmp = dir_ / "key.pem.new";
    std::ofstream(key_tmp) << c.key_pem;
    std::filesystem::permissions(key_tmp, key_mode);
    std::filesystem::rename(key_tmp, dir_ / "key.pem");
    const auto cert_tmp = dir_ / "cert.pem.new";
    std::ofstream(cert_tmp) << c.cert_pem;
    std::filesystem::rename(cert_tmp, dir_ / "cert.pem");
    std::ofstream(dir_ / "ca.pem") << c.cert_pem;
  }

  bool StartTlsEdge(const std::string& routes, std::vector<std::string> extra = {}) {
    first_ = NewCertificate();
    Install(first_);
    std::vector<std::string> args = {"--set", "edge.tls_cert_file=" + (dir_ / "cert.pem").string(),
                                     "--set", "edge.tls_key_file=" + (dir_ / "key.pem").string()};
    args.insert(args.end(), extra.begin(), extra.end());
    return StartEdge(routes, args);
  }

  // `openssl s_client` to the edge: its output (certificate, ALPN).
  std::string SClient(const std::string& alpn) {
    int code = 0;
    return RunCommand(
        "echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(edge_->port()) +
            " -servername localhost -alpn " + alpn + " 2>&1",
        &code);
  }

  // SHA-256 fingerprint of the certificate a new connection is served.
  std::string ServedFingerprint() {
    int code = 0;
    return RunCommand(
        "echo | timeout 10 openssl s_client -connect 127.0.0.1:" + std::to_string(edge_->port()) +
            " -servername localhost 2>/dev/null | openssl x509 -noout "
            "-fingerprint -sha256",
        &code);
  }
  TestCertificate first_;  // the one the edge started with

  std::string Fingerprint(const std::string& pem) {
    std::ofstream(dir_ / "probe.pem") << pem;
    int code = 0;
    return RunCommand(
        "openssl x509 -noout -fingerprint -sha256 -in " + (dir_ / "probe.pem").string(), &code);
  }
};

}  // namespace mpim::testing
