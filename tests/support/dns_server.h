// A real DNS server for the tests of discovery engine dns: dnsmasq
// (Debian's dnsmasq-base) on a free 127.0.0.1 port, serving only the SRV
// and A records the test gives it (no upstream, no /etc/hosts; any other
// name under `.test` is NXDOMAIN). Records change by Start() again, which
// restarts it on the same port.
//
// Threads: one thread at a time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace mpim::testing {

class DnsServer {
 public:
  struct Srv {
    std::string name;    // _service._proto.domain
    std::string target;  // a host name with a Host record
    uint16_t port = 0;
    uint16_t weight = 1;
  };
  struct Host {
    std::string name;
    std::string ipv4;
  };

  DnsServer() = default;
  ~DnsServer();  // kills dnsmasq, removes its dir

  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // (Re)starts dnsmasq with exactly these records and waits until it
  // answers. False with error() on failure.
  bool Start(const std::vector<Srv>& srv, const std::vector<Host>& hosts);
  void Kill();
  bool running() const { return pid_ > 0; }
  // 127.0.0.1:PORT, for discovery.dns_servers.
  std::string Endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }

 private:
  std::filesystem::path dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::string error_;
};

}  // namespace mpim::testing
