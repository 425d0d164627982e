#include "service/push/registry.h"

#include <pthread.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "core/secret_file.h"
#include "service/push/apns_provider.h"
#include "service/push/fcm_provider.h"
#include "service/push/webhook_provider.h"

namespace mpim::service::push {

std::set<std::string> ConfiguredPlatforms(const core::PushConfig& config) {
  std::set<std::string> out;
  if (!config.webhook_url.empty()) out.insert("webhook");
  if (!config.apns_key_file.empty()) out.insert("apns");
  if (!config.fcm_credentials_file.empty()) out.insert("fcm");
  return out;
}

Providers::Providers() : io_(std::make_unique<boost::asio::io_context>(1)) {}

core::StatusOr<std::unique_ptr<Providers>> Providers::Open(const core::PushConfig& config) {
  std::unique_ptr<Providers> p(new Providers());
  if (!config.webhook_url.empty()) {
    auto webhook = MakeWebhookProvider({.url = config.webhook_url,
                                        .secret = config.webhook_secret,
                                        .timeout_ms = config.timeout_ms,
                                        .tls_ca_file = config.tls_ca_file},
                                       *p->io_);
    if (!webhook.ok())
      return absl::InvalidArgumentError("push.webhook_url: " +
                                        std::string(webhook.status().message()));
    p->by_platform_["webhook"] = std::move(*webhook);
  }
  if (!config.apns_key_file.empty()) {
    auto key = core::ReadSecretFile(config.apns_key_file, "push.apns_key_file");
    if (!key.ok()) return key.status();
    auto apns = MakeApnsProvider({.url = config.apns_url,
                                  .key_pem = std::move(*key),
                                  .key_id = config.apns_key_id,
                                  .team_id = config.apns_team_id,
                                  .topic = config.apns_topic,
                                  .timeout_ms = config.timeout_ms,
                                  .tls_ca_file = config.tls_ca_file},
                                 *p->io_);
    if (!apns.ok()) {
      return absl::InvalidArgumentError("push.apns_*: " + std::string(apns.status().message()));
    }
    p->by_platform_["apns"] = std::move(*apns);
  }
  if (!config.fcm_credentials_file.empty()) {
    auto credentials =
        core::ReadSecretFile(config.fcm_credentials_file, "push.fcm_credentials_file");
    if (!credentials.ok()) return credentials.status();
    auto fcm = MakeFcmProvider({.url = config.fcm_url,
                                .credentials_json = std::move(*credentials),
                                .timeout_ms = config.timeout_ms,
                                .tls_ca_file = config.tls_ca_file},
                               *p->io_);
    if (!fcm.ok()) {
      return absl::InvalidArgumentError("push.fcm_credentials_file: " +
                                        std::string(fcm.status().message()));
    }
    p->by_platform_["fcm"] = std::move(*fcm);
  }
  if (!p->by_platform_.empty()) {
    boost::asio::io_context* io = p->io_.get();
    p->thread_ = std::thread([io] {
      pthread_setname_np(pthread_self(), "push-io");
      auto work = boost::asio::make_work_guard(*io);
      io->run();
    });
  }
  return p;
}

Providers::~Providers() {
  // Providers cancel what is in flight on the io thread, which still runs.
  by_platform_.clear();
  io_->stop();
  if (thread_.joinable()) thread_.join();
}

Provider* Providers::For(const std::string& platform) const {
  auto it = by_platform_.find(platform);
  return it == by_platform_.end() ? nullptr : it->second.get();
}

std::set<std::string> Providers::platforms() const {
  std::set<std::string> out;
  for (const auto& [name, provider] : by_platform_) out.insert(name);
  return out;
}

}  // namespace mpim::service::push
