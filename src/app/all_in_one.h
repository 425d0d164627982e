// Wiring of the `all` role: every service in one process, connected by
// direct calls, on the engines the configuration names (store, cache, route
// table and presence, deliverer: each chosen by name through its registry). Owns what it builds; Stop() (or the
// destructor) releases it after the listener has drained.
#pragma once

#include <memory>

#include "core/callback.h"
#include "core/config.h"
#include "core/status.h"
#include "net/router.h"
#include "net/websocket.h"
#include <string>
#include <vector>

namespace mpim::app {

// The deliverer engine names (bus.engine) the wiring knows.
std::vector<std::string> DelivererEngines();

class AllInOne {
 public:
  // Opens the store (applying migrations), loads keys and caches. Blocks;
  // call from the main thread before serving.
  static core::StatusOr<std::unique_ptr<AllInOne>> Start(const core::Config& config);
  ~AllInOne();

  // Registers the client API on `router`.
  void AddRoutes(net::Router& router);
  // Takes WebSocket upgrades on /ws (for HttpServerOptions::on_websocket).
  net::WsAcceptFn WebSocketAcceptor();
  // OK when the store answers (for /readyz); may complete on any thread.
  void CheckReady(core::DoneCallback done);
  // Stops the pools and closes the store. Idempotent.
  void Stop();

 private:
  struct Parts;
  explicit AllInOne(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace mpim::app
