#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "collectors/collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/namespace_sockets.h"
#include "collectors/pods/pod_identity.h"
#include "collectors/procfs/procfs.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

/// Counts TCP and UDP sockets per protocol, family, state and port from netlink sock_diag: those
/// of the exporter's network namespace and, with `pods`, those of every pod's, labelled with the
/// pod's namespace and name.
class SocketsCollector : public Collector {
 public:
  /// Opens a transport for one scrape, or says why it cannot.
  using TransportFactory = netlink::TransportFactory;

  SocketsCollector(ProcFs procfs, TransportFactory open_transport);

  std::string_view Name() const override { return "sockets"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  /// The tables of one network namespace, through `transport`, into `out`.
  Status CollectNamespace(netlink::Transport& transport, const EphemeralRange& range,
                          const SocketsConfig& options, std::vector<prometheus::MetricFamily>& out);
  struct PodCounts {
    uint64_t unreadable = 0;  ///< processes whose namespace could not be read
    size_t not_pods = 0;      ///< namespaces outside Kubernetes
    size_t enter_failed = 0;  ///< pods' namespaces that could not be entered
    size_t read_failed = 0;   ///< pods whose dump failed this scrape
    size_t readable = 0;      ///< pods' namespaces entered
  };
  /// The pods' network namespaces (the others only counted in `counts`).
  std::vector<NetworkNamespace> DiscoverPods(PodCounts& counts) const;
  /// Reads one pod's tables in full into pod_readings_.
  Status ReadPod(const NetworkNamespace& pod, const EphemeralRange& host_range,
                 const SocketsConfig& options, const PodDirectory& directory);
  /// Every pod's network namespace, each labelled; a pod that cannot be read is skipped and
  /// counted, never a failed scrape. Pods sharing the node's TCP hash are read in turn within a
  /// budget of `host_read_time` (see PodReadOrder).
  void CollectPods(const SocketsConfig& options, const EphemeralRange& host_range,
                   std::chrono::steady_clock::duration host_read_time,
                   std::vector<prometheus::MetricFamily>& out);
  void AppendPodReadings(const PodCounts& counts,
                         std::chrono::steady_clock::time_point scrape_start,
                         std::vector<prometheus::MetricFamily>& out) const;

  ProcFs procfs_;
  TransportFactory open_transport_;
  NamespaceSockets namespaces_;
  /// The last full reading of each pod, labelled: served until its turn to be read again.
  struct PodReading {
    std::vector<prometheus::ClientMetric::Label> labels;
    std::vector<prometheus::MetricFamily> families;
    std::chrono::steady_clock::time_point read_at;
  };
  std::map<uint64_t, PodReading> pod_readings_;
  bool warned_no_pods_ = false;  ///< the one log line when no pod could be entered
  /// How long the last dump of a pod sharing the node's hash took: the next one's estimate.
  std::chrono::steady_clock::duration last_shared_read_{};
  /// Reused by every scrape rather than allocated by each (the runner never runs one collector
  /// twice at once). The count arrays pass from one table to the next, a second read's included.
  SocketTable::CountArrays count_arrays_;
  SocketTable::Totals totals_;
};

/// The production transport factory: a sock_diag socket in the exporter's network namespace
/// (netlink::KernelTransportFactory()).
netlink::TransportFactory KernelTransportFactory();

}  // namespace portwatch
