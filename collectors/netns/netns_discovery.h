#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "collectors/pods/pod_identity.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// A process and the inode of its network namespace.
struct ProcessNamespace {
  pid_t pid = 0;
  uint64_t netns = 0;
};

/// A network namespace other than the exporter's, and a way in: a process that lives in it.
struct NetworkNamespace {
  uint64_t inode = 0;
  /// The lowest pid in it. On Kubernetes that is the pod's sandbox (pause) process, which holds
  /// the namespace for the pod's life.
  pid_t pid = 0;
  /// The pod of the first of its processes (lowest pid first) whose cgroup names one; nullopt
  /// for namespaces outside Kubernetes (`ip netns`, a plain container).
  std::optional<CgroupContainer> pod;
};

/// Every process's network namespace under `procfs` (/proc with hostPID: the node's). Processes
/// that vanish or whose namespace cannot be read (no ptrace access) are counted in `unreadable`.
std::vector<ProcessNamespace> ReadProcessNamespaces(const ProcFs& procfs, uint64_t& unreadable);

/// Groups processes by network namespace, leaving out `own` (the exporter's), and names each
/// namespace's pod from the cgroups `read_cgroup` returns (the text of /proc/<pid>/cgroup, or
/// nullopt). At most `kCgroupsTried` processes per namespace are asked, lowest pid first: a pod's
/// namespace holds only the pod's processes, so the first answer settles it.
std::vector<NetworkNamespace> GroupByNamespace(
    std::vector<ProcessNamespace> processes, uint64_t own,
    const std::function<std::optional<std::string>(pid_t)>& read_cgroup);

constexpr size_t kCgroupsTried = 3;

}  // namespace portwatch
