#include "collectors/sockets/sockets_collector.h"

#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"
#include "collectors/pods/pod_identity.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

namespace {

using netlink::DumpOutcome;
using netlink::Family;
using netlink::Protocol;

struct Table {
  Protocol protocol;
  Family family;
};

}  // namespace

SocketsCollector::SocketsCollector(ProcFs procfs, TransportFactory open_transport)
    : procfs_(procfs), open_transport_(std::move(open_transport)), namespaces_(std::move(procfs)) {}

Status SocketsCollector::Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) {
  std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_);
  if (!range) {
    return Failure{"cannot read net.ipv4.ip_local_port_range"};
  }
  Result<std::unique_ptr<netlink::Transport>> opened = open_transport_();
  if (!opened) {
    return Failure{opened.Error()};
  }
  Status status = CollectNamespace(**opened, *range, config.sockets, out);
  if (config.sockets.pods) {
    CollectPods(config.sockets, *range, out);
  }
  return status;
}

void SocketsCollector::CollectPods(const SocketsConfig& options, const EphemeralRange& host_range,
                                   std::vector<prometheus::MetricFamily>& out) {
  uint64_t unreadable = 0;
  std::vector<ProcessNamespace> processes = ReadProcessNamespaces(procfs_, unreadable);
  struct stat own {};
  const uint64_t own_inode =
      ::stat((procfs_.Root() + "/self/ns/net").c_str(), &own) == 0 ? own.st_ino : 0;
  std::vector<NetworkNamespace> namespaces = GroupByNamespace(
      std::move(processes), own_inode,
      [this](pid_t pid) { return procfs_.ReadFile(std::to_string(pid) + "/cgroup"); });
  const auto not_pods = static_cast<size_t>(std::count_if(
      namespaces.begin(), namespaces.end(), [](const NetworkNamespace& n) { return !n.pod; }));
  std::erase_if(namespaces, [](const NetworkNamespace& n) { return !n.pod; });
  const std::map<uint64_t, std::string> failures = namespaces_.Refresh(namespaces);
  const PodDirectory directory = PodDirectory::Read(options.pod_logs_dir);

  size_t collected = 0;
  size_t failed = failures.size();
  for (const auto& [inode, why] : failures) {
    spdlog::debug("{}", LogLine("sockets: cannot enter a pod's network namespace")
                            .Add("netns", inode)
                            .Add("err", why)
                            .Text());
  }
  for (const NetworkNamespace& pod : namespaces) {
    if (failures.count(pod.inode) != 0) {
      continue;
    }
    Result<std::unique_ptr<netlink::Transport>> transport = namespaces_.Open(pod.inode);
    std::vector<prometheus::MetricFamily> families;
    const Status status =
        transport ? CollectNamespace(**transport,
                                     namespaces_.EphemeralRangeOf(pod.inode).value_or(host_range),
                                     options, families)
                  : Status(Failure{transport.Error()});
    if (!status) {
      ++failed;
      spdlog::debug("{}", LogLine("sockets: cannot read a pod's sockets")
                              .Add("pod_uid", pod.pod->pod_uid)
                              .Add("err", status.Error())
                              .Text());
      continue;
    }
    ++collected;
    const std::optional<PodName> name = directory.Find(pod.pod->pod_uid);
    AppendLabelled(families,
                   {{"namespace", name ? name->namespace_name : ""},
                    {"pod", name ? name->pod : pod.pod->pod_uid}},
                   out);
  }
  FamilyBuilder("portwatch_pod_network_namespaces",
                "Network namespaces other than the exporter's seen this scrape: a pod's, counted "
                "(collected), a pod's that could not be entered or read (failed: the log says why "
                "at debug level), or one outside Kubernetes (not_a_pod, not counted).",
                prometheus::MetricType::Gauge)
      .Add({{"state", "collected"}}, static_cast<double>(collected))
      .Add({{"state", "failed"}}, static_cast<double>(failed))
      .Add({{"state", "not_a_pod"}}, static_cast<double>(not_pods))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_discovery_processes_skipped",
                "Processes whose network namespace could not be read while looking for pods "
                "this scrape (gone meanwhile, or no ptrace access to them).",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(unreadable))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_logs_dir_entries",
                "Pods named by the kubelet's pod log directory (collectors.sockets.pod_logs_dir); "
                "a pod not found there is labelled with its UID as pod and an empty namespace.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(directory.Size()))
      .MoveTo(out);
}

Status SocketsCollector::CollectNamespace(netlink::Transport& transport,
                                          const EphemeralRange& range, const SocketsConfig& options,
                                          std::vector<prometheus::MetricFamily>& out) {
  Status status;
  std::vector<Table> tables;
  for (Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    if ((protocol == Protocol::kTcp ? options.tcp : options.udp)) {
      for (Family family : {Family::kIpv4, Family::kIpv6}) {
        if (family == Family::kIpv4 ? options.ipv4 : options.ipv6) {
          tables.push_back({protocol, family});
        }
      }
    }
  }

  // One dump per protocol and family. A second read happens only when a listener showed up
  // after sockets on its port had been counted as client-side (see SocketTable).
  std::unique_ptr<SocketTable> table;
  // Per table, what its latest read got: a failed second read leaves the tables it did not reach
  // with their first read's count.
  std::map<std::pair<Protocol, Family>, uint64_t> sockets_read;
  std::map<std::pair<Protocol, Family>, bool> available;
  SocketTable::ListeningSet seed;
  const uint32_t states =
      netlink::kAllStates | (options.bound_inactive ? netlink::kBoundInactiveStates : 0);
  for (int pass = 0; pass < 2; ++pass) {
    if (table) {  // the second read counts into the first one's arrays
      count_arrays_ = table->ReleaseCountArrays();
    }
    table = std::make_unique<SocketTable>(
        range,
        SocketTable::Limits{options.max_port_series, options.max_peer_port_series,
                            options.top_destinations},
        std::move(seed), std::move(count_arrays_));
    for (const Table& t : tables) {
      const netlink::DumpRequest request{t.protocol, t.family, states, {}};
      netlink::DumpResult result = netlink::Dump(
          transport, request, [&table, protocol = t.protocol](const netlink::SocketRecord& record) {
            table->Add(protocol, record);
          });
      sockets_read[{t.protocol, t.family}] = result.sockets;
      available[{t.protocol, t.family}] = result.outcome != DumpOutcome::kUnsupported;
      if (result.outcome == DumpOutcome::kFailed || result.outcome == DumpOutcome::kInterrupted) {
        status = Failure{result.TableError(request)};
        break;
      }
    }
    if (!status || !table->HasLateListeners()) {
      break;
    }
    seed = table->ListeningPorts();
  }

  FamilyBuilder available_family(
      "portwatch_sock_diag_table_available",
      "Whether the kernel answers sock_diag dumps for this protocol and family (0: no support "
      "compiled in or module missing, reported as no data rather than an error).",
      prometheus::MetricType::Gauge);
  FamilyBuilder read_family("portwatch_scrape_sockets_read",
                            "Sockets read from the kernel during this scrape.",
                            prometheus::MetricType::Gauge);
  for (const Table& t : tables) {
    if (available.count({t.protocol, t.family}) == 0) {
      continue;
    }
    std::vector<prometheus::ClientMetric::Label> labels = {
        {"family", std::string(netlink::FamilyName(t.family))},
        {"protocol", std::string(netlink::ProtocolName(t.protocol))}};
    available_family.Add(labels, available[{t.protocol, t.family}] ? 1 : 0);
    read_family.Add(labels, static_cast<double>(sockets_read[{t.protocol, t.family}]));
  }
  available_family.MoveTo(out);
  read_family.MoveTo(out);
  // A partial table would show wrong counts; a gap is the honest answer.
  if (status) {
    table->AppendMetrics(out, totals_);
  }
  count_arrays_ = table->ReleaseCountArrays();
  return status;
}

netlink::TransportFactory KernelTransportFactory() { return netlink::KernelTransportFactory(); }

}  // namespace portwatch
