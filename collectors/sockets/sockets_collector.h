#pragma once

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "collectors/collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/kept_dumps.h"
#include "collectors/netns/pod_namespaces.h"
#include "collectors/procfs/procfs.h"
#include "collectors/socket_source/socket_iterators.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

/// Counts TCP and UDP sockets per protocol, family, state and port from netlink sock_diag: those
/// of the exporter's network namespace and, with `pods`, those of every pod's, labelled with the
/// pod's namespace and name.
class SocketsCollector : public Collector {
 public:
  /// Opens a transport for one scrape, or says why it cannot.
  using TransportFactory = netlink::TransportFactory;

  /// `pods`: the node's pods, shared with the other collectors that look inside them (one is
  /// made when none is given). `dumps`: where each namespace's dumps are recorded for the
  /// collectors after this one (nothing is recorded without it). `sources`: what reads the
  /// exporter's own namespace (BPF iterators or sock_diag); without it, sock_diag through
  /// `open_transport`.
  SocketsCollector(ProcFs procfs, TransportFactory open_transport,
                   std::shared_ptr<PodNamespaces> pods = nullptr,
                   std::shared_ptr<KeptDumps> dumps = nullptr,
                   std::shared_ptr<SocketSources> sources = nullptr);

  std::string_view Name() const override { return "sockets"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  /// The tables of one network namespace, through `source`, into `out`; what a complete read
  /// returned is kept in dumps_ under `keep_as`.
  Status CollectNamespace(SocketSource& source, const EphemeralRange& range,
                          const SocketsConfig& options, const SocketTable::Limits& limits,
                          uint64_t keep_as, std::vector<prometheus::MetricFamily>& out);
  struct PodCounts {
    size_t read_failed = 0;  ///< pods whose dump failed this scrape
    size_t readable = 0;     ///< pods' namespaces entered
    /// Pods read this scrape, by protocol (SocketIterators::Index) and the backend that read it.
    std::array<std::array<size_t, 2>, 2> read_by_backend{};
  };
  /// Reads one pod's tables in full into pod_readings_.
  Status ReadPod(const PodNamespace& pod, const EphemeralRange& host_range,
                 const SocketsConfig& options, PodCounts& counts);
  /// Every pod's network namespace, each labelled; a pod that cannot be read is skipped and
  /// counted, never a failed scrape. Pods sharing the node's TCP hash are read in turn within a
  /// budget of half `host_read_cpu` (the CPU time the host's own dump took), and past it when their
  /// counts reach pod_counts_max_age_seconds (see PodReadOrder).
  void CollectPods(const SocketsConfig& options, const EphemeralRange& host_range,
                   std::chrono::steady_clock::duration host_read_cpu,
                   std::vector<prometheus::MetricFamily>& out);
  void AppendPodReadings(const SocketsConfig& options, const PodDiscovery& discovery,
                         const PodCounts& counts,
                         std::chrono::steady_clock::time_point scrape_start,
                         std::vector<prometheus::MetricFamily>& out) const;

  /// Which backend read each protocol of the exporter's own namespace, and whether the
  /// iterators can be used: portwatch_socket_table_backend and its companions.
  void AppendBackendMetrics(const SocketSource& source, const SocketsConfig& options,
                            std::vector<prometheus::MetricFamily>& out) const;

  ProcFs procfs_;
  TransportFactory open_transport_;
  std::shared_ptr<SocketSources> sources_;
  std::shared_ptr<PodNamespaces> pods_;
  std::shared_ptr<KeptDumps> dumps_;
  /// The TCP ports whose sockets a recording keeps in every state: the services'.
  std::shared_ptr<const netlink::RecordedDump::PortSet> recorded_tcp_ports_;
  /// The last full reading of each pod, labelled: served until its turn to be read again.
  struct PodReading {
    std::vector<prometheus::ClientMetric::Label> labels;
    std::vector<prometheus::MetricFamily> families;
    std::chrono::steady_clock::time_point read_at;
  };
  std::map<uint64_t, PodReading> pod_readings_;
  /// The CPU time the last dump of a pod sharing the node's hash took: the next one's estimate.
  std::chrono::steady_clock::duration last_shared_read_{};
  /// This scrape dumps TCP's two families in one walk (see CollectNamespace).
  bool tcp_both_families_ = false;
  /// The kernel refused that once: never asked again.
  bool both_families_refused_ = false;
  /// Pods sharing the node's hash read past the budget because their counts were due.
  uint64_t reads_past_budget_total_ = 0;
  /// Reused by every scrape rather than allocated by each (the runner never runs one collector
  /// twice at once). The count arrays pass from one table to the next, a second read's included.
  SocketTable::CountArrays count_arrays_;
  /// The configured services' ports, per protocol: they keep their series in every table.
  SocketTable::ListeningSet service_ports_ = SocketTable::ListeningSet(2);
  SocketTable::Totals totals_;
};

/// The production transport factory: a sock_diag socket in the exporter's network namespace
/// (netlink::KernelTransportFactory()).
netlink::TransportFactory KernelTransportFactory();

}  // namespace portwatch
