// A server-wide cap on WebSockets that have not authenticated yet
// (gateway.max_unauthenticated): sockets that came without a token on the
// upgrade and must send an `auth` frame. Each holds a Slot from its upgrade
// until that frame succeeds or the socket closes; a socket refused a slot is
// closed with 1013 (try again later) right after its handshake. A token on
// the upgrade is checked as the socket opens (accepted or closed with 4001
// at once), so such sockets take no slot.
//
// Thread-safe: one atomic counter. The cap outlives every Slot (the wiring
// owns it).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/metrics.h"

namespace mpim::gateway {

class UnauthenticatedCap {
 public:
  // A place under the cap; empty when none was free. Move-only; gives the
  // place back when released or destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept : cap_(other.cap_) { other.cap_ = nullptr; }
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }

    explicit operator bool() const { return cap_ != nullptr; }
    void Release();

   private:
    friend class UnauthenticatedCap;
    explicit Slot(UnauthenticatedCap* cap) : cap_(cap) {}
    UnauthenticatedCap* cap_ = nullptr;
  };

  // `max` 0: no limit (slots are still counted, for the gauge).
  explicit UnauthenticatedCap(int64_t max,
                              core::MetricsRegistry& metrics = core::DefaultRegistry());

  Slot TryAcquire();
  int64_t count() const { return count_.load(std::memory_order_relaxed); }

 private:
  const int64_t max_;
  std::atomic<int64_t> count_{0};
  core::Gauge& gauge_;
};

}  // namespace mpim::gateway
