// The edge's TLS (docs/edge.md, "TLS"): a certificate chain and its key
// (PEM, edge.tls_cert_file and edge.tls_key_file; the key readable by its
// owner only), TLS 1.2 and 1.3, ALPN (h2, http/1.1), and certificate reload
// without dropping a connection: the files are read again when they change
// (FileWatcher, every edge.routes_reload_ms) or on Reload() (SIGHUP), and
// a new OpenSSL context is swapped in for the connections that come next;
// connections already up keep the one they began with. A pair that fails to
// load (unreadable, not PEM, a key that does not match the certificate)
// changes nothing: it is logged and counted
// (mpim_edge_tls_reloads_total{result="error"}). The certificate's expiry
// is a metric (mpim_edge_tls_certificate_expiry_timestamp_seconds) for the
// alert before it lapses.
//
// Threads: Current from any thread (per accepted connection); Load and
// Reload from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "core/metrics.h"
#include "core/status.h"
#include "edge/file_watcher.h"

namespace boost::asio::ssl {
class context;
}

namespace mpim::edge {

class TlsCerts {
 public:
  TlsCerts(std::string cert_file, std::string key_file, int64_t poll_ms,
           core::MetricsRegistry& metrics = core::DefaultRegistry());
  ~TlsCerts();

  TlsCerts(const TlsCerts&) = delete;
  TlsCerts& operator=(const TlsCerts&) = delete;

  // Reads both files and makes the context; its error names the key.
  [[nodiscard]] core::Status Load();
  // Load again (`why` goes in the log line); errors are logged, not returned.
  void Reload(const char* why);

  // The context for a new connection; null before a Load succeeded.
  std::shared_ptr<boost::asio::ssl::context> Current() const;

  // The certificate's notAfter (Unix seconds) of the context in force.
  int64_t expiry() const;

  void Start() { watcher_.Start(); }
  void Stop() { watcher_.Stop(); }

 private:
  const std::string cert_file_;
  const std::string key_file_;
  core::CounterFamily& reloads_;
  core::Gauge& expiry_gauge_;
  std::mutex load_mu_;  // one load at a time

  mutable std::mutex mu_;  // guards the two below
  std::shared_ptr<boost::asio::ssl::context> current_;
  int64_t expiry_ = 0;

  FileWatcher watcher_;  // last: its thread calls into the members above
};

}  // namespace mpim::edge
