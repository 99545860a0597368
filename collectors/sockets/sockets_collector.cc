#include "collectors/sockets/sockets_collector.h"

#include <algorithm>
#include <array>
#include <bitset>
#include <cstddef>
#include <ctime>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"
#include "collectors/pods/pod_identity.h"
#include "collectors/socket_table/socket_table.h"
#include "collectors/sockets/pod_read_order.h"
#include "collectors/sockets/pod_series_budget.h"

namespace portwatch {

namespace {

using netlink::DumpOutcome;
using netlink::Family;
using netlink::Protocol;

/// The slot of PodCounts::read_by_backend's inner array for `backend`.
size_t BackendSlot(SocketBackend backend) { return backend == SocketBackend::kBpf ? 1 : 0; }

struct Table {
  Protocol protocol;
  Family family;
  bool both_families = false;  ///< TCP: IPv4 and IPv6 in one walk (family unused)

  /// The families one dump of this table returns.
  std::vector<Family> Families() const {
    return both_families ? std::vector<Family>{Family::kIpv4, Family::kIpv6}
                         : std::vector<Family>{family};
  }
};

/// What a scrape may always spend on pods sharing the node's hash, however cheap the host's own
/// dump was: about twelve pods' reads on a small node.
constexpr std::chrono::milliseconds kSharedPodsMinBudget{25};

/// The CPU time of the calling thread (user and system: a dump's walk of the kernel's tables is
/// system time). Pods' reads are budgeted in it rather than in wall-clock time, so that a busy
/// node's preemptions neither starve the pods of reads nor let a slow scrape read more.
std::chrono::nanoseconds ThreadCpuTime() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return std::chrono::seconds(now.tv_sec) + std::chrono::nanoseconds(now.tv_nsec);
}

}  // namespace

SocketsCollector::SocketsCollector(ProcFs procfs, TransportFactory open_transport,
                                   std::shared_ptr<PodNamespaces> pods,
                                   std::shared_ptr<KeptDumps> dumps,
                                   std::shared_ptr<SocketSources> sources)
    : procfs_(procfs),
      open_transport_(std::move(open_transport)),
      sources_(sources ? std::move(sources) : SocketSources::NetlinkOnly(open_transport_)),
      pods_(pods ? std::move(pods) : std::make_shared<PodNamespaces>(std::move(procfs))),
      dumps_(std::move(dumps)) {}

Status SocketsCollector::Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) {
  std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_);
  if (!range) {
    return Failure{"cannot read net.ipv4.ip_local_port_range"};
  }
  for (std::bitset<65536>& ports : service_ports_) {
    ports.reset();
  }
  for (const ServiceConfig& service : config.services) {
    service_ports_[service.protocol == ServiceProtocol::kTcp ? 0 : 1].set(service.port);
  }
  // The services collector finds the processes of the services' sockets (and of listeners) from
  // the records kept for it: only those need their inode.
  const std::unique_ptr<SocketSource> source =
      sources_->Open(config.sockets.backend, service_ports_[0] | service_ports_[1]);
  if (Status opened = source->Open(); !opened) {
    return Failure{opened.Error()};
  }
  if (dumps_ != nullptr) {
    recorded_tcp_ports_ = std::make_shared<const netlink::RecordedDump::PortSet>(service_ports_[0]);
  }
  // Both families in one TCP walk needs both asked for and the kernel to have IPv6 (else the
  // per-family dump says "unsupported" for IPv6, as portwatch_sock_diag_table_available shows).
  tcp_both_families_ = config.sockets.tcp && config.sockets.ipv4 && config.sockets.ipv6 &&
                       !both_families_refused_ && procfs_.ReadFile("net/if_inet6").has_value();
  const auto start = ThreadCpuTime();
  Status status =
      CollectNamespace(*source, *range, config.sockets,
                       {config.sockets.max_port_series, config.sockets.max_peer_port_series,
                        config.sockets.top_destinations, &service_ports_},
                       KeptDumps::kOwnNamespace, out);
  AppendBackendMetrics(*source, config.sockets, out);
  if (config.sockets.pods) {
    CollectPods(config.sockets, *range, ThreadCpuTime() - start, out);
  } else if (pods_->Entered() != 0 || !pod_readings_.empty()) {
    // Turned off by a reload: the kept sockets would keep gone pods' namespaces alive.
    pod_readings_.clear();
    pods_->Close();
  }
  return status;
}

Status SocketsCollector::ReadPod(const PodNamespace& pod, const EphemeralRange& host_range,
                                 const SocketsConfig& options, PodCounts& counts) {
  const uint64_t inode = pod.inode;
  const std::unique_ptr<SocketSource> source = sources_->OpenPod(
      options.backend, service_ports_[0] | service_ports_[1],
      [this, inode](const NamespaceWorker::Make& make) { return pods_->CreateInside(inode, make); },
      [this, inode] { return pods_->Open(inode); });
  if (Status opened = source->Open(); !opened) {
    return opened;
  }
  std::vector<prometheus::MetricFamily> families;
  Status status =
      CollectNamespace(*source, pods_->EphemeralRangeOf(pod.inode).value_or(host_range), options,
                       {options.pod_max_port_series, options.pod_max_peer_port_series,
                        options.pod_top_destinations, &service_ports_},
                       pod.inode, families);
  if (!status) {
    return status;
  }
  // What the kernel supports is the node's, already exposed without pod labels; and how many
  // sockets a pod's dump returned repeats its portwatch_sockets total. Dropped: 8 of the 18 or
  // so series of a small pod.
  std::erase_if(families, [](const prometheus::MetricFamily& family) {
    return family.name == "portwatch_sock_diag_table_available" ||
           family.name == "portwatch_scrape_sockets_read";
  });
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    if (options.Reads(protocol)) {
      ++counts.read_by_backend[SocketIterators::Index(protocol)]
                              [BackendSlot(source->Backend(protocol))];
    }
  }
  PodReading& reading = pod_readings_[pod.inode];
  reading.labels = pod.Labels();
  reading.families = std::move(families);
  reading.read_at = std::chrono::steady_clock::now();
  return {};
}

void SocketsCollector::CollectPods(const SocketsConfig& options, const EphemeralRange& host_range,
                                   std::chrono::steady_clock::duration host_read_cpu,
                                   std::vector<prometheus::MetricFamily>& out) {
  const auto scrape_start = std::chrono::steady_clock::now();
  const auto discovery_start = ThreadCpuTime();
  PodCounts counts;
  const std::shared_ptr<const PodDiscovery> discovery = pods_->Discover(options.pod_logs_dir);
  const auto discovery_cpu = ThreadCpuTime() - discovery_start;
  std::erase_if(pod_readings_, [&discovery](const auto& entry) {
    return discovery->Find(entry.first) == nullptr;
  });

  std::map<uint64_t, const PodNamespace*> readable;
  std::vector<PodReadState> states;
  for (const PodNamespace& pod : discovery->pods) {
    if (pod.entered) {
      readable[pod.inode] = &pod;
      const auto reading = pod_readings_.find(pod.inode);
      states.push_back(
          {pod.inode, pods_->HasPrivateHash(pod.inode),
           reading != pod_readings_.end() ? std::optional(reading->second.read_at) : std::nullopt});
    }
  }
  // Pods sharing the node's hash (SharedPodReads): within half of what the host's own dump took,
  // with the other collectors a scrape stays under twice a host-wide dump (measured: 2.05x with
  // the whole host time as the budget, 1.92x with three quarters, 100 pods at 100k sockets);
  // past it only the pods whose counts reached pod_counts_max_age_seconds, so that pods never
  // cost a scrape much more than one host dump. The rest keep their last reading, whose age is
  // exposed. A small node's host dump takes a millisecond or two, less than one pod's walk of
  // the node's empty hash buckets (~2 ms): kSharedPodsMinBudget keeps those nodes' pods fresh.
  SharedPodReads shared(std::max<std::chrono::nanoseconds>(host_read_cpu / 2, kSharedPodsMinBudget),
                        std::chrono::seconds(options.pod_counts_max_age_seconds), scrape_start,
                        discovery_cpu);
  std::map<uint64_t, const PodReadState*> state_of;
  for (const PodReadState& state : states) {
    state_of[state.inode] = &state;
  }
  for (const uint64_t inode : PodReadOrder(states)) {
    const PodReadState& state = *state_of[inode];
    const SharedPodReads::Verdict verdict = shared.Decide(state, last_shared_read_);
    if (verdict == SharedPodReads::Verdict::kSkip) {
      continue;
    }
    const auto start = ThreadCpuTime();
    const PodNamespace& pod = *readable[inode];
    if (const Status status = ReadPod(pod, host_range, options, counts); !status) {
      ++counts.read_failed;
      pod_readings_.erase(inode);
      spdlog::debug("{}", LogLine("sockets: cannot read a pod's sockets")
                              .Add("pod_uid", pod.uid)
                              .Add("err", status.Error())
                              .Text());
    }
    if (!state.private_hash) {
      last_shared_read_ = ThreadCpuTime() - start;
      shared.Read(verdict, last_shared_read_);
    }
  }
  reads_past_budget_total_ += shared.ReadPastBudget();
  counts.readable = readable.size();
  AppendPodReadings(options, *discovery, counts, scrape_start, out);
  FamilyBuilder("portwatch_pod_logs_dir_entries",
                "Pods named by the kubelet's pod log directory (collectors.sockets.pod_logs_dir); "
                "a pod not found there is labelled with its UID as pod and an empty namespace.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(discovery->directory.Size()))
      .MoveTo(out);
}

void SocketsCollector::AppendPodReadings(const SocketsConfig& options,
                                         const PodDiscovery& discovery, const PodCounts& counts,
                                         std::chrono::steady_clock::time_point scrape_start,
                                         std::vector<prometheus::MetricFamily>& out) const {
  FamilyBuilder age("portwatch_pod_sockets_age_seconds",
                    "How old the pod's socket counts were when this scrape began: 0 for a pod read "
                    "this scrape (every "
                    "scrape with a private TCP hash); pods sharing the node's hash are re-read in "
                    "turn, a few per scrape.",
                    prometheus::MetricType::Gauge);
  // Copies: a pod's kept reading stays whole whatever this scrape's budget folds.
  std::vector<std::vector<prometheus::MetricFamily>> copies;
  copies.reserve(pod_readings_.size());
  std::vector<std::vector<prometheus::MetricFamily>*> budgeted;
  for (const auto& [inode, reading] : pod_readings_) {
    budgeted.push_back(&copies.emplace_back(reading.families));
  }
  const size_t folded = FitPodsToBudget(budgeted, options.max_pod_series);
  size_t series = 0;
  auto copy = copies.begin();
  for (const auto& [inode, reading] : pod_readings_) {
    series += CountSeries(*copy);
    AppendLabelled(*copy++, reading.labels, out);
    const auto behind = std::max(scrape_start - reading.read_at, std::chrono::nanoseconds(0));
    age.Add(reading.labels, std::chrono::duration<double>(behind).count());
  }
  age.MoveTo(out);
  FamilyBuilder("portwatch_pod_sockets_max_age_seconds",
                "The bound on portwatch_pod_sockets_age_seconds "
                "(collectors.sockets.pod_counts_max_age_seconds): a pod sharing the node's TCP "
                "hash whose counts reach it is read even past the scrape's cost budget, while a "
                "second budget lasts.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(options.pod_counts_max_age_seconds))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_reads_past_budget_total",
                "Reads of pods sharing the node's TCP hash made past the scrape's cost budget "
                "because their counts had reached pod_counts_max_age_seconds (or were never "
                "read): each walked the node's whole TCP hash.",
                prometheus::MetricType::Counter)
      .Add(static_cast<double>(reads_past_budget_total_))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_series",
                "Series the pods' socket counts add to this scrape (labelled namespace and pod), "
                "after max_pod_series folded the largest pods.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(series))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_series_folded",
                "Series removed this scrape because the pods together exceeded max_pod_series: "
                "the pods with the most series keep per-state totals under port=\"other\" "
                "instead of per-port counts.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(folded))
      .MoveTo(out);
  FamilyBuilder("portwatch_pod_network_namespaces",
                "Network namespaces other than the exporter's seen this scrape: a pod's, counted "
                "(collected), not read yet (pending: its turn comes), that could not be entered or "
                "read (failed: the log says why at debug level), or one outside Kubernetes "
                "(not_a_pod, not counted).",
                prometheus::MetricType::Gauge)
      .Add({{"state", "collected"}}, static_cast<double>(pod_readings_.size()))
      .Add({{"state", "pending"}},
           static_cast<double>(counts.readable - counts.read_failed - pod_readings_.size()))
      .Add({{"state", "failed"}},
           static_cast<double>(discovery.EnterFailures() + counts.read_failed))
      .Add({{"state", "not_a_pod"}}, static_cast<double>(discovery.not_pods))
      .MoveTo(out);
  FamilyBuilder by_backend(
      "portwatch_pod_socket_tables",
      "Pods whose protocol's sockets were read this scrape, by what read them: BPF socket "
      "iterators made inside the pod's namespace, or netlink sock_diag "
      "(collectors.sockets.backend, "
      "chosen as for the exporter's own namespace).",
      prometheus::MetricType::Gauge);
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    if (options.Reads(protocol)) {
      for (const SocketBackend backend : {SocketBackend::kBpf, SocketBackend::kNetlink}) {
        by_backend.Add(
            {{"backend", std::string(BackendName(backend))},
             {"protocol", std::string(netlink::ProtocolName(protocol))}},
            static_cast<double>(
                counts.read_by_backend[SocketIterators::Index(protocol)][BackendSlot(backend)]));
      }
    }
  }
  by_backend.MoveTo(out);
  FamilyBuilder("portwatch_pod_discovery_processes_skipped",
                "Processes whose network namespace could not be read while looking for pods "
                "this scrape (gone meanwhile, or no ptrace access to them).",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(discovery.processes_unreadable))
      .MoveTo(out);
}

Status SocketsCollector::CollectNamespace(SocketSource& source, const EphemeralRange& range,
                                          const SocketsConfig& options,
                                          const SocketTable::Limits& limits, uint64_t keep_as,
                                          std::vector<prometheus::MetricFamily>& out) {
  Status status;
  std::vector<Table> tables;
  for (Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    if (options.Reads(protocol)) {
      for (Family family : {Family::kIpv4, Family::kIpv6}) {
        if (family == Family::kIpv4 ? options.ipv4 : options.ipv6) {
          tables.push_back({protocol, family});
        }
      }
    }
  }

  // One dump per protocol and family, TCP's two families in one walk where the kernel takes it
  // (netlink::DumpRequest::both_families: listeners of both come first, then every other
  // socket). A second read happens only when a listener showed up after sockets on its port had
  // been counted as client-side (see SocketTable).
  std::unique_ptr<SocketTable> table;
  // Per table, what its latest read got: a failed second read leaves the tables it did not reach
  // with their first read's count.
  std::map<std::pair<Protocol, Family>, uint64_t> sockets_read;
  std::map<std::pair<Protocol, Family>, bool> available;
  SocketTable::ListeningSet seed;
  const uint32_t states =
      netlink::kAllStates | (options.bound_inactive ? netlink::kBoundInactiveStates : 0);
  std::shared_ptr<netlink::RecordedDump> recording;
  for (int pass = 0; pass < 2; ++pass) {
    if (table) {  // the second read counts into the first one's arrays
      count_arrays_ = table->ReleaseCountArrays();
    }
    table = std::make_unique<SocketTable>(range, limits, std::move(seed), std::move(count_arrays_));
    if (dumps_ != nullptr) {
      recording =
          std::make_shared<netlink::RecordedDump>(recorded_tcp_ports_, dumps_->Room(keep_as));
    }
    std::vector<Table> dumps;
    for (const Table& t : tables) {
      const bool both_families = options.ipv4 && options.ipv6 &&
                                 (source.WalksBothFamilies(t.protocol) ||
                                  (t.protocol == Protocol::kTcp && tcp_both_families_));
      if (!both_families) {
        dumps.push_back(t);
      } else if (t.family == Family::kIpv4) {
        dumps.push_back({t.protocol, Family::kIpv4, true});
      }
    }
    for (size_t i = 0; i < dumps.size(); ++i) {
      const Table t = dumps[i];
      const netlink::DumpRequest request{t.protocol, t.family, states, {}, t.both_families};
      std::array<uint64_t, 2> read_by_family{};
      netlink::DumpResult result = source.Walk(
          request, [&table, &recording, &t, &read_by_family](const netlink::SocketRecord& record) {
            const Family family = t.both_families ? netlink::FamilyOf(record) : t.family;
            table->Add(t.protocol, record);
            if (recording) {
              recording->Add(t.protocol, family, record);
            }
            ++read_by_family[family == Family::kIpv4 ? 0 : 1];
          });
      if (t.both_families && source.Backend(t.protocol) == SocketBackend::kNetlink &&
          (result.outcome == DumpOutcome::kUnsupported ||
           (result.outcome == DumpOutcome::kFailed && result.sockets == 0))) {
        // A kernel that does not take the older request: one walk per family from now on.
        tcp_both_families_ = false;
        both_families_refused_ = true;
        spdlog::info("{}", LogLine("sockets: the kernel refuses one TCP dump for both families; "
                                   "dumping IPv4 and IPv6 apart")
                               .Add("err", result.error)
                               .Text());
        dumps.insert(dumps.begin() + static_cast<std::ptrdiff_t>(i) + 1,
                     {Table{Protocol::kTcp, Family::kIpv4}, Table{Protocol::kTcp, Family::kIpv6}});
        continue;
      }
      for (const Family family : t.Families()) {
        sockets_read[{t.protocol, family}] = read_by_family[family == Family::kIpv4 ? 0 : 1];
        available[{t.protocol, family}] = result.outcome != DumpOutcome::kUnsupported;
      }
      if (result.outcome == DumpOutcome::kFailed || result.outcome == DumpOutcome::kInterrupted) {
        status = Failure{result.TableError(request)};
        break;
      }
      if (recording) {
        for (const Family family : t.Families()) {
          recording->Complete(t.protocol, family, states);
        }
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
    if (recording) {
      dumps_->Keep(keep_as, std::move(recording));
    }
  }
  count_arrays_ = table->ReleaseCountArrays();
  return status;
}

void SocketsCollector::AppendBackendMetrics(const SocketSource& source,
                                            const SocketsConfig& options,
                                            std::vector<prometheus::MetricFamily>& out) const {
  FamilyBuilder backend(
      "portwatch_socket_table_backend",
      "What read the protocol's sockets in the exporter's network namespace this scrape (1): BPF "
      "socket iterators (SO_REUSEADDR of every socket, TIME_WAIT included) or netlink sock_diag "
      "(collectors.sockets.backend). Pods: portwatch_pod_socket_tables.",
      prometheus::MetricType::Gauge);
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    if (options.Reads(protocol)) {
      backend.Add({{"backend", std::string(BackendName(source.Backend(protocol)))},
                   {"protocol", std::string(netlink::ProtocolName(protocol))}},
                  1);
    }
  }
  backend.MoveTo(out);
  const SocketSources::Snapshot sources = sources_->Current();
  FamilyBuilder available(
      "portwatch_socket_iterator_available",
      "Whether BPF socket iterators can read the protocol's table (loaded, and a kernel that walks "
      "each socket exactly once: TCP Linux 6.17+, UDP 6.16+); 0 with backend netlink, without "
      "CAP_BPF and CAP_PERFMON, or on older kernels. The log says why at start.",
      prometheus::MetricType::Gauge);
  for (const Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    available.Add({{"protocol", std::string(netlink::ProtocolName(protocol))}},
                  sources.available[SocketIterators::Index(protocol)] ? 1 : 0);
  }
  available.MoveTo(out);
  FamilyBuilder fallbacks(
      "portwatch_socket_iterator_fallbacks_total",
      "Reads meant for a BPF socket iterator, in the exporter's namespace or a pod's, that "
      "sock_diag answered because the walk could not be started: the iterator could not be made "
      "(create) or the pod's namespace entered (setns); the log says why once.",
      prometheus::MetricType::Counter);
  for (const char* reason : {"create", "setns"}) {
    const auto found = sources.fallbacks.find(reason);
    fallbacks.Add({{"reason", reason}},
                  static_cast<double>(found != sources.fallbacks.end() ? found->second : 0));
  }
  fallbacks.MoveTo(out);
}

netlink::TransportFactory KernelTransportFactory() { return netlink::KernelTransportFactory(); }

}  // namespace portwatch
