#include "exporter/registry.h"

#include "collectors/bind_events_collector.h"
#include "collectors/kernel_limits_collector.h"
#include "collectors/netstat_collector.h"
#include "collectors/services_collector.h"
#include "collectors/sockets_collector.h"

namespace portwatch {

const std::vector<CollectorSpec>& KnownCollectors() {
  static const std::vector<CollectorSpec> kCollectors = {
      {"sockets", "TCP/UDP sockets per protocol, family, state and port (netlink sock_diag)", true},
      {"services",
       "configured services' port ownership, conflicts and bind prediction; listening sockets "
       "and their processes (sock_diag + /proc)",
       true},
      {"kernel_limits", "tcp_max_tw_buckets and the ephemeral port range (/proc/sys)", true},
      {"netstat", "TcpExt TIME_WAIT and listen queue counters (/proc/net/netstat)", true},
      {"bind_events",
       "failed bind/listen (EADDRINUSE, EADDRNOTAVAIL, EACCES) and connect (EADDRNOTAVAIL) calls, "
       "counted by eBPF; needs CAP_BPF and CAP_PERFMON",
       true},
  };
  return kCollectors;
}

std::vector<std::unique_ptr<Collector>> BuildCollectors(const std::set<std::string>& enabled,
                                                        const Config& config) {
  std::vector<std::unique_ptr<Collector>> collectors;
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (enabled.count(spec.name) == 0) {
      continue;
    }
    if (spec.name == "sockets") {
      collectors.push_back(std::make_unique<SocketsCollector>(ProcFs(), KernelTransportFactory()));
    } else if (spec.name == "services") {
      collectors.push_back(std::make_unique<ServicesCollector>(ProcFs(), KernelTransportFactory()));
    } else if (spec.name == "kernel_limits") {
      collectors.push_back(std::make_unique<KernelLimitsCollector>(ProcFs()));
    } else if (spec.name == "netstat") {
      collectors.push_back(std::make_unique<NetstatCollector>(ProcFs()));
    } else if (spec.name == "bind_events") {
      collectors.push_back(std::make_unique<BindEventsCollector>(
          ProcFs(), KernelTransportFactory(), OpenKernelBindEventSource, config.bind_events,
          OwnNetworkNamespace()));
    }
  }
  return collectors;
}

}  // namespace portwatch
