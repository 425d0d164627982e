// The push providers a process runs, made by name from `[push]`
// (docs/push.md): webhook when push.webhook_url is set, apns when
// push.apns_key_file is, fcm when push.fcm_credentials_file is. They share
// one io thread, owned here.
//
// Adding a provider, in 3 steps: implement push::Provider
// (service/push/provider.h) in service/push/<name>_provider.{h,cc}; make it
// here from its config keys (core/config.h PushConfig, config.cc schema);
// test it against a local server speaking its wire protocol
// (tests/service/push/).
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "core/config.h"
#include "core/status.h"
#include "service/push/provider.h"

namespace boost::asio {
class io_context;
}

namespace mpim::service::push {

class Providers {
 public:
  // kInvalidArgument for a bad key or credentials file (unreadable, readable
  // by group or others, not a key), naming the config key.
  static core::StatusOr<std::unique_ptr<Providers>> Open(const core::PushConfig& config);
  ~Providers();

  // Null when that platform's provider is not configured.
  Provider* For(const std::string& platform) const;
  std::set<std::string> platforms() const;

 private:
  Providers();
  std::unique_ptr<boost::asio::io_context> io_;
  std::map<std::string, std::unique_ptr<Provider>> by_platform_;
  std::thread thread_;
};

// The platforms whose provider `config` turns on (without opening them).
std::set<std::string> ConfiguredPlatforms(const core::PushConfig& config);

}  // namespace mpim::service::push
