#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <prometheus/client_metric.h>

#include "collectors/common/result.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/namespace_sockets.h"
#include "collectors/pods/pod_identity.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// A pod's network namespace, as one discovery saw it.
struct PodNamespace {
  uint64_t inode = 0;
  pid_t pid = 0;               ///< the lowest pid inside (the pod's sandbox on Kubernetes)
  std::string uid;             ///< the pod's uid, from a process's cgroup
  std::string namespace_name;  ///< from the kubelet's pod log directory; empty when not there
  std::string name;            ///< the pod's name, or its uid when the directory lacks it
  bool entered = false;        ///< a sock_diag socket and its sysctls are kept for it
  std::string enter_error;     ///< why it could not be entered (when !entered)

  /// {namespace, pod}: the labels every per-pod series carries.
  std::vector<prometheus::ClientMetric::Label> Labels() const;
};

/// What one pass over /proc found.
struct PodDiscovery {
  std::vector<PodNamespace> pods;     ///< by inode, ascending
  uint64_t processes_unreadable = 0;  ///< processes whose namespace could not be read
  size_t not_pods = 0;                ///< other namespaces outside Kubernetes (`ip netns`, ...)
  /// The kubelet's pod log directory as this discovery read it: it also names the pods that
  /// share the node's namespace (hostNetwork), which are not in `pods`.
  PodDirectory directory;
  std::chrono::steady_clock::time_point at;

  /// The pod of network namespace `inode`, or nullptr (the node's own, or not a pod).
  const PodNamespace* Find(uint64_t inode) const;
  /// The pods that could not be entered.
  size_t EnterFailures() const;
};

/// The node's pods' network namespaces, shared by the collectors that look inside pods (sockets,
/// services, kernel_limits, bind_events), so that one scrape walks /proc and enters each
/// namespace once whatever the number of collectors.
///
/// Discovery is a pass over every /proc/<pid>/ns/net (hostPID: the node's processes), grouped by
/// namespace inode; the pod is named from a process's cgroup and the kubelet's pod log
/// directory. Each pod's namespace is entered once (NamespaceSockets) and its socket kept until
/// the namespace is gone. Thread-safe.
class PodNamespaces {
 public:
  /// What a collector running after another in the same scrape passes to Discover(): the
  /// collectors of one scrape run one after the other, well within it, and scrapes are seconds
  /// apart. The first collector of a scrape passes zero.
  static constexpr std::chrono::milliseconds kSameScrape{1000};

  explicit PodNamespaces(ProcFs procfs);

  /// The pods now: a new discovery unless the last one (with the same directory) is younger
  /// than `reuse_younger_than`. Never fails: what cannot be read is counted in the result.
  std::shared_ptr<const PodDiscovery> Discover(
      const std::string& pod_logs_dir,
      std::chrono::steady_clock::duration reuse_younger_than = std::chrono::seconds(0));
  /// The last discovery, without looking again (nullptr before the first or after Close()).
  std::shared_ptr<const PodDiscovery> Latest() const;
  /// Lets go of every namespace (pods turned off by a reload: a kept socket keeps a gone pod's
  /// namespace alive).
  void Close();

  /// A transport for one scrape of pod namespace `inode` (over a duplicate of its kept socket).
  Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const;
  /// What `make` returns when run inside pod namespace `inode` (see
  /// NamespaceSockets::CreateInside): a BPF socket iterator's walk of the pod's sockets.
  Result<netlink::UniqueFd> CreateInside(uint64_t inode, const NamespaceWorker::Make& make) const;
  /// The current text of one of the pod namespace's own sysctls.
  std::optional<std::string> Setting(uint64_t inode, NamespaceSetting setting) const;
  std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const;
  /// See NamespaceSockets::HasPrivateHash.
  bool HasPrivateHash(uint64_t inode) const;
  /// Namespaces entered and kept.
  size_t Entered() const;

 private:
  ProcFs procfs_;
  mutable std::mutex mutex_;
  NamespaceSockets sockets_;
  std::shared_ptr<const PodDiscovery> latest_;
  std::string latest_dir_;
  bool warned_no_pods_ = false;  ///< the one log line when no pod could be entered
};

}  // namespace portwatch
