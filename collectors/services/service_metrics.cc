#include "collectors/services/service_metrics.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

#include "collectors/common/family_builder.h"

namespace portwatch {

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;
using prometheus::MetricType;

/// The label sets of portwatch_listener_info, deduplicated and sorted: the workers of a
/// pre-forked server share one socket and show once per process, not once per fd.
std::set<Labels> ListenerSeries(const std::vector<ListeningSocket>& listeners,
                                const SocketOwners& owners, const ServicesOptions& options) {
  std::set<Labels> series;
  for (const ListeningSocket& listener : listeners) {
    auto found = owners.by_inode.find(listener.inode);
    const std::vector<ProcessInfo> shown =
        found != owners.by_inode.end() ? found->second : std::vector<ProcessInfo>{{}};
    for (const ProcessInfo& process : shown) {
      Labels labels = {{"address", AddressText(listener.endpoint)},
                       {"family", listener.endpoint.ipv6 ? "ipv6" : "ipv4"},
                       {"port", std::to_string(listener.port)},
                       {"process", process.pid != 0 ? process.command : "unknown"},
                       {"protocol", std::string(netlink::ProtocolName(listener.protocol))}};
      if (options.pid_label) {
        labels.push_back({"pid", process.pid != 0 ? std::to_string(process.pid) : ""});
      }
      series.insert(std::move(labels));
    }
  }
  return series;
}

/// The service families, filled report by report and moved out together in a stable order.
class ServiceFamilies {
 public:
  void Add(const ServiceReport& report) {
    AddIdentity(report);
    AddHolders(report);
    AddPrediction(report.service.name, "false", report.without_reuse);
    AddPrediction(report.service.name, "true", report.with_reuse);
    const Labels name = {{"service", report.service.name}};
    time_wait_.Add(name, report.time_wait_remaining_seconds);
    in_range_.Add(name, report.in_ephemeral_range && !report.reserved ? 1 : 0);
  }

  void MoveTo(std::vector<prometheus::MetricFamily>& out) {
    for (FamilyBuilder* family :
         {&info_, &up_, &owner_processes_, &expected_, &matching_, &conflict_, &sockets_,
          &prediction_, &blockers_, &time_wait_, &in_range_}) {
      family->MoveTo(out);
    }
  }

 private:
  void AddIdentity(const ServiceReport& report) {
    const ServiceConfig& service = report.service;
    info_.Add({{"address", service.address},
               {"port", std::to_string(service.port)},
               {"protocol", service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp"},
               {"service", service.name}},
              1);
    expected_.Add({{"service", service.name}}, service.instances);
    for (const auto& [state, count] : report.sockets_by_state) {
      sockets_.Add({{"service", service.name}, {"state", state}}, static_cast<double>(count));
    }
  }

  void AddHolders(const ServiceReport& report) {
    const ServiceHolders& holders = report.holders;
    const Labels name = {{"service", report.service.name}};
    up_.Add(name, holders.owned_listeners > 0 ? 1 : 0);
    owner_processes_.Add(name, static_cast<double>(holders.owned_listeners));
    if (holders.matching_processes) {
      matching_.Add(name, static_cast<double>(*holders.matching_processes));
    }
    // One series per holder command: a pre-forked intruder is one conflict, not one per worker.
    std::set<std::string> commands;
    for (const ProcessInfo& process : holders.foreign_holders) {
      commands.insert(process.command);
    }
    if (holders.invisible_holders) {
      commands.insert("unknown");
    }
    for (const std::string& command : commands) {
      conflict_.Add({{"holder", command}, {"service", report.service.name}}, 1);
    }
  }

  void AddPrediction(const std::string& service, const char* so_reuseaddr,
                     const BindPrediction& result) {
    for (Verdict verdict : {Verdict::kFree, Verdict::kBlocked, Verdict::kUnknown}) {
      prediction_.Add(
          {{"result", VerdictName(verdict)}, {"service", service}, {"so_reuseaddr", so_reuseaddr}},
          result.verdict == verdict ? 1 : 0);
    }
    for (const auto& [state, count] : result.blockers_by_state) {
      blockers_.Add({{"service", service}, {"so_reuseaddr", so_reuseaddr}, {"state", state}},
                    static_cast<double>(count));
    }
  }

  FamilyBuilder info_{"portwatch_service_info",
                      "A configured service: the port it should own. Constant 1.",
                      MetricType::Gauge};
  FamilyBuilder up_{"portwatch_service_up",
                    "Whether a process matching the service's owner listens on its port.",
                    MetricType::Gauge};
  FamilyBuilder owner_processes_{
      "portwatch_service_owner_processes",
      "Listening sockets on the service's port held by processes matching the owner (the workers "
      "of a pre-forked server share one); above portwatch_service_expected_instances means "
      "duplicate instances (SO_REUSEPORT).",
      MetricType::Gauge};
  FamilyBuilder expected_{"portwatch_service_expected_instances",
                          "The number of owning processes the config expects (instances).",
                          MetricType::Gauge};
  FamilyBuilder matching_{"portwatch_service_matching_processes",
                          "Running processes in the exporter's network namespace that match the "
                          "owner, listening or not (the `ps -ef | grep` check): more than "
                          "owner_processes means an instance failed to bind.",
                          MetricType::Gauge};
  FamilyBuilder conflict_{"portwatch_service_conflict",
                          "A process that is not the owner holds a socket on the service's "
                          "address and port (holder: its command, or \"unknown\" when not "
                          "visible).",
                          MetricType::Gauge};
  FamilyBuilder sockets_{"portwatch_service_sockets",
                         "Sockets on the service's port by state, whatever their address.",
                         MetricType::Gauge};
  FamilyBuilder prediction_{
      "portwatch_service_bind_prediction",
      "Whether a fresh bind() to the service's address and port, without and with SO_REUSEADDR, "
      "would fail right now: 1 on the predicted result (free, blocked, unknown).",
      MetricType::Gauge};
  FamilyBuilder blockers_{"portwatch_service_bind_blockers",
                          "Sockets that make the predicted bind fail, by state.",
                          MetricType::Gauge};
  FamilyBuilder time_wait_{"portwatch_service_time_wait_remaining_seconds",
                           "Seconds until the last TIME_WAIT socket on the service's address and "
                           "port expires (0: none): when a blocked restart would succeed.",
                           MetricType::Gauge};
  FamilyBuilder in_range_{"portwatch_service_port_in_ephemeral_range",
                          "1 when the service's port lies in net.ipv4.ip_local_port_range and "
                          "not in ip_local_reserved_ports: outgoing connections can take it.",
                          MetricType::Gauge};
};

}  // namespace

void AppendListenerMetrics(const std::vector<ListeningSocket>& listeners, uint64_t dropped,
                           const SocketOwners& owners, const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out) {
  const std::set<Labels> series = ListenerSeries(listeners, owners, options);
  FamilyBuilder info("portwatch_listener_info",
                     "A listening socket (TCP LISTEN, or bound unconnected UDP) and the process "
                     "holding it, \"unknown\" when not visible: the `netstat -tulpn` view.",
                     MetricType::Gauge);
  size_t kept = 0;
  for (const Labels& labels : series) {
    if (kept++ < options.max_listener_series) {
      info.Add(labels, 1);
    }
  }
  info.MoveTo(out);
  const size_t over_cap = series.size() - std::min(series.size(), options.max_listener_series);
  FamilyBuilder("portwatch_listener_info_dropped",
                "Listener series left out because collectors.services.max_listener_series was "
                "reached.",
                MetricType::Gauge)
      .Add(static_cast<double>(over_cap + dropped))
      .MoveTo(out);
}

void AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                          std::vector<prometheus::MetricFamily>& out) {
  ServiceFamilies families;
  for (const ServiceReport& report : reports) {
    families.Add(report);
  }
  families.MoveTo(out);
}

}  // namespace portwatch
