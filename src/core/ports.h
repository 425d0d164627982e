// Loopback ports for the programs that start servers (`mpim cluster up`,
// mpim-bench, the e2e tests).
#pragma once

#include <cstdint>

namespace mpim::core {

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0); 0
// if none could be had.
uint16_t FreeLoopbackPort();

// Whether 127.0.0.1:`port` can be bound now (SO_REUSEADDR, as servers bind).
bool LoopbackPortFree(uint16_t port);

}  // namespace mpim::core
