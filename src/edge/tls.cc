#include "edge/tls.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <cstring>
#include <ctime>

#include "core/secret_file.h"
#include "edge/log.h"

namespace mpim::edge {
namespace {

namespace ssl = boost::asio::ssl;

// ALPN: h2 when the client offers it (HTTP/2, h2_session.cc), else
// HTTP/1.1; without a match the handshake goes on without ALPN (a client
// that names nothing speaks HTTP/1.1).
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
               unsigned in_len, void*) {
  for (std::string_view want : {std::string_view("h2"), std::string_view("http/1.1")}) {
    for (unsigned i = 0; i < in_len;) {
      const unsigned len = in[i];
      if (i + 1 + len > in_len) break;
      if (std::string_view(reinterpret_cast<const char*>(in + i + 1), len) == want) {
        *out = in + i + 1;
        *out_len = static_cast<unsigned char>(len);
        return SSL_TLSEXT_ERR_OK;
      }
      i += 1 + len;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

// The notAfter of the context's certificate, Unix seconds; 0 if unknown.
int64_t NotAfter(ssl::context& ctx) {
  X509* cert = SSL_CTX_get0_certificate(ctx.native_handle());
  if (!cert) return 0;
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) != 1) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

}  // namespace

TlsCerts::TlsCerts(std::string cert_file, std::string key_file, int64_t poll_ms,
                   core::MetricsRegistry& metrics)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      reloads_(metrics.Counter("mpim_edge_tls_reloads_total",
                               "Reloads of the edge's certificate and key, by result: ok (in "
                               "force for new connections) or error (the old pair stayed).",
                               {"result"})),
      expiry_gauge_(metrics
                        .Gauge("mpim_edge_tls_certificate_expiry_timestamp_seconds",
                               "When the edge's certificate in force expires (notAfter, Unix "
                               "seconds).")
                        .With({})),
      watcher_({cert_file_, key_file_}, poll_ms, [this] { Reload("changed"); }) {}

TlsCerts::~TlsCerts() { watcher_.Stop(); }

core::Status TlsCerts::Load() {
  std::lock_guard lock(load_mu_);
  watcher_.Seen(watcher_.Look());  // a bad pair is read again on its next change
  auto cert = core::ReadFile(cert_file_, "edge.tls_cert_file");
  if (!cert.ok()) return cert.status();
  auto key = core::ReadSecretFile(key_file_, "edge.tls_key_file");
  if (!key.ok()) return key.status();

  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  boost::system::error_code ec;
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use,
                   ec);
  ctx->use_certificate_chain(boost::asio::buffer(*cert), ec);
  if (ec) {
    return absl::InvalidArgumentError("edge.tls_cert_file: " + cert_file_ +
                                      ": not a PEM certificate chain (" + ec.message() + ")");
  }
  ctx->use_private_key(boost::asio::buffer(*key), ssl::context::pem, ec);
  if (ec) {
    return absl::InvalidArgumentError("edge.tls_key_file: " + key_file_ +
                                      ": not a PEM private key (" + ec.message() + ")");
  }
  if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
    return absl::InvalidArgumentError("edge.tls_key_file: " + key_file_ +
                                      " is not the key of the certificate in " + cert_file_);
  }
  // Idle connections hand their read and write buffers back (about 34 KB
  // each otherwise).
  SSL_CTX_set_mode(ctx->native_handle(), SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx->native_handle(), SelectAlpn, nullptr);
  const int64_t not_after = NotAfter(*ctx);
  {
    std::lock_guard state(mu_);
    current_ = std::move(ctx);
    expiry_ = not_after;
  }
  expiry_gauge_.Set(static_cast<double>(not_after));
  return absl::OkStatus();
}

void TlsCerts::Reload(const char* why) {
  core::Status s = Load();
  reloads_.With({s.ok() ? "ok" : "error"}).Inc();
  if (s.ok()) {
    Log().Info("certificate reloaded", {{"file", cert_file_}, {"why", why}, {"expires", expiry()}});
  } else {
    Log().Error("certificate not reloaded; the one in force stays",
                {{"file", cert_file_}, {"why", why}, {"error", std::string(s.message())}});
  }
}

std::shared_ptr<ssl::context> TlsCerts::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

int64_t TlsCerts::expiry() const {
  std::lock_guard lock(mu_);
  return expiry_;
}

}  // namespace mpim::edge
