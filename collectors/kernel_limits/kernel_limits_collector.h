#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/metric_family.h>

#include "collectors/collector.h"
#include "collectors/netns/pod_namespaces.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// The sysctls of one network namespace that kernel_limits exposes, as read: nullopt when a file
/// could not be read. Each network namespace has its own (a pod sets them as safe sysctls).
struct KernelLimitTexts {
  std::optional<std::string> max_tw_buckets;  ///< net.ipv4.tcp_max_tw_buckets
  std::optional<std::string> port_range;      ///< net.ipv4.ip_local_port_range
  std::optional<std::string> reserved_ports;  ///< net.ipv4.ip_local_reserved_ports
};

/// One pod's texts, and the labels its series carry ({namespace, pod}).
struct PodKernelLimitTexts {
  std::vector<prometheus::ClientMetric::Label> labels;
  std::string uid;  ///< for the log
  KernelLimitTexts texts;
};

/// A setting of a pod that could not be read or parsed.
struct UnreadablePodSetting {
  size_t pod = 0;       ///< index into the pods given
  std::string setting;  ///< the sysctl, "net.ipv4.tcp_max_tw_buckets"
};

/// What BuildKernelLimitFamilies made of the texts.
struct KernelLimitFamilies {
  std::vector<prometheus::MetricFamily> families;
  /// The node's settings that could not be read or parsed, in exposition order.
  std::vector<std::string> node_unreadable;
  std::vector<UnreadablePodSetting> pods_unreadable;
};

/// The kernel_limits families from the texts, with no reading: the node's row (no labels) and
/// each pod's (its labels) in one family per metric. A setting that cannot be parsed leaves out
/// that namespace's rows of the families it feeds, and nothing else. With `pods` (nullopt: pods
/// are not read) portwatch_pod_kernel_settings_unreadable counts, per setting, the pods left out.
KernelLimitFamilies BuildKernelLimitFamilies(
    const KernelLimitTexts& node, const std::optional<std::vector<PodKernelLimitTexts>>& pods);

/// Kernel limits that decide when TIME_WAIT and ephemeral ports run out: the node's and, with
/// collectors.sockets.pods, each pod's own (its network namespace's sysctls).
class KernelLimitsCollector : public Collector {
 public:
  /// `pods`: the node's pods, shared with the other collectors that look inside them; nullptr:
  /// the node's settings only.
  explicit KernelLimitsCollector(ProcFs procfs, std::shared_ptr<PodNamespaces> pods = nullptr)
      : procfs_(std::move(procfs)), pods_(std::move(pods)) {}

  std::string_view Name() const override { return "kernel_limits"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

 private:
  /// The texts of every pod entered (those that could not be are counted by the sockets
  /// collector's portwatch_pod_network_namespaces{state="failed"}), by namespace inode.
  std::vector<PodKernelLimitTexts> ReadPods(const SocketsConfig& options) const;

  ProcFs procfs_;
  std::shared_ptr<PodNamespaces> pods_;
};

}  // namespace portwatch
