#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/bpf/bind_events_abi.h"

namespace portwatch {

/// One counter key of the BPF map, decoded.
struct BindFailureKey {
  uint32_t netns = 0;
  uint16_t port = 0;
  uint8_t syscall = 0;  ///< portwatch_bind_syscall
  uint8_t err = 0;      ///< positive errno
  uint16_t family = 0;  ///< AF_INET, AF_INET6, 0 when unknown
  std::string comm;

  auto Tie() const { return std::tie(netns, port, syscall, err, family, comm); }
  bool operator<(const BindFailureKey& other) const { return Tie() < other.Tie(); }
  bool operator==(const BindFailureKey& other) const { return Tie() == other.Tie(); }
};

/// One failure as the ring buffer delivers it, decoded, for the log line.
struct BindFailureEvent {
  BindFailureKey key;
  pid_t pid = 0;
  uint32_t uid = 0;
  std::string address;  ///< "127.0.0.1", "::1"; empty when unknown (listen, unreadable sockaddr)
};

BindFailureKey DecodeBindKey(const portwatch_bind_key& raw);
BindFailureEvent DecodeBindEvent(const portwatch_bind_event& raw);

/// "bind", "listen", "connect"; "unknown" for anything else.
std::string_view SyscallLabel(uint8_t syscall);
/// "EADDRINUSE", "EADDRNOTAVAIL", "EACCES"; the number otherwise.
std::string ErrnoLabel(uint8_t err);
/// "ipv4", "ipv6", "unknown".
std::string_view FamilyLabel(uint16_t family);
/// The comm up to its NUL, at most 16 bytes; bytes that are not printable ASCII (and `"`, `\`)
/// become '_', so a label or a log line never carries control characters.
std::string CommLabel(const char* comm, size_t size);

/// The pod a network namespace belongs to: the labels {namespace, pod} of its series.
struct PodLabels {
  std::string namespace_name;  ///< empty when the kubelet's pod log directory does not name it
  std::string pod;             ///< the pod's name, or its uid when the directory lacks it

  // std::tie rather than a defaulted <=>, which clang-tidy's use-nullptr misreads.
  bool operator<(const PodLabels& other) const {
    return std::tie(namespace_name, pod) < std::tie(other.namespace_name, other.pod);
  }
  bool operator==(const PodLabels&) const = default;
};

/// The pod whose network namespace has inode `netns`, or nullopt: the node's own namespace, a
/// namespace that is no pod's (`ip netns`, a container outside Kubernetes), or one already gone.
using PodLookup = std::function<std::optional<PodLabels>(uint32_t netns)>;

/// The cumulative, cardinality-capped counters behind portwatch_bind_failures_total.
///
/// The kernel map holds one counter per (netns, syscall, errno, family, port, comm). Each scrape
/// hands the whole map to Update(); the increase of each key since the previous scrape is added
/// to the series its port maps to now, so every exposed series only ever grows, even when a port
/// later moves between its own series and port="other". Ports in `kept` (configured services,
/// listening sockets) always get their own label; other ports get one while fewer than
/// `max_port_series` ports have one (the busiest first), beyond that they fold into "other".
/// A port keeps its label once it has one.
///
/// Pods: with a PodLookup, the increase of a key in a pod's network namespace goes to a series
/// that also carries the pod's {namespace, pod}. The pod is the one the lookup names at this
/// scrape; when it names none (the pod went away between the failure and the scrape), the pod
/// this namespace was last attributed to, remembered by inode. So a series never changes its
/// labels: new increases go to the series of the pod they are attributed to now, and the older
/// series keeps its value (an inode the kernel reuses for another pod's namespace starts that
/// pod's own series). Once the lookup has not named a pod's namespace for
/// kForgetGonePodsAfter, that pod's series end (they are dropped, never lowered) and the inode
/// is forgotten: pod churn does not grow the series forever.
class BindFailureCounters {
 public:
  /// How long the series of a pod stay exposed once its network namespace is gone: long enough
  /// for a range query over the last minutes to see their final value.
  static constexpr std::chrono::minutes kForgetGonePodsAfter{10};

  struct Options {
    size_t max_port_series = 100;
    /// When not 0, only failures in this network namespace are exposed.
    uint32_t only_netns = 0;
  };

  /// `pods`: where the pods of namespaces are found (see the class comment); nullptr (pods not
  /// looked for, or turned off by a reload) labels nothing and drops the series of pods.
  /// `now`: when the scrape runs, for kForgetGonePodsAfter.
  void Update(const std::vector<std::pair<BindFailureKey, uint64_t>>& snapshot,
              const std::set<uint16_t>& kept_ports, const Options& options,
              const PodLookup& pods = nullptr,
              std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now());

  /// The kernel's counters start again from zero (the program was re-attached): the next
  /// snapshot is all increase. The exposed series keep their values.
  void ForgetKernelCounts() { last_.clear(); }

  /// portwatch_bind_failures_total and portwatch_bind_failures_port_series_folded.
  void AppendMetrics(std::vector<prometheus::MetricFamily>& out) const;

  /// The labels of one exposed series.
  struct SeriesKey {
    std::string syscall;
    std::string err;
    std::string family;
    std::string port;
    std::string process;
    uint32_t netns = 0;
    std::optional<PodLabels> pod;  ///< no {namespace, pod} labels when not a pod's

    bool operator<(const SeriesKey& other) const {
      return std::tie(syscall, err, family, port, process, netns, pod) <
             std::tie(other.syscall, other.err, other.family, other.port, other.process,
                      other.netns, other.pod);
    }
    bool operator==(const SeriesKey&) const = default;
  };
  const std::map<SeriesKey, uint64_t>& Series() const { return series_; }

 private:
  /// The pod the increases of namespace `netns` go to now (see the class comment); `found` is
  /// this scrape's lookup.
  std::optional<PodLabels> Attribute(uint32_t netns, const PodLookup& found);
  /// Ends the series of pods whose namespace the lookup has not named for kForgetGonePodsAfter.
  void ForgetGonePods(const PodLookup& found, std::chrono::steady_clock::time_point now);
  /// Pods turned off: no series carries pod labels any more.
  void ForgetPods();

  std::map<BindFailureKey, uint64_t> last_;
  std::set<uint16_t> labelled_ports_;  ///< ports outside `kept` that got their own label
  std::set<uint16_t> folded_ports_;    ///< ports that went into "other"
  std::map<SeriesKey, uint64_t> series_;
  std::map<uint32_t, PodLabels> pod_of_netns_;  ///< the pod each namespace was last attributed to
  /// Pods with series whose namespace the lookup no longer names, and since when.
  std::map<std::pair<uint32_t, PodLabels>, std::chrono::steady_clock::time_point> gone_since_;
};

}  // namespace portwatch
