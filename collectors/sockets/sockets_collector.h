#pragma once

#include <functional>
#include <memory>
#include <string>

#include "collectors/collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/namespace_sockets.h"
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
  /// Every pod's network namespace, each labelled; a pod that cannot be read is skipped and
  /// counted, never a failed scrape.
  void CollectPods(const SocketsConfig& options, const EphemeralRange& host_range,
                   std::vector<prometheus::MetricFamily>& out);

  ProcFs procfs_;
  TransportFactory open_transport_;
  NamespaceSockets namespaces_;
  /// Reused by every scrape rather than allocated by each (the runner never runs one collector
  /// twice at once). The count arrays pass from one table to the next, a second read's included.
  SocketTable::CountArrays count_arrays_;
  SocketTable::Totals totals_;
};

/// The production transport factory: a sock_diag socket in the exporter's network namespace
/// (netlink::KernelTransportFactory()).
netlink::TransportFactory KernelTransportFactory();

}  // namespace portwatch
