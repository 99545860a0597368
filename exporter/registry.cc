#include "exporter/registry.h"

#include <linux/capability.h>

#include "collectors/bind_events/bind_events_collector.h"
#include "collectors/kernel_limits/kernel_limits_collector.h"
#include "collectors/netstat/netstat_collector.h"
#include "collectors/services/services_collector.h"
#include "collectors/sockets/sockets_collector.h"

namespace portwatch {

namespace {

/// CAP_BPF and CAP_PERFMON (loading tracing programs), each with what is lost without them.
void AddEbpfNeeds(const std::string& without, std::vector<CapabilityNeed>& needs) {
  needs.push_back({CAP_BPF, without});
  needs.push_back({CAP_PERFMON, without});
}

/// What is lost without the BPF socket iterators, when the config may use them (the sockets and
/// services collectors share one loaded copy); empty when it reads through sock_diag anyway.
std::string WithoutSocketIterators(const Config& config) {
  if (config.sockets.backend == SocketBackendSetting::kNetlink) {
    return "";
  }
  return "the BPF socket iterators cannot be loaded: sockets are read through sock_diag, which "
         "does not report SO_REUSEADDR (TIME_WAIT left by a listener portwatch never saw reads "
         "unknown)";
}

}  // namespace

const std::vector<CollectorSpec>& KnownCollectors() {
  static const std::vector<CollectorSpec> kCollectors = {
      {"sockets", "TCP/UDP sockets per protocol, family, state and port (netlink sock_diag)", true,
       [](const YAML::Node& section, const std::string& path, Config& config) {
         config.sockets = ParseSocketsConfig(section, path);
       },
       [](const Config&, const SharedKernelViews& shared) -> std::unique_ptr<Collector> {
         return std::make_unique<SocketsCollector>(ProcFs(), KernelTransportFactory(), shared.pods,
                                                   shared.dumps, shared.sources);
       },
       [](const Config& config) {
         std::vector<CapabilityNeed> needs;
         if (CountsPodsOnThisNode(config.sockets)) {
           needs = {{CAP_SYS_ADMIN,
                     "pods' network namespaces cannot be entered (setns): their "
                     "sockets are not counted",
                     /*raised_on_use=*/true},
                    {CAP_SYS_PTRACE,
                     "other users' /proc/<pid>/ns/net cannot be opened: those "
                     "pods' sockets are not counted"}};
         }
         if (const std::string without = WithoutSocketIterators(config); !without.empty()) {
           AddEbpfNeeds(without, needs);
         }
         return needs;
       }},
      {"services",
       "configured services' port ownership, conflicts and bind prediction; listening sockets "
       "and their processes (sock_diag + /proc)",
       true,
       [](const YAML::Node& section, const std::string& path, Config& config) {
         config.services_options = ParseServicesOptions(section, path);
       },
       [](const Config&, const SharedKernelViews& shared) -> std::unique_ptr<Collector> {
         return std::make_unique<ServicesCollector>(ProcFs(), KernelTransportFactory(),
                                                    std::make_shared<SharedPods>(shared.pods),
                                                    shared.dumps, shared.sources);
       },
       [](const Config& config) {
         std::vector<CapabilityNeed> needs = {
             {CAP_DAC_READ_SEARCH,
              "other users' /proc/<pid>/fd cannot be listed: their listeners show "
              "process=\"unknown\" and are counted in portwatch_process_scan_skipped_total"},
             {CAP_SYS_PTRACE,
              "other users' socket links and network namespaces cannot be read and their sockets "
              "not duplicated: process=\"unknown\", and SO_REUSEADDR predictions read unknown"}};
         if (CountsPodsOnThisNode(config.sockets)) {
           needs.push_back({CAP_SYS_ADMIN,
                            "pods' network namespaces cannot be entered (setns): their "
                            "listeners and the services scoped to pods are not read",
                            /*raised_on_use=*/true});
         }
         // The socket owner walk (iter/task_file) loads when the collector is built, whatever
         // reads the sockets: without it the first scrape reads every /proc/<pid>/fd.
         std::string without_ebpf =
             "the socket owner iterator cannot be loaded: the processes holding the services' "
             "sockets are found by reading every /proc/<pid>/fd (a slower first scrape)";
         if (const std::string without = WithoutSocketIterators(config); !without.empty()) {
           without_ebpf = without + "; " + without_ebpf;
         }
         AddEbpfNeeds(without_ebpf, needs);
         return needs;
       }},
      {"kernel_limits",
       "tcp_max_tw_buckets and the ephemeral port range (/proc/sys): the node's and each pod's",
       true, nullptr,
       [](const Config&, const SharedKernelViews& shared) -> std::unique_ptr<Collector> {
         return std::make_unique<KernelLimitsCollector>(ProcFs(), shared.pods);
       },
       nullptr},
      {"netstat", "TcpExt TIME_WAIT and listen queue counters (/proc/net/netstat)", true, nullptr,
       [](const Config&, const SharedKernelViews&) -> std::unique_ptr<Collector> {
         return std::make_unique<NetstatCollector>(ProcFs());
       },
       nullptr},
      {"bind_events",
       "failed bind/listen (EADDRINUSE, EADDRNOTAVAIL, EACCES) and connect (EADDRNOTAVAIL) calls, "
       "counted by eBPF; needs CAP_BPF and CAP_PERFMON",
       true,
       [](const YAML::Node& section, const std::string& path, Config& config) {
         config.bind_events = ParseBindEventsConfig(section, path);
       },
       [](const Config& config, const SharedKernelViews& shared) -> std::unique_ptr<Collector> {
         auto collector = std::make_unique<BindEventsCollector>(
             ProcFs(), KernelTransportFactory(), OpenKernelBindEventSource, config.bind_events,
             OwnNetworkNamespace(), nullptr, PodLookupFrom(shared.pods),
             PodTablesFrom(shared.pods));
         collector->ShowCommandLines(config.privacy.command_lines);
         collector->LookForPods(config.sockets);
         return collector;
       },
       [](const Config&) {
         return std::vector<CapabilityNeed>{
             {CAP_BPF,
              "the eBPF program cannot be loaded: failed bind/listen/connect calls are "
              "not counted (portwatch_bind_events_available 0)"},
             {CAP_PERFMON,
              "the tracing program cannot be loaded or attached: failed "
              "bind/listen/connect calls are not counted"}};
       }},
  };
  return kCollectors;
}

std::vector<std::unique_ptr<Collector>> BuildCollectors(const std::set<std::string>& enabled,
                                                        const Config& config) {
  std::vector<std::unique_ptr<Collector>> collectors;
  const SharedKernelViews shared{
      std::make_shared<PodNamespaces>(ProcFs()), std::make_shared<KeptDumps>(),
      std::make_shared<SocketSources>(KernelTransportFactory(), SocketIterators::Load)};
  if (enabled.count("sockets") != 0 || enabled.count("services") != 0) {
    shared.sources->Preload(config.sockets.backend);
  }
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (enabled.count(spec.name) != 0) {
      collectors.push_back(spec.make(config, shared));
    }
  }
  return collectors;
}

std::vector<CollectorNeeds> CollectorCapabilityNeeds(const std::set<std::string>& enabled,
                                                     const Config& config) {
  std::vector<CollectorNeeds> needs;
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (enabled.count(spec.name) != 0 && spec.capabilities != nullptr) {
      needs.push_back({spec.name, spec.capabilities(config)});
    }
  }
  return needs;
}

}  // namespace portwatch
