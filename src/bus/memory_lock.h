// bus::Lock in this process's memory (bus.engine = "memory": one node).
// Leases expire by the steady clock; tokens count up per name from 1.
// Callbacks run on a thread of the lock, as the interface says.
#pragma once

#include <map>
#include <mutex>

#include "core/worker_pool.h"
#include "bus/lock.h"

namespace mpim::bus {

class MemoryLock final : public Lock {
 public:
  MemoryLock();
  ~MemoryLock() override;

  void TryAcquire(std::string name, std::chrono::milliseconds ttl,
                  core::Callback<std::optional<uint64_t>> done) override;
  void Renew(std::string name, uint64_t token, std::chrono::milliseconds ttl,
             core::Callback<bool> done) override;
  void Release(std::string name, uint64_t token, core::DoneCallback done) override;

 private:
  struct Entry {
    uint64_t last_token = 0;
    uint64_t holder = 0;  // 0: free
    std::chrono::steady_clock::time_point until;
  };
  // Whether `e` is held now (an expired lease is dropped).
  static bool Held(Entry& e);

  std::mutex mu_;  // guards names_
  std::map<std::string, Entry> names_;
  core::WorkerPool callbacks_{"lock", 1};
};

}  // namespace mpim::bus
