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

/// Appends `name`="`value`" unless the value is empty: Prometheus reads a missing label as an
/// empty one, so leaving it out keeps every series of a family the same shape.
void AddLabel(Labels& labels, const char* name, const std::string& value) {
  if (!value.empty()) {
    labels.push_back({name, value});
  }
}

/// The namespace, pod and container a listener of `scope` held by `process` is labelled with.
struct Placement {
  std::string namespace_name;
  std::string pod;
  std::string container;
};

Placement PlaceListener(const ServiceScope& scope, const ProcessInfo& process,
                        const HolderPods& holder_pods) {
  Placement placement;
  const auto found =
      process.pid != 0 ? holder_pods.containers.find(process.pid) : holder_pods.containers.end();
  const CgroupContainer* container =
      found != holder_pods.containers.end() ? &found->second : nullptr;
  if (scope.InPod()) {
    placement.namespace_name = scope.namespace_name;
    placement.pod = scope.pod;
    // Only a container of this pod: a process of another pod holding the socket (passed over a
    // unix socket) does not run in this pod's containers.
    if (container != nullptr && container->pod_uid == scope.pod_uid) {
      placement.container = container->container_id;
    }
  } else if (container != nullptr) {
    // The node's namespace: a hostNetwork pod's process.
    const auto named = holder_pods.pods.find(container->pod_uid);
    placement.namespace_name = named != holder_pods.pods.end() ? named->second.namespace_name : "";
    placement.pod = named != holder_pods.pods.end() ? named->second.pod : container->pod_uid;
    placement.container = container->container_id;
  }
  if (!placement.container.empty()) {
    placement.container = holder_pods.container_names.NameOf(placement.container);
  }
  return placement;
}

/// The label sets of portwatch_listener_info, deduplicated and sorted: the workers of a
/// pre-forked server share one socket and show once per process, not once per fd.
std::set<Labels> ListenerSeries(const std::vector<ScopedListeners>& namespaces,
                                const SocketOwners& owners, const HolderPods& holder_pods,
                                const ServicesOptions& options) {
  std::set<Labels> series;
  for (const ScopedListeners& scoped : namespaces) {
    for (const ListeningSocket& listener : *scoped.listeners) {
      auto found = owners.by_inode.find(listener.inode);
      const std::vector<ProcessInfo> shown =
          found != owners.by_inode.end() ? found->second : std::vector<ProcessInfo>{{}};
      for (const ProcessInfo& process : shown) {
        const Placement placement = PlaceListener(scoped.scope, process, holder_pods);
        Labels labels = {{"address", AddressText(listener.endpoint)}};
        AddLabel(labels, "container", placement.container);
        labels.push_back({"family", listener.endpoint.ipv6 ? "ipv6" : "ipv4"});
        AddLabel(labels, "namespace", placement.namespace_name);
        AddLabel(labels, "pod", placement.pod);
        labels.push_back({"port", std::to_string(listener.port)});
        labels.push_back({"process", process.pid != 0 ? process.command : "unknown"});
        labels.push_back({"protocol", std::string(netlink::ProtocolName(listener.protocol))});
        if (options.pid_label) {
          labels.push_back({"pid", process.pid != 0 ? std::to_string(process.pid) : ""});
        }
        series.insert(std::move(labels));
      }
    }
  }
  return series;
}

/// A service sample's labels: `labels` and, for a report made in a pod, its namespace and pod.
Labels Scoped(const ServiceReport& report, Labels labels) {
  const Labels scope = report.scope.Labels();
  labels.insert(labels.end(), scope.begin(), scope.end());
  return labels;
}

/// The service families, filled report by report and moved out together in a stable order.
class ServiceFamilies {
 public:
  void Add(const ServiceReport& report) {
    AddIdentity(report);
    AddHolders(report);
    AddPrediction(report, "false", report.without_reuse);
    AddPrediction(report, "true", report.with_reuse);
    const Labels name = Scoped(report, {{"service", report.service.name}});
    time_wait_.Add(name, report.time_wait_remaining_seconds);
    in_range_.Add(name, report.in_ephemeral_range && !report.reserved ? 1 : 0);
  }

  void MoveTo(std::vector<prometheus::MetricFamily>& out) {
    for (FamilyBuilder* family :
         {&info_, &up_, &owner_processes_, &listening_sockets_, &expected_, &matching_, &conflict_,
          &sockets_, &prediction_, &blockers_, &time_wait_, &in_range_}) {
      family->MoveTo(out);
    }
  }

 private:
  void AddIdentity(const ServiceReport& report) {
    const ServiceConfig& service = report.service;
    info_.Add(
        Scoped(report, {{"address", service.address},
                        {"port", std::to_string(service.port)},
                        {"protocol", service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp"},
                        {"service", service.name}}),
        1);
    expected_.Add(Scoped(report, {{"service", service.name}}), service.instances);
    for (const auto& [state, count] : report.sockets_by_state) {
      sockets_.Add(Scoped(report, {{"service", service.name}, {"state", state}}),
                   static_cast<double>(count));
    }
  }

  void AddHolders(const ServiceReport& report) {
    const ServiceHolders& holders = report.holders;
    const Labels name = Scoped(report, {{"service", report.service.name}});
    up_.Add(name, holders.owned_listeners > 0 ? 1 : 0);
    owner_processes_.Add(name, static_cast<double>(holders.instances));
    listening_sockets_.Add(name, static_cast<double>(holders.owned_listeners));
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
      conflict_.Add(Scoped(report, {{"holder", command}, {"service", report.service.name}}), 1);
    }
  }

  void AddPrediction(const ServiceReport& report, const char* so_reuseaddr,
                     const BindPrediction& result) {
    const std::string& service = report.service.name;
    for (Verdict verdict : {Verdict::kFree, Verdict::kBlocked, Verdict::kUnknown}) {
      prediction_.Add(Scoped(report, {{"result", VerdictName(verdict)},
                                      {"service", service},
                                      {"so_reuseaddr", so_reuseaddr}}),
                      result.verdict == verdict ? 1 : 0);
    }
    for (const auto& [state, count] : result.blockers_by_state) {
      blockers_.Add(
          Scoped(report, {{"service", service}, {"so_reuseaddr", so_reuseaddr}, {"state", state}}),
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
      "Instances of the service listening on its port: its listening sockets held by processes "
      "matching the owner, grouped by process (the sockets of one process, and of the workers a "
      "matching master forked, are one instance, SO_REUSEPORT groups included); above "
      "portwatch_service_expected_instances means duplicate instances.",
      MetricType::Gauge};
  FamilyBuilder listening_sockets_{
      "portwatch_service_listening_sockets",
      "Listening sockets on the service's port held by processes matching the owner: the workers "
      "of a pre-forked server share one, an SO_REUSEPORT group has one per member.",
      MetricType::Gauge};
  FamilyBuilder expected_{"portwatch_service_expected_instances",
                          "The number of owning processes the config expects (instances).",
                          MetricType::Gauge};
  FamilyBuilder matching_{"portwatch_service_matching_processes",
                          "Running processes in the service's network namespace (the node's, or "
                          "the pod's) that match the owner, listening or not (the `ps -ef | grep` "
                          "check; a master and its workers count one each): more than "
                          "owner_processes on a server that forks no workers means an instance "
                          "failed to bind.",
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

void AppendListenerMetrics(const std::vector<ScopedListeners>& namespaces, uint64_t dropped,
                           const SocketOwners& owners, const HolderPods& holder_pods,
                           const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out) {
  const std::set<Labels> series = ListenerSeries(namespaces, owners, holder_pods, options);
  FamilyBuilder info("portwatch_listener_info",
                     "A listening socket (TCP LISTEN, or bound unconnected UDP) and the process "
                     "holding it, \"unknown\" when not visible: the `netstat -tulpn` view. A "
                     "pod's listeners, and those of a pod's process in the node's namespace "
                     "(hostNetwork), carry namespace, pod and container.",
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

void AppendListenerMetrics(const std::vector<ListeningSocket>& listeners, uint64_t dropped,
                           const SocketOwners& owners, const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out) {
  AppendListenerMetrics({ScopedListeners{ServiceScope{}, &listeners}}, dropped, owners,
                        HolderPods{}, options, out);
}

void AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                          std::vector<prometheus::MetricFamily>& out) {
  ServiceFamilies families;
  for (const ServiceReport& report : reports) {
    families.Add(report);
  }
  families.MoveTo(out);
}

void AppendServicePods(const std::map<std::string, size_t>& pods_by_service,
                       std::vector<prometheus::MetricFamily>& out) {
  if (pods_by_service.empty()) {
    return;
  }
  FamilyBuilder pods("portwatch_service_pods",
                     "Pods a service with a pods selector was evaluated in this scrape: matching "
                     "pods whose network namespace could be entered and read. 0: the service has "
                     "no other series.",
                     MetricType::Gauge);
  for (const auto& [service, count] : pods_by_service) {
    pods.Add({{"service", service}}, static_cast<double>(count));
  }
  pods.MoveTo(out);
}

}  // namespace portwatch
