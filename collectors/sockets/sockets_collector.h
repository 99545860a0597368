#pragma once

#include <functional>
#include <memory>
#include <string>

#include "collectors/collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/procfs/procfs.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

/// Counts TCP and UDP sockets per protocol, family, state and port from netlink sock_diag.
class SocketsCollector : public Collector {
 public:
  /// Opens a transport for one scrape, or says why it cannot.
  using TransportFactory = netlink::TransportFactory;

  SocketsCollector(ProcFs procfs, TransportFactory open_transport);

  std::string_view Name() const override { return "sockets"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  ProcFs procfs_;
  TransportFactory open_transport_;
  /// Reused by every scrape rather than allocated by each (the runner never runs one collector
  /// twice at once). The count arrays pass from one table to the next, a second read's included.
  SocketTable::CountArrays count_arrays_;
  SocketTable::Totals totals_;
};

/// The production transport factory: a sock_diag socket in the exporter's network namespace
/// (netlink::KernelTransportFactory()).
netlink::TransportFactory KernelTransportFactory();

}  // namespace portwatch
