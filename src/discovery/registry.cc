#include "discovery/registry.h"

#include "discovery/dns_discovery.h"
#include "discovery/etcd_discovery.h"
#include "discovery/static_discovery.h"

namespace mpim::discovery {

std::vector<std::string> DiscoveryEngines() { return {"static", "etcd", "dns"}; }

core::StatusOr<std::unique_ptr<Discovery>> OpenDiscovery(const core::DiscoveryConfig& config) {
  if (config.engine == "static") {
    return std::unique_ptr<Discovery>(std::make_unique<StaticDiscovery>(config.static_nodes));
  }
  if (config.engine == "etcd") {
    EtcdDiscoveryOptions options;
    options.etcd.endpoints = config.etcd_endpoints;
    options.etcd.timeout_ms = config.etcd_timeout_ms;
    options.prefix = config.etcd_prefix;
    options.lease_ttl_s = config.lease_ttl_s;
    return std::unique_ptr<Discovery>(std::make_unique<EtcdDiscovery>(std::move(options)));
  }
  if (config.engine == "dns") {
    DnsDiscoveryOptions options;
    options.srv = config.dns_srv;
    options.servers = config.dns_servers;
    options.refresh_ms = config.dns_refresh_ms;
    return std::unique_ptr<Discovery>(std::make_unique<DnsDiscovery>(std::move(options)));
  }
  return absl::InvalidArgumentError("discovery.engine: unknown engine \"" + config.engine + "\"");
}

}  // namespace mpim::discovery
