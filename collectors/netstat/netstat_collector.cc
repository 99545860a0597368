#include "collectors/netstat/netstat_collector.h"

#include <array>

#include "collectors/common/family_builder.h"

namespace portwatch {

namespace {

struct TcpExtCounter {
  const char* kernel_name;
  const char* metric_name;
  const char* help;
};

constexpr std::array<TcpExtCounter, 4> kCounters = {{
    {"TW", "portwatch_tcpext_tw_total",
     "TCP sockets that finished TIME_WAIT via the fast timer (TcpExt TW)."},
    {"TCPTimeWaitOverflow", "portwatch_tcpext_tcp_time_wait_overflow_total",
     "TIME_WAIT sockets not created because tcp_max_tw_buckets was reached "
     "(TcpExt TCPTimeWaitOverflow)."},
    {"ListenOverflows", "portwatch_tcpext_listen_overflows_total",
     "Connections dropped because a listener's accept queue was full (TcpExt ListenOverflows)."},
    {"ListenDrops", "portwatch_tcpext_listen_drops_total",
     "Connections dropped at a listener for any reason, overflows included (TcpExt "
     "ListenDrops)."},
}};

}  // namespace

Status NetstatCollector::Collect(const Config& /*config*/,
                                 std::vector<prometheus::MetricFamily>& out) {
  std::optional<std::string> text = procfs_.ReadFile("net/netstat");
  if (!text) {
    return Failure{"cannot read " + procfs_.Root() + "/net/netstat"};
  }
  auto sections = ParseNetstat(*text);
  const auto tcp_ext = sections.find("TcpExt");
  if (tcp_ext == sections.end()) {
    return Failure{"no TcpExt section in " + procfs_.Root() + "/net/netstat"};
  }
  for (const TcpExtCounter& counter : kCounters) {
    // An older kernel may lack a counter: leave the metric out rather than report a false zero.
    auto value = tcp_ext->second.find(counter.kernel_name);
    if (value != tcp_ext->second.end()) {
      FamilyBuilder(counter.metric_name, counter.help, prometheus::MetricType::Counter)
          .Add(static_cast<double>(value->second))
          .MoveTo(out);
    }
  }
  return {};
}

}  // namespace portwatch
