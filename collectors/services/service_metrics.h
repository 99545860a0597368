#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/pods/pod_identity.h"
#include "collectors/procfs/socket_owners.h"
#include "collectors/services/container_names.h"
#include "collectors/services/service_report.h"
#include "collectors/services/services_config.h"
#include "collectors/services/socket_intake.h"

namespace portwatch {

/// The listeners of one network namespace: the node's own (an empty scope) or a pod's.
struct ScopedListeners {
  ServiceScope scope;
  const std::vector<ListeningSocket>* listeners = nullptr;  ///< not owned
};

/// What names the pod and container a listener's holder runs in.
struct HolderPods {
  /// The holders that run in a pod, by pid, as their /proc/<pid>/cgroup tells.
  std::map<pid_t, CgroupContainer> containers;
  /// Pod names by uid: for a holder in the node's namespace (a hostNetwork pod), whose pod is
  /// known only from its cgroup. A pod not named here is labelled with its uid.
  std::map<std::string, PodName> pods;
  ContainerNames container_names;
};

/// portwatch_listener_info: one series per listener and holding process, capped node-wide by
/// options.max_listener_series. A pod's listeners carry {namespace, pod}; a holder whose cgroup
/// names a container of that pod adds {container}. In the node's namespace a holder running in a
/// pod (hostNetwork) labels its listener with that pod and container; other holders add nothing.
/// And portwatch_listener_info_dropped: `dropped` listeners the intakes left out, plus the series
/// beyond the cap.
void AppendListenerMetrics(const std::vector<ScopedListeners>& namespaces, uint64_t dropped,
                           const SocketOwners& owners, const HolderPods& holder_pods,
                           const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out);
/// The node's listeners alone, without pod labels.
void AppendListenerMetrics(const std::vector<ListeningSocket>& listeners, uint64_t dropped,
                           const SocketOwners& owners, const ServicesOptions& options,
                           std::vector<prometheus::MetricFamily>& out);

/// The portwatch_service_* families, one sample set per report; a report made in a pod carries
/// its {namespace, pod}.
void AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                          std::vector<prometheus::MetricFamily>& out);

/// portwatch_service_pods: for each service with a pods selector, the pods it was evaluated in
/// this scrape (0: no pod matched, or none could be read; the service then has no other series).
void AppendServicePods(const std::map<std::string, size_t>& pods_by_service,
                       std::vector<prometheus::MetricFamily>& out);

}  // namespace portwatch
