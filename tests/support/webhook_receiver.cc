#include "support/webhook_receiver.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>

#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/router.h"

namespace mpim::testing {

struct WebhookReceiver::Impl {
  net::IoPool pool{1};
  net::Router router;
  std::unique_ptr<net::HttpServer> server;
  mutable std::mutex mu;  // guards received and policy
  mutable std::condition_variable cv;
  std::vector<ReceivedPush> received;
  Policy policy;
};

WebhookReceiver::WebhookReceiver() : impl_(std::make_unique<Impl>()) {
  Impl* impl = impl_.get();
  impl->router.Add("POST", "/hook", [impl](net::HttpRequest req, net::HttpResponder respond) {
    ReceivedPush push{.body = req.body,
                      .signature = std::string(req.Header("x-mpim-signature")),
                      .delivery_id = std::string(req.Header("x-mpim-delivery")),
                      .content_type = std::string(req.Header("content-type")),
                      .at = std::chrono::steady_clock::now()};
    int status = 200;
    {
      std::lock_guard lock(impl->mu);
      if (impl->policy) status = impl->policy(req.body, impl->received.size());
      push.answered = status;
      impl->received.push_back(std::move(push));
    }
    impl->cv.notify_all();
    respond(net::HttpResponse::Json(status, "{}"));
  });
  impl->server = std::make_unique<net::HttpServer>(
      impl->pool, impl->router, net::HttpServerOptions{.port = 0, .max_body_bytes = 1 << 20});
  impl->pool.Start();
  core::Status s = impl->server->Start();
  if (!s.ok()) std::abort();
}

WebhookReceiver::~WebhookReceiver() {
  impl_->server->StartDrain();
  impl_->server->WaitDrained(std::chrono::seconds(2));
  impl_->server->CloseAll();
  impl_->pool.Stop();
  impl_->server.reset();
}

std::string WebhookReceiver::url() const {
  return "http://127.0.0.1:" + std::to_string(impl_->server->port()) + "/hook";
}

void WebhookReceiver::SetPolicy(Policy policy) {
  std::lock_guard lock(impl_->mu);
  impl_->policy = std::move(policy);
}

std::vector<ReceivedPush> WebhookReceiver::Received() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received;
}

size_t WebhookReceiver::count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->received.size();
}

bool WebhookReceiver::WaitFor(const std::function<bool(const std::vector<ReceivedPush>&)>& pred,
                              std::chrono::milliseconds deadline) const {
  std::unique_lock lock(impl_->mu);
  return impl_->cv.wait_for(lock, deadline, [&] { return pred(impl_->received); });
}

size_t WebhookReceiver::connections() const { return impl_->server->open_connections(); }

std::string HmacSha256Hex(const std::string& secret, const std::string& body) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(body.data()), body.size(), mac, &len);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 15];
  }
  return out;
}

}  // namespace mpim::testing
