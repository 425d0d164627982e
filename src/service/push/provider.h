// Offline push (protocol.md section 4): what a push provider is. The task
// role's push jobs (service/push/push_job.h) hand each provider the pushes
// of its platform; one implementation per provider, made by name in
// service/push/registry.cc:
//   - webhook (webhook_provider.h): HTTP/1.1 POST, HMAC-SHA256 signature;
//   - apns (apns_provider.h): HTTP/2 to Apple, ES256 provider token;
//   - fcm (fcm_provider.h): FCM HTTP v1, OAuth2 token from a service account.
//
// Contract for every implementation:
//   - Send never blocks the caller and never throws; `done` runs exactly
//     once, on any thread (usually the provider's io thread), with one
//     Result per push, in the order of `pushes`.
//   - Network I/O runs on the io_context given at construction (one thread
//     of the push runner); a provider may keep connections, tokens and
//     pools between calls, but no push: a push that could not be sent is
//     answered kRetry and waits in the durable job queue, not in memory.
//   - Every request has a deadline (the options' timeout_ms); a timeout, a
//     refused or broken connection, 429 and 5xx are kRetry; the provider's
//     "token gone" answer is kTokenGone; other 4xx are kRejected.
//   - Thread-safe: Send may be called from any thread, also while earlier
//     calls are in flight. The destructor cancels what is in flight
//     (answering it kRetry) and must run on a thread other than the io
//     thread, after which `done` is no longer called.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mpim::service::push {

// A registered device (store::Device, as the provider needs it).
struct Device {
  int64_t device_id = 0;
  int64_t user_id = 0;
  std::string platform;  // "apns" | "fcm" | "webhook"
  std::string token;     // the platform's device token (1-4096 bytes)
};

// protocol.md section 4: {conv_id, seq, msg_id, from, preview?, badge}.
struct Notification {
  std::string conv_id;
  int64_t seq = 0;
  int64_t msg_id = 0;
  int64_t from = 0;                    // the sender's user id
  std::optional<std::string> preview;  // absent with push.preview = false
  int64_t badge = 0;                   // the member's total unread count
};

struct Push {
  std::string delivery_id;  // the same on every retry of one push
  Device device;
  Notification notification;
};

enum class Outcome {
  kDelivered,  // 2xx
  kTokenGone,  // webhook 410, APNs 410 Unregistered, FCM 404 UNREGISTERED
  kRetry,      // 429, 5xx, timeout, connection error: back-off, then again
  kRejected,   // any other 4xx: a dead letter at once
};

struct Result {
  Outcome outcome = Outcome::kRetry;
  // For logs and last_error: "HTTP 429", "410 Unregistered",
  // "connect: connection refused", ... Never the token or a credential.
  std::string detail;
  int64_t retry_after_ms = 0;  // the provider's Retry-After, 0 if none
  double seconds = 0;          // request sent -> answer (0 if never sent)
};

using SendDone = std::function<void(std::vector<Result>)>;

class Provider {
 public:
  virtual ~Provider() = default;
  // "webhook", "apns" or "fcm": the platform it serves and its metrics label.
  virtual std::string_view name() const = 0;
  virtual void Send(std::vector<Push> pushes, SendDone done) = 0;
};

const char* OutcomeName(Outcome outcome);  // "delivered", "token_gone", "retry", "rejected"

}  // namespace mpim::service::push
