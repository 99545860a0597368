#include "collectors/kernel_limits/kernel_limits_collector.h"

#include <algorithm>

#include "collectors/common/family_builder.h"

namespace portwatch {

Status KernelLimitsCollector::Collect(const Config& /*config*/,
                                      std::vector<prometheus::MetricFamily>& out) {
  std::string unread;  // every setting that could not be read, not just the first
  auto fail = [&unread](const std::string& what) {
    unread += (unread.empty() ? "cannot read " : ", ") + what;
  };

  if (std::optional<int64_t> buckets = procfs_.ReadInteger("sys/net/ipv4/tcp_max_tw_buckets")) {
    FamilyBuilder("portwatch_tcp_max_tw_buckets",
                  "net.ipv4.tcp_max_tw_buckets: TIME_WAIT sockets beyond this are destroyed at "
                  "once (counted in portwatch_tcpext_tcp_time_wait_overflow_total).",
                  prometheus::MetricType::Gauge)
        .Add(static_cast<double>(*buckets))
        .MoveTo(out);
  } else {
    fail("net.ipv4.tcp_max_tw_buckets");
  }

  if (std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_)) {
    FamilyBuilder("portwatch_ephemeral_port_range_first",
                  "First port of net.ipv4.ip_local_port_range (IPv4 and IPv6).",
                  prometheus::MetricType::Gauge)
        .Add(range->first)
        .MoveTo(out);
    FamilyBuilder("portwatch_ephemeral_port_range_last",
                  "Last port of net.ipv4.ip_local_port_range (IPv4 and IPv6).",
                  prometheus::MetricType::Gauge)
        .Add(range->last)
        .MoveTo(out);
    // Reserved ports are never handed out by connect() or an autobind.
    if (std::optional<std::vector<uint16_t>> reserved = ReadReservedPorts(procfs_)) {
      const auto reserved_in_range =
          std::count_if(reserved->begin(), reserved->end(),
                        [&range](uint16_t port) { return range->Contains(port); });
      FamilyBuilder("portwatch_ephemeral_ports_available",
                    "Ports connect() can pick: the size of ip_local_port_range less the "
                    "ip_local_reserved_ports inside it.",
                    prometheus::MetricType::Gauge)
          .Add(static_cast<double>(range->Size() - static_cast<uint32_t>(reserved_in_range)))
          .MoveTo(out);
    } else {
      fail("net.ipv4.ip_local_reserved_ports");
    }
  } else {
    fail("net.ipv4.ip_local_port_range");
  }
  if (!unread.empty()) {
    return Failure{unread};
  }
  return {};
}

}  // namespace portwatch
