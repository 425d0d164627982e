// The configuration centre: settings changed at run time through etcd
// (discovery.engine = "etcd"), for every node of the cluster at once.
//
// A setting lives at `<discovery.etcd_prefix>config/<section>.<key>` with
// its value as text, as `--set` takes it (`mpim config set` writes it). A
// node's configuration is its own (defaults < file < environment < flags,
// read at start) with every such value on top. Only the keys of
// core::LiveKeys() may be set this way; any other key, or a value that does
// not validate (alone, or with the rest of the configuration), is refused:
// logged, and the value the node had stays. Deleting a key returns the
// node's own value. A node applies a change as soon as etcd's watch brings
// it (a few milliseconds), and reads everything again after losing etcd.
//
// Threading: one thread of its own watches; `on_change` runs on it, one
// call at a time, and must not block for long. Current() from any thread.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "core/config.h"
#include "core/status.h"
#include "discovery/etcd_client.h"

namespace mpim::discovery {

class ConfigCentre {
 public:
  using Listener = std::function<void(const core::Config& now)>;

  // Reads the settings once (blocking, up to discovery.etcd_timeout_ms; an
  // etcd that does not answer leaves the node's own values), then watches.
  // `base`: the node's own configuration. failed_precondition when
  // discovery.engine is not etcd.
  static core::StatusOr<std::unique_ptr<ConfigCentre>> Start(const core::Config& base,
                                                             Listener on_change);
  ~ConfigCentre();  // Stop()

  ConfigCentre(const ConfigCentre&) = delete;
  ConfigCentre& operator=(const ConfigCentre&) = delete;

  core::Config Current() const;
  void Stop();

  // The operator's side (`mpim config set|unset|show`), against the etcd of
  // `base`: Set validates the value on top of `base` first (and refuses a
  // key that cannot change at run time); Overlay is `base` with every
  // setting in etcd that applies.
  static core::Status Set(const core::Config& base, const std::string& name,
                          const std::string& value);
  static core::Status Unset(const core::Config& base, const std::string& name);
  static core::StatusOr<core::Config> Overlay(const core::Config& base);

 private:
  ConfigCentre(const core::Config& base, Listener on_change);

  // `base_` with `settings` on top, refusing (and logging, once per value)
  // what does not apply.
  core::Config Compose(const std::map<std::string, std::string>& settings);
  void Apply(const std::map<std::string, std::string>& settings);
  void WatchLoop();
  bool Sleep(int64_t ms);  // false when stopping

  const core::Config base_;
  const std::string prefix_;  // <etcd_prefix>config/
  Listener on_change_;
  EtcdClient etcd_;

  mutable std::mutex mu_;  // guards current_, stopping_, watch_
  std::condition_variable cv_;
  core::Config current_;
  bool stopping_ = false;
  EtcdWatch* watch_ = nullptr;
  std::map<std::string, std::string> refused_;  // watch thread only: logged once each
  std::thread thread_;
};

}  // namespace mpim::discovery
