#include "collectors/kernel_limits/kernel_limits_collector.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"

namespace portwatch {

namespace {

constexpr const char* kMaxTimeWaitBuckets = "net.ipv4.tcp_max_tw_buckets";
constexpr const char* kPortRange = "net.ipv4.ip_local_port_range";
constexpr const char* kReservedPorts = "net.ipv4.ip_local_reserved_ports";

/// What one namespace's texts parse to; a field is nullopt when its text is missing or malformed.
struct NamespaceLimits {
  std::optional<int64_t> max_tw_buckets;
  std::optional<EphemeralRange> range;
  std::optional<std::vector<uint16_t>> reserved;

  /// The settings that did not parse, in exposition order.
  std::vector<std::string> Unreadable() const {
    std::vector<std::string> names;
    if (!max_tw_buckets) {
      names.emplace_back(kMaxTimeWaitBuckets);
    }
    if (!range) {
      names.emplace_back(kPortRange);
    }
    if (!reserved) {
      names.emplace_back(kReservedPorts);
    }
    return names;
  }
  /// Ports connect() can pick: reserved ports are never handed out by connect() or an autobind.
  std::optional<double> PortsAvailable() const {
    if (!range || !reserved) {
      return std::nullopt;
    }
    const auto reserved_in_range =
        std::count_if(reserved->begin(), reserved->end(),
                      [this](uint16_t port) { return range->Contains(port); });
    return static_cast<double>(range->Size() - static_cast<uint32_t>(reserved_in_range));
  }
};

NamespaceLimits Parse(const KernelLimitTexts& texts) {
  NamespaceLimits limits;
  if (texts.max_tw_buckets) {
    limits.max_tw_buckets = ParseSingleInteger(*texts.max_tw_buckets);
  }
  if (texts.port_range) {
    limits.range = ParseEphemeralRange(*texts.port_range);
  }
  if (texts.reserved_ports) {
    limits.reserved = ParsePortList(*texts.reserved_ports);
  }
  return limits;
}

/// A FamilyBuilder that remembers whether it got a sample: a family no namespace could fill is
/// left out of the exposition, as before pods.
class LimitFamily {
 public:
  LimitFamily(std::string name, std::string help)
      : builder_(std::move(name), std::move(help), prometheus::MetricType::Gauge) {}

  void Add(const std::vector<prometheus::ClientMetric::Label>& labels,
           std::optional<double> value) {
    if (value) {
      builder_.Add(labels, *value);
      filled_ = true;
    }
  }
  void MoveTo(std::vector<prometheus::MetricFamily>& out) {
    if (filled_) {
      builder_.MoveTo(out);
    }
  }

 private:
  FamilyBuilder builder_;
  bool filled_ = false;
};

}  // namespace

KernelLimitFamilies BuildKernelLimitFamilies(
    const KernelLimitTexts& node, const std::optional<std::vector<PodKernelLimitTexts>>& pods) {
  LimitFamily buckets("portwatch_tcp_max_tw_buckets",
                      "net.ipv4.tcp_max_tw_buckets: TIME_WAIT sockets beyond this are destroyed at "
                      "once (counted in portwatch_tcpext_tcp_time_wait_overflow_total). The "
                      "node's, and each pod's own (labels namespace and pod).");
  LimitFamily first("portwatch_ephemeral_port_range_first",
                    "First port of net.ipv4.ip_local_port_range (IPv4 and IPv6). The node's, and "
                    "each pod's own (labels namespace and pod).");
  LimitFamily last("portwatch_ephemeral_port_range_last",
                   "Last port of net.ipv4.ip_local_port_range (IPv4 and IPv6). The node's, and "
                   "each pod's own (labels namespace and pod).");
  LimitFamily available("portwatch_ephemeral_ports_available",
                        "Ports connect() can pick: the size of ip_local_port_range less the "
                        "ip_local_reserved_ports inside it. The node's, and each pod's own "
                        "(labels namespace and pod).");
  const auto add = [&](const std::vector<prometheus::ClientMetric::Label>& labels,
                       const NamespaceLimits& limits) {
    buckets.Add(labels, limits.max_tw_buckets
                            ? std::optional(static_cast<double>(*limits.max_tw_buckets))
                            : std::nullopt);
    first.Add(labels, limits.range ? std::optional<double>(limits.range->first) : std::nullopt);
    last.Add(labels, limits.range ? std::optional<double>(limits.range->last) : std::nullopt);
    available.Add(labels, limits.PortsAvailable());
  };

  KernelLimitFamilies result;
  const NamespaceLimits node_limits = Parse(node);
  result.node_unreadable = node_limits.Unreadable();
  add({}, node_limits);
  // Pods left out, per setting; every setting has a row, zero included.
  std::map<std::string, size_t> pods_left_out = {
      {kMaxTimeWaitBuckets, 0}, {kPortRange, 0}, {kReservedPorts, 0}};
  if (pods) {
    for (size_t index = 0; index < pods->size(); ++index) {
      const PodKernelLimitTexts& pod = (*pods)[index];
      const NamespaceLimits limits = Parse(pod.texts);
      for (std::string& setting : limits.Unreadable()) {
        ++pods_left_out[setting];
        result.pods_unreadable.push_back({index, std::move(setting)});
      }
      add(pod.labels, limits);
    }
  }
  buckets.MoveTo(result.families);
  first.MoveTo(result.families);
  last.MoveTo(result.families);
  available.MoveTo(result.families);
  if (pods) {
    FamilyBuilder unreadable(
        "portwatch_pod_kernel_settings_unreadable",
        "Pods whose own sysctl (setting) could not be read or parsed this scrape: they have no "
        "series in the families it feeds (net.ipv4.tcp_max_tw_buckets: "
        "portwatch_tcp_max_tw_buckets; net.ipv4.ip_local_port_range: "
        "portwatch_ephemeral_port_range_first/_last and portwatch_ephemeral_ports_available; "
        "net.ipv4.ip_local_reserved_ports: portwatch_ephemeral_ports_available). Pods that could "
        "not be entered are counted in portwatch_pod_network_namespaces{state=\"failed\"}.",
        prometheus::MetricType::Gauge);
    for (const auto& [setting, count] : pods_left_out) {
      unreadable.Add({{"setting", setting}}, static_cast<double>(count));
    }
    unreadable.MoveTo(result.families);
  }
  return result;
}

std::vector<PodKernelLimitTexts> KernelLimitsCollector::ReadPods(
    const SocketsConfig& options) const {
  // The sockets collector, earlier in the scrape, has just looked: reuse what it found.
  const std::shared_ptr<const PodDiscovery> discovery =
      pods_->Discover(options.pod_logs_dir, PodNamespaces::kSameScrape);
  std::vector<PodKernelLimitTexts> pods;
  for (const PodNamespace& pod : discovery->pods) {
    if (!pod.entered) {
      continue;
    }
    PodKernelLimitTexts& read = pods.emplace_back();
    read.labels = pod.Labels();
    read.uid = pod.uid;
    // Files opened inside the pod's namespace: /proc/sys/net would show the exporter's own.
    read.texts.max_tw_buckets = pods_->Setting(pod.inode, NamespaceSetting::kMaxTimeWaitBuckets);
    read.texts.port_range = pods_->Setting(pod.inode, NamespaceSetting::kPortRange);
    read.texts.reserved_ports = pods_->Setting(pod.inode, NamespaceSetting::kReservedPorts);
  }
  return pods;
}

Status KernelLimitsCollector::Collect(const Config& config,
                                      std::vector<prometheus::MetricFamily>& out) {
  KernelLimitTexts node;
  node.max_tw_buckets = procfs_.ReadFile("sys/net/ipv4/tcp_max_tw_buckets");
  node.port_range = procfs_.ReadFile("sys/net/ipv4/ip_local_port_range");
  node.reserved_ports = procfs_.ReadFile("sys/net/ipv4/ip_local_reserved_ports");

  std::optional<std::vector<PodKernelLimitTexts>> pods;
  if (pods_ && config.sockets.pods) {
    pods = ReadPods(config.sockets);
  } else if (pods_ && pods_->Entered() != 0) {
    // Turned off by a reload (the sockets collector, when on, does the same): the kept sockets
    // would keep gone pods' namespaces alive.
    pods_->Close();
  }

  KernelLimitFamilies built = BuildKernelLimitFamilies(node, pods);
  for (const UnreadablePodSetting& unreadable : built.pods_unreadable) {
    spdlog::debug("{}", LogLine("kernel_limits: cannot read a pod's setting")
                            .Add("pod_uid", (*pods)[unreadable.pod].uid)
                            .Add("setting", unreadable.setting)
                            .Text());
  }
  std::move(built.families.begin(), built.families.end(), std::back_inserter(out));
  if (built.node_unreadable.empty()) {
    return {};
  }
  std::string unread = "cannot read ";  // every setting that could not be read, not just the first
  for (size_t i = 0; i < built.node_unreadable.size(); ++i) {
    unread += (i == 0 ? "" : ", ") + built.node_unreadable[i];
  }
  return Failure{unread};
}

}  // namespace portwatch
