#include "discovery/config_centre.h"

#include <condition_variable>

#include "core/logging.h"

namespace mpim::discovery {
namespace {

const core::Logger& Log() {
  static const core::Logger log("config");
  return log;
}

constexpr const char* kOrigin = "etcd";

std::string Prefix(const core::Config& config) { return config.discovery.etcd_prefix + "config/"; }

EtcdOptions EtcdOf(const core::Config& config) {
  return {config.discovery.etcd_endpoints, config.discovery.etcd_timeout_ms};
}

core::Status NeedsEtcd(const core::Config& config) {
  if (config.discovery.engine != "etcd") {
    return absl::FailedPreconditionError(
        "the configuration centre is etcd: set discovery.engine = \"etcd\" and "
        "discovery.etcd_endpoints");
  }
  return absl::OkStatus();
}

// The settings under `prefix` by key name.
std::map<std::string, std::string> Settings(const EtcdRange& range, const std::string& prefix) {
  std::map<std::string, std::string> out;
  for (const EtcdKeyValue& kv : range.kvs) out[kv.key.substr(prefix.size())] = kv.value;
  return out;
}

// `base` with each setting that applies; `refused(name, value, why)` for
// the others.
core::Config Compose(const core::Config& base, const std::map<std::string, std::string>& settings,
                     const std::function<void(const std::string&, const std::string&,
                                              const core::Status&)>& refused) {
  core::Config config = base;
  for (const auto& [name, value] : settings) {
    auto next = core::WithValue(config, name, value, kOrigin);
    if (!next.ok()) {
      if (refused) refused(name, value, next.status());
      continue;
    }
    config = std::move(*next);
  }
  return config;
}

}  // namespace

ConfigCentre::ConfigCentre(const core::Config& base, Listener on_change)
    : base_(base),
      prefix_(Prefix(base)),
      on_change_(std::move(on_change)),
      etcd_(EtcdOf(base)),
      current_(base) {}

ConfigCentre::~ConfigCentre() { Stop(); }

core::StatusOr<std::unique_ptr<ConfigCentre>> ConfigCentre::Start(const core::Config& base,
                                                                  Listener on_change) {
  if (core::Status s = NeedsEtcd(base); !s.ok()) return s;
  std::unique_ptr<ConfigCentre> centre(new ConfigCentre(base, std::move(on_change)));
  // The first read before the node serves, so that it starts with the
  // cluster's settings; without etcd it starts with its own.
  if (auto range = centre->etcd_.GetPrefix(centre->prefix_); range.ok()) {
    centre->Apply(Settings(*range, centre->prefix_));
  } else {
    Log().Warn("settings not read from etcd; the node's own values apply until it answers",
               {{"error", std::string(range.status().message())}});
  }
  ConfigCentre* self = centre.get();
  centre->thread_ = std::thread([self] { self->WatchLoop(); });
  return centre;
}

core::Config ConfigCentre::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

core::Config ConfigCentre::Compose(const std::map<std::string, std::string>& settings) {
  std::map<std::string, std::string> refused_now;
  core::Config config = discovery::Compose(
      base_, settings,
      [&](const std::string& name, const std::string& value, const core::Status& why) {
        refused_now[name] = value;
        auto before = refused_.find(name);
        if (before != refused_.end() && before->second == value) return;  // logged already
        Log().Warn("setting refused; the node keeps its value",
                   {{"key", name}, {"value", value}, {"error", std::string(why.message())}});
      });
  refused_ = std::move(refused_now);
  return config;
}

void ConfigCentre::Apply(const std::map<std::string, std::string>& settings) {
  core::Config next = Compose(settings);
  {
    std::lock_guard lock(mu_);
    if (next.origins == current_.origins && core::ShowConfig(next) == core::ShowConfig(current_)) {
      return;  // nothing changed
    }
    current_ = next;
  }
  for (const auto& [name, origin] : next.origins) {
    if (origin == kOrigin) Log().Info("setting applied", {{"key", name}});
  }
  if (on_change_) on_change_(next);
}

bool ConfigCentre::Sleep(int64_t ms) {
  std::unique_lock lock(mu_);
  return !cv_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void ConfigCentre::WatchLoop() {
  int64_t backoff_ms = 100;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    auto range = etcd_.GetPrefix(prefix_);
    if (!range.ok()) {
      if (!Sleep(backoff_ms)) return;
      backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
      continue;
    }
    std::map<std::string, std::string> settings = Settings(*range, prefix_);
    Apply(settings);
    auto watch = etcd_.WatchPrefix(prefix_, range->revision + 1);
    if (!watch.ok()) {
      if (!Sleep(backoff_ms)) return;
      continue;
    }
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      watch_ = watch->get();
    }
    for (;;) {
      auto events = (*watch)->Next();
      if (!events.ok()) break;
      backoff_ms = 100;
      for (const EtcdEvent& e : *events) {
        const std::string name = e.kv.key.substr(prefix_.size());
        if (e.deleted) {
          settings.erase(name);
        } else {
          settings[name] = e.kv.value;
        }
      }
      Apply(settings);
    }
    {
      std::lock_guard lock(mu_);
      watch_ = nullptr;
      if (stopping_) return;
    }
    if (!Sleep(backoff_ms)) return;
    backoff_ms = std::min<int64_t>(backoff_ms * 2, 1000);
  }
}

void ConfigCentre::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    if (watch_) watch_->Cancel();
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

core::Status ConfigCentre::Set(const core::Config& base, const std::string& name,
                               const std::string& value) {
  if (core::Status s = NeedsEtcd(base); !s.ok()) return s;
  // Checked on top of what etcd holds now, as the nodes will apply it.
  auto now = Overlay(base);
  if (!now.ok()) return now.status();
  if (auto next = core::WithValue(*now, name, value, kOrigin); !next.ok()) return next.status();
  EtcdClient etcd(EtcdOf(base));
  return etcd.Put(Prefix(base) + name, value);
}

core::Status ConfigCentre::Unset(const core::Config& base, const std::string& name) {
  if (core::Status s = NeedsEtcd(base); !s.ok()) return s;
  EtcdClient etcd(EtcdOf(base));
  return etcd.Delete(Prefix(base) + name);
}

core::StatusOr<core::Config> ConfigCentre::Overlay(const core::Config& base) {
  if (core::Status s = NeedsEtcd(base); !s.ok()) return s;
  EtcdClient etcd(EtcdOf(base));
  auto range = etcd.GetPrefix(Prefix(base));
  if (!range.ok()) return range.status();
  return discovery::Compose(base, Settings(*range, Prefix(base)), nullptr);
}

}  // namespace mpim::discovery
