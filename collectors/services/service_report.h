#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/client_metric.h>

#include "collectors/services/bind_prediction.h"
#include "collectors/services/service_holders.h"
#include "collectors/services/services_config.h"

namespace portwatch {

/// Where a service was evaluated: the node's own network namespace, or a pod's.
struct ServiceScope {
  uint64_t netns = 0;  ///< the pod's network namespace inode; 0: the node's own
  std::string pod_uid;
  std::string namespace_name;  ///< empty when the kubelet's pod log directory does not name it
  std::string pod;             ///< the pod's name, or its uid when not named

  bool InPod() const { return netns != 0; }
  /// {namespace, pod} in a pod (an empty value left out, as Prometheus reads it); none on the
  /// node.
  std::vector<prometheus::ClientMetric::Label> Labels() const {
    std::vector<prometheus::ClientMetric::Label> labels;
    if (InPod() && !namespace_name.empty()) {
      labels.push_back({"namespace", namespace_name});
    }
    if (InPod()) {
      labels.push_back({"pod", pod});
    }
    return labels;
  }
  /// "shop/web-0", or the pod alone when its namespace is not known.
  std::string PodText() const { return namespace_name.empty() ? pod : namespace_name + "/" + pod; }
};

/// Everything portwatch knows about one service's port right now: what the metrics show and
/// what the diagnose command prints.
struct ServiceReport {
  ServiceConfig service;
  ServiceScope scope;
  ServiceHolders holders;
  std::map<std::string, uint64_t> sockets_by_state;  ///< every socket on the port, by state name
  std::optional<bool> listener_reuse;                ///< SO_REUSEADDR of the current listener
  std::optional<bool> remembered_reuse;  ///< of the last listener seen (see ListenerMemory)
  BindPrediction without_reuse;
  BindPrediction with_reuse;
  double time_wait_remaining_seconds = 0;
  bool in_ephemeral_range = false;
  bool reserved = false;  ///< listed in ip_local_reserved_ports
};

}  // namespace portwatch
