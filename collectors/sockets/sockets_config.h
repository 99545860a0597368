#pragma once

#include <cstddef>
#include <string>

#include "collectors/socket_source/socket_source.h"

namespace YAML {
class Node;
}  // namespace YAML

namespace portwatch {

/// Options of the sockets collector.
struct SocketsConfig {
  bool tcp = true;
  bool udp = true;
  /// Whether `protocol`'s table is read (tcp or udp above).
  bool Reads(netlink::Protocol protocol) const {
    return protocol == netlink::Protocol::kTcp ? tcp : udp;
  }
  bool ipv4 = true;
  bool ipv6 = true;
  /// Distinct (protocol, port) values in portwatch_sockets; listening ports are always kept.
  size_t max_port_series = 1000;
  /// Distinct (protocol, peer_port) values in portwatch_peer_sockets.
  size_t max_peer_port_series = 100;
  /// Busiest remote address:port destinations of client-side sockets to expose.
  size_t top_destinations = 10;
  /// Also count TCP sockets that are bound but neither listening nor connected (Linux 6.10+).
  /// Costs a walk of the kernel's bind hash: about 30% more kernel time per scrape.
  bool bound_inactive = false;
  /// Also count the sockets of every pod's network namespace (found through /proc with hostPID),
  /// labelled with the pod's namespace and name. Needs CAP_SYS_ADMIN (setns) and CAP_SYS_PTRACE.
  /// On a node without pods it costs one readlink per process per scrape.
  bool pods = true;
  /// The kubelet's pod log directory: its entries <namespace>_<pod>_<uid> name the pods.
  std::string pod_logs_dir = "/var/log/pods";
  /// Per pod, as max_port_series, max_peer_port_series and top_destinations are for the node:
  /// a pod's listening ports and the configured services' ports always keep their series.
  size_t pod_max_port_series = 20;
  size_t pod_max_peer_port_series = 10;
  size_t pod_top_destinations = 3;
  /// The series every pod's sockets may add to a scrape together; beyond it, the pods with the
  /// most series fold theirs into per-state totals (see FitPodsToBudget).
  size_t max_pod_series = 20000;
  /// Pods sharing the node's TCP hash are re-read in turn within a cost budget per scrape; a
  /// pod's counts older than this are re-read even past the budget (one a scrape, more while a
  /// second budget of the same size lasts): portwatch_pod_sockets_age_seconds stays under it
  /// whenever the node can afford that.
  size_t pod_counts_max_age_seconds = 600;
  /// What reads the socket tables of the exporter's network namespace: BPF socket iterators
  /// (SO_REUSEADDR of every socket, one walk for both families) or sock_diag; `auto` takes the
  /// iterators where they load and the kernel walks exactly once.
  SocketBackendSetting backend = SocketBackendSetting::kAuto;

  bool operator==(const SocketsConfig&) const = default;
};

/// Whether `config` counts pods on a node that runs them: pods on and the kubelet's pod log
/// directory present. Only then are the capabilities for entering pods asked for (a plain host
/// running the exporter under systemd is not told it lacks them).
bool CountsPodsOnThisNode(const SocketsConfig& config);

/// Reads the `collectors.sockets` section (`path` names it in errors); null means defaults.
/// Throws ConfigProblem.
SocketsConfig ParseSocketsConfig(const YAML::Node& node, const std::string& path);

}  // namespace portwatch
