#include "collectors/services/services_collector.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"
#include "collectors/netlink/transport.h"
#include "collectors/pods/pod_identity.h"
#include "collectors/procfs/socket_fd_iterator.h"

namespace portwatch {

namespace {

using netlink::DumpOutcome;
using netlink::Family;
using netlink::Protocol;

/// Every configured service's port, whatever its protocol: the sockets whose inodes (and so
/// processes) the services collector needs.
std::bitset<65536> ServicePorts(const std::vector<ServiceConfig>& services) {
  std::bitset<65536> ports;
  for (const ServiceConfig& service : services) {
    ports.set(service.port);
  }
  return ports;
}

}  // namespace

std::optional<bool> ReadReuseAddress(pid_t pid, int fd, uint32_t inode) {
  netlink::UniqueFd process(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!process.Valid()) {
    return std::nullopt;
  }
  netlink::UniqueFd socket(static_cast<int>(::syscall(SYS_pidfd_getfd, process.Get(), fd, 0)));
  struct stat status {};
  if (!socket.Valid() || ::fstat(socket.Get(), &status) != 0 || status.st_ino != inode) {
    return std::nullopt;
  }
  int value = 0;
  socklen_t length = sizeof(value);
  if (::getsockopt(socket.Get(), SOL_SOCKET, SO_REUSEADDR, &value, &length) != 0) {
    return std::nullopt;
  }
  return value != 0;
}

ServiceScope ScopeOf(const PodNamespace& pod) {
  return ServiceScope{pod.inode, pod.uid, pod.namespace_name, pod.name};
}

ServicesCollector::ServicesCollector(const ProcFs& procfs, netlink::TransportFactory open_transport,
                                     std::shared_ptr<PodNetworks> pods,
                                     std::shared_ptr<KeptDumps> dumps,
                                     std::shared_ptr<SocketSources> sources)
    : procfs_(procfs),
      open_transport_(std::move(open_transport)),
      sources_(sources ? std::move(sources) : SocketSources::NetlinkOnly(open_transport_)),
      pods_(std::move(pods)),
      dumps_(std::move(dumps)),
      owner_cache_(procfs, KernelSocketFdFinder(procfs)) {}

Result<KernelFacts> ServicesCollector::NodeFacts() const {
  KernelFacts facts;
  std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_);
  if (!range) {
    return Failure{"cannot read net.ipv4.ip_local_port_range"};
  }
  facts.range = *range;
  auto reserved = std::make_shared<std::bitset<65536>>();
  for (uint16_t port : ReadReservedPorts(procfs_).value_or(std::vector<uint16_t>{})) {
    reserved->set(port);
  }
  facts.reserved = std::move(reserved);
  facts.bound_inactive_visible =
      KernelAtLeast(procfs_.ReadFile("sys/kernel/osrelease").value_or(""), 6, 10);
  return facts;
}

KernelFacts ServicesCollector::PodFacts(uint64_t inode, const KernelFacts& node) const {
  // The port range and reserved ports are per network namespace: the pod's own (a pod may set
  // them through securityContext.sysctls). The kernel is the node's.
  KernelFacts facts = node;
  facts.range = pods_->EphemeralRangeOf(inode).value_or(node.range);
  auto reserved = std::make_shared<std::bitset<65536>>();
  if (std::optional<std::string> text = pods_->ReservedPorts(inode)) {
    for (uint16_t port : ParsePortList(*text).value_or(std::vector<uint16_t>{})) {
      reserved->set(port);
    }
  }
  facts.reserved = std::move(reserved);
  return facts;
}

Result<std::unique_ptr<ServiceTable>> ServicesCollector::ReadNamespace(
    SocketSource& source, const netlink::RecordedDump* kept, const Plan& plan,
    const ServicesOptions& options, KernelFacts facts) {
  std::set<uint16_t> tcp_ports;
  std::set<uint16_t> udp_ports;
  for (const ServiceConfig& service : plan.services) {
    (service.protocol == ServiceProtocol::kTcp ? tcp_ports : udp_ports).insert(service.port);
  }

  std::vector<netlink::DumpRequest> requests;
  for (Family family : {Family::kIpv4, Family::kIpv6}) {
    if (plan.listeners || !tcp_ports.empty()) {
      requests.push_back({Protocol::kTcp, family, netlink::StateBit(netlink::kListen), {}});
    }
    if (!tcp_ports.empty()) {
      requests.push_back({Protocol::kTcp, family,
                          netlink::kAllStates & ~netlink::StateBit(netlink::kListen),
                          std::vector<uint16_t>(tcp_ports.begin(), tcp_ports.end())});
    }
    if (plan.listeners) {
      requests.push_back({Protocol::kUdp, family, netlink::kAllStates, {}});
    } else if (!udp_ports.empty()) {
      requests.push_back({Protocol::kUdp, family, netlink::kAllStates,
                          std::vector<uint16_t>(udp_ports.begin(), udp_ports.end())});
    }
  }

  ServicesOptions table_options = options;
  table_options.listener_info = plan.listeners;
  auto table =
      std::make_unique<ServiceTable>(plan.services, table_options, std::move(facts), plan.scope);
  const auto add = [&table](Protocol protocol) {
    return
        [&table, protocol](const netlink::SocketRecord& record) { table->Add(protocol, record); };
  };
  auto dump = [this, &source, &add](const netlink::DumpRequest& request) -> Status {
    ++requests_dumped_;
    netlink::DumpResult result = source.Walk(request, add(request.protocol));
    if (result.outcome == DumpOutcome::kFailed || result.outcome == DumpOutcome::kInterrupted) {
      return Failure{result.TableError(request)};
    }
    return {};
  };
  // A source that filters in user space walks the whole table for any request: one walk of
  // every socket of the protocol, both families, from which the table keeps what the requests
  // would return; unless the sockets collector's recording answers them all.
  std::set<Protocol> walk_whole;
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    const bool asked_and_not_kept =
        std::any_of(requests.begin(), requests.end(), [kept, protocol](const auto& request) {
          return request.protocol == protocol && (kept == nullptr || !kept->Covers(request));
        });
    if (asked_and_not_kept && !source.FiltersInKernel(protocol)) {
      walk_whole.insert(protocol);
    }
  }
  std::set<Protocol> walked;
  for (const netlink::DumpRequest& request : requests) {
    Status status;
    if (walk_whole.count(request.protocol) != 0) {
      if (walked.insert(request.protocol).second) {
        status = dump({request.protocol, Family::kIpv4, netlink::kAllStates, {}, true});
      }
    } else if (kept != nullptr && kept->Covers(request)) {
      kept->Replay(request, add(request.protocol));
      ++requests_replayed_;
    } else {
      status = dump(request);
    }
    if (!status) {
      return Failure{status.Error()};
    }
  }
  // A port that looks free may still hold a bound-inactive socket; only then is the kernel's
  // bind hash walked, and only for those ports.
  if (std::vector<uint16_t> ports = table->PortsThatLookFree(); !ports.empty()) {
    for (Family family : {Family::kIpv4, Family::kIpv6}) {
      if (Status status = dump({Protocol::kTcp, family, netlink::kBoundInactiveStates, ports});
          !status) {
        return Failure{status.Error()};
      }
    }
  }
  return table;
}

Result<ServicesCollector::Scanned> ServicesCollector::Scan(const std::vector<Plan>& plans,
                                                           const Config& config,
                                                           bool skip_unreadable_pods) {
  Result<KernelFacts> node_facts = NodeFacts();
  if (!node_facts) {
    return Failure{node_facts.Error()};
  }
  Scanned scanned;
  for (const Plan& plan : plans) {
    const bool in_pod = plan.scope.InPod();
    if (in_pod && pods_ == nullptr) {
      return Failure{"no access to pods"};
    }
    const uint64_t netns = plan.scope.netns;
    // A pod's TCP listeners alone (no TCP service in it) cost sock_diag the listening hash only,
    // where an iterator walks the established hash too: the node's whole one when the pod shares
    // it (measured: 100 such pods at 100k sockets, 1.3 s a scrape instead of 0.1 s). With a TCP
    // service the established hash is walked either way, and the iterator gives the flags.
    const bool tcp_services = std::any_of(
        plan.services.begin(), plan.services.end(),
        [](const ServiceConfig& service) { return service.protocol == ServiceProtocol::kTcp; });
    const std::unique_ptr<SocketSource> source =
        in_pod ? sources_->OpenPod(
                     config.sockets.backend, ServicePorts(config.services),
                     [this, netns](const NamespaceWorker::Make& make) {
                       return pods_->CreateInside(netns, make);
                     },
                     [this, netns] { return pods_->Open(netns); }, {tcp_services, true})
               : sources_->Open(config.sockets.backend, ServicePorts(config.services));
    const std::shared_ptr<const netlink::RecordedDump> kept =
        dumps_ != nullptr ? dumps_->Find(in_pod ? plan.scope.netns : KeptDumps::kOwnNamespace)
                          : nullptr;
    Result<std::unique_ptr<ServiceTable>> table =
        ReadNamespace(*source, kept.get(), plan, config.services_options,
                      in_pod ? PodFacts(plan.scope.netns, *node_facts) : *node_facts);
    if (table) {
      scanned.tables.push_back(std::move(table).Value());
      continue;
    }
    if (!in_pod || !skip_unreadable_pods) {
      return Failure{in_pod ? "pod " + plan.scope.PodText() + ": " + table.Error() : table.Error()};
    }
    // Gone since the discovery, or not entered: the sockets collector counts those.
    spdlog::debug("{}", LogLine("services: cannot read a pod's sockets")
                            .Add("pod_uid", plan.scope.pod_uid)
                            .Add("err", table.Error())
                            .Text());
  }

  // One pass over /proc for every namespace: socket inodes are unique node-wide.
  std::unordered_set<uint32_t> inodes;
  bool identify_all = false;
  std::set<uint64_t> identify_netns;
  for (const std::unique_ptr<ServiceTable>& table : scanned.tables) {
    std::unordered_set<uint32_t> wanted = table->WantedInodes();
    inodes.insert(wanted.begin(), wanted.end());
    if (table->NeedsAllProcesses()) {
      identify_all = true;
      if (table->Scope().InPod()) {
        identify_netns.insert(table->Scope().netns);
      }
    }
  }
  scanned.owners =
      owner_cache_.Resolve(inodes, identify_all, std::chrono::steady_clock::now(), identify_netns);
  processes_skipped_total_ += scanned.owners.processes_skipped;
  return scanned;
}

ReuseLookup ServicesCollector::ReuseFromFds(const SocketOwners& owners) {
  return [&owners](uint32_t inode) -> std::optional<bool> {
    auto found = owners.first_fd.find(inode);
    if (found == owners.first_fd.end()) {
      return std::nullopt;
    }
    return ReadReuseAddress(found->second.first, found->second.second, inode);
  };
}

Result<ServicesCollector::Diagnosis> ServicesCollector::DiagnoseIn(const Plan& plan,
                                                                   const Config& config) {
  Result<Scanned> scanned = Scan({plan}, config, false);
  if (!scanned) {
    return Failure{scanned.Error()};
  }
  const ServiceTable& table = *scanned->tables.front();
  Diagnosis diagnosis;
  diagnosis.facts = table.Facts();
  diagnosis.reports = table.Reports(scanned->owners, ReuseFromFds(scanned->owners), memory_,
                                    std::chrono::steady_clock::now());
  return diagnosis;
}

Result<ServicesCollector::Diagnosis> ServicesCollector::Diagnose(const Config& config) {
  return DiagnoseIn(Plan{ServiceScope{}, config.services, false}, config);
}

Result<ServicesCollector::Diagnosis> ServicesCollector::Diagnose(const Config& config,
                                                                 const PodNamespace& pod) {
  if (!pod.entered) {
    return Failure{"pod " + ScopeOf(pod).PodText() +
                   ": its network namespace cannot be entered: " + pod.enter_error};
  }
  return DiagnoseIn(Plan{ScopeOf(pod), config.services, false}, config);
}

HolderPods ServicesCollector::PlaceHolders(const Scanned& scanned, const PodDiscovery& discovery,
                                           const Config& config) {
  HolderPods placed;
  std::set<pid_t> holders;
  for (const std::unique_ptr<ServiceTable>& table : scanned.tables) {
    for (const ListeningSocket& listener : table->Listeners().Listeners()) {
      if (auto found = scanned.owners.by_inode.find(listener.inode);
          found != scanned.owners.by_inode.end()) {
        for (const ProcessInfo& process : found->second) {
          holders.insert(process.pid);
        }
      }
    }
  }
  bool containers = false;
  bool unnamed_pods = false;
  for (const PodNamespace& pod : discovery.pods) {
    placed.pods[pod.uid] = PodName{pod.namespace_name, pod.name};
  }
  for (pid_t pid : holders) {
    std::optional<std::string> cgroup = procfs_.ReadFile(std::to_string(pid) + "/cgroup");
    std::optional<CgroupContainer> container =
        cgroup ? ParseCgroupContainer(*cgroup) : std::nullopt;
    if (container) {
      containers = containers || !container->container_id.empty();
      unnamed_pods = unnamed_pods || placed.pods.count(container->pod_uid) == 0;
      placed.containers[pid] = std::move(*container);
    }
  }
  if (unnamed_pods) {
    // A hostNetwork pod: in the node's namespace, so not among the discovered pods, but named
    // by the directory the discovery read.
    for (const auto& [pid, container] : placed.containers) {
      if (placed.pods.count(container.pod_uid) == 0) {
        if (std::optional<PodName> name = discovery.directory.Find(container.pod_uid)) {
          placed.pods[container.pod_uid] = *name;
        }
      }
    }
  }
  if (containers) {
    placed.container_names = container_names_.Read(config.services_options.container_logs_dir);
  }
  return placed;
}

Status ServicesCollector::Collect(const Config& config,
                                  std::vector<prometheus::MetricFamily>& out) {
  const ServicesOptions& options = config.services_options;
  if (config.services.empty() && !options.listener_info) {
    return {};
  }
  requests_dumped_ = 0;
  requests_replayed_ = 0;
  std::vector<Plan> plans(1);
  plans.front().listeners = options.listener_info;
  std::map<std::string, size_t> pods_by_service;
  for (const ServiceConfig& service : config.services) {
    if (service.pods) {
      pods_by_service[service.name] = 0;
    } else {
      plans.front().services.push_back(service);
    }
  }
  std::shared_ptr<const PodDiscovery> discovery;
  if (pods_ != nullptr && config.sockets.pods) {
    discovery = pods_->Discover(config.sockets.pod_logs_dir);
    for (const PodNamespace& pod : discovery->pods) {
      if (!pod.entered) {
        continue;  // counted by the sockets collector
      }
      Plan plan{ScopeOf(pod), {}, options.listener_info};
      for (const ServiceConfig& service : config.services) {
        if (service.pods && service.pods->Matches(pod.namespace_name, pod.name)) {
          plan.services.push_back(service);
        }
      }
      if (plan.listeners || !plan.services.empty()) {
        plans.push_back(std::move(plan));
      }
    }
  }

  Result<Scanned> scanned = Scan(plans, config, true);
  if (!scanned) {
    return Failure{scanned.Error()};
  }
  const SocketOwners& owners = scanned->owners;
  const auto now = std::chrono::steady_clock::now();
  std::vector<ServiceReport> reports;
  std::vector<ScopedListeners> listeners;
  uint64_t listeners_dropped = 0;
  for (const std::unique_ptr<ServiceTable>& table : scanned->tables) {
    std::vector<ServiceReport> table_reports =
        table->Reports(owners, ReuseFromFds(owners), memory_, now);
    for (ServiceReport& report : table_reports) {
      if (report.scope.InPod()) {
        pods_by_service[report.service.name]++;
      }
      reports.push_back(std::move(report));
    }
    listeners.push_back({table->Scope(), &table->Listeners().Listeners()});
    listeners_dropped += table->Listeners().Dropped();
  }
  if (options.listener_info) {
    const HolderPods holder_pods =
        discovery ? PlaceHolders(*scanned, *discovery, config) : HolderPods{};
    AppendListenerMetrics(listeners, listeners_dropped, owners, holder_pods, options, out);
  }
  if (!config.services.empty()) {
    AppendServiceMetrics(reports, out);
    AppendServicePods(pods_by_service, out);
  }
  FamilyBuilder("portwatch_services_sock_diag_requests",
                "This scrape's sock_diag requests for listeners and the services' ports, by what "
                "answered them: the kernel, or the sockets collector's dumps of the same scrape "
                "(sockets_collector: no second walk of the namespace's tables).",
                prometheus::MetricType::Gauge)
      .Add({{"answered_by", "kernel"}}, static_cast<double>(requests_dumped_))
      .Add({{"answered_by", "sockets_collector"}}, static_cast<double>(requests_replayed_))
      .MoveTo(out);
  FamilyBuilder("portwatch_process_scan_processes",
                "Processes looked at by this scrape's pass over /proc (0: no pass was needed).",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(owners.processes_scanned))
      .MoveTo(out);
  FamilyBuilder("portwatch_process_scan_full_total",
                "Full passes over every process's fds (the rest of the scrapes re-check the "
                "holders found before, one readlink per socket).",
                prometheus::MetricType::Counter)
      .Add(static_cast<double>(owner_cache_.FullScans()))
      .MoveTo(out);
  FamilyBuilder scan_method(
      "portwatch_process_scan_method",
      "How the last full pass found the processes holding the wanted sockets: 1 on that method "
      "(bpf_task_file: an eBPF iterator over every process's fd table; procfs: a readlink of "
      "every /proc/<pid>/fd entry, used without CAP_BPF and CAP_PERFMON or when the iterator "
      "fails), 0 on the other; both 0 before a pass has looked for a socket.",
      prometheus::MetricType::Gauge);
  for (const FdScanMethod method : {FdScanMethod::kBpfTaskFile, FdScanMethod::kProcfs}) {
    scan_method.Add({{"method", FdScanMethodName(method)}},
                    owner_cache_.LastMethod() == method ? 1.0 : 0.0);
  }
  scan_method.MoveTo(out);
  FamilyBuilder("portwatch_process_scan_skipped_total",
                "Processes skipped by the pass over /proc because they vanished mid-scan or "
                "their fds could not be read (no privilege).",
                prometheus::MetricType::Counter)
      .Add(static_cast<double>(processes_skipped_total_))
      .MoveTo(out);
  return {};
}

}  // namespace portwatch
