#include "collectors/sockets/sockets_collector.h"

#include <map>
#include <utility>

#include "collectors/common/family_builder.h"
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
    : procfs_(std::move(procfs)), open_transport_(std::move(open_transport)) {}

Status SocketsCollector::Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) {
  Status status;
  std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_);
  if (!range) {
    return Failure{"cannot read net.ipv4.ip_local_port_range"};
  }
  Result<std::unique_ptr<netlink::Transport>> opened = open_transport_();
  if (!opened) {
    return Failure{opened.Error()};
  }
  netlink::Transport& transport = **opened;

  const SocketsConfig& options = config.sockets;
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
        *range,
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
