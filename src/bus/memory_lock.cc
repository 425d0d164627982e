#include "bus/memory_lock.h"

namespace mpim::bus {

using SteadyClock = std::chrono::steady_clock;

MemoryLock::MemoryLock() = default;

MemoryLock::~MemoryLock() { callbacks_.Shutdown(); }

bool MemoryLock::Held(Entry& e) {
  if (e.holder != 0 && SteadyClock::now() >= e.until) e.holder = 0;
  return e.holder != 0;
}

void MemoryLock::TryAcquire(std::string name, std::chrono::milliseconds ttl,
                            core::Callback<std::optional<uint64_t>> done) {
  std::optional<uint64_t> token;
  {
    std::lock_guard lock(mu_);
    Entry& e = names_[name];
    if (!Held(e)) {
      e.holder = ++e.last_token;
      e.until = SteadyClock::now() + ttl;
      token = e.holder;
    }
  }
  callbacks_.Submit([token, done = std::move(done)]() mutable { std::move(done)(token); });
}

void MemoryLock::Renew(std::string name, uint64_t token, std::chrono::milliseconds ttl,
                       core::Callback<bool> done) {
  bool renewed = false;
  {
    std::lock_guard lock(mu_);
    auto it = names_.find(name);
    if (it != names_.end() && Held(it->second) && it->second.holder == token) {
      it->second.until = SteadyClock::now() + ttl;
      renewed = true;
    }
  }
  callbacks_.Submit([renewed, done = std::move(done)]() mutable { std::move(done)(renewed); });
}

void MemoryLock::Release(std::string name, uint64_t token, core::DoneCallback done) {
  {
    std::lock_guard lock(mu_);
    auto it = names_.find(name);
    if (it != names_.end() && it->second.holder == token) it->second.holder = 0;
  }
  callbacks_.Submit([done = std::move(done)]() mutable { std::move(done)(absl::OkStatus()); });
}

}  // namespace mpim::bus
