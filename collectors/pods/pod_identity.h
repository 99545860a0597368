#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portwatch {

/// Where the kubelet keeps one directory per pod, named <namespace>_<pod-name>_<pod-uid>. The
/// cgroup path knows only the pod's uid; this directory is the one node-local place that also
/// knows its name, without asking the API server.
constexpr char kDefaultLogPodsDir[] = "/var/log/pods";

/// The pod (and container) a process runs in, as its cgroup path tells.
struct CgroupContainer {
  /// Lower-case 8-4-4-4-12 with dashes, however the cgroup path spelled it (the systemd driver
  /// writes underscores). A static pod whose manifest sets no uid gets the kubelet's md5 of the
  /// manifest, 32 hex digits without dashes, and keeps that form: it is what /var/log/pods uses.
  std::string pod_uid;
  /// The runtime's 64-hex container id; empty for a process in the pod's own cgroup (the pause
  /// process on some setups) and for CRI-O's conmon (see ParseCgroupContainer).
  std::string container_id;

  bool operator==(const CgroupContainer&) const = default;
};

/// The pod of a process from the whole text of /proc/<pid>/cgroup: cgroup v1 lines
/// "ID:controllers:/path", the v2 line "0::/path", or both (hybrid hosts). The first line naming
/// a pod and a container wins, else the first naming only a pod. Understands the cgroupfs driver
/// (".../kubepods[/besteffort|/burstable]/pod<uid>/<id>") and the systemd driver
/// ("...kubepods[-qos]-pod<uid_>.slice/<runtime>-<id>.scope") anywhere in the path, so a prefix
/// (kind's kubelet.slice, "/docker/<id>/" of a node in a container) and the "/../" paths seen
/// from inside a cgroup namespace work too. When pods nest, the innermost one is the process's.
/// Below the container's cgroup anything is ignored (crun's ".../crio-<id>.scope/container").
///
/// CRI-O's conmon ("crio-conmon-<id>.scope") lives in the pod's cgroup but not in any
/// container's namespaces, its network namespace included: it is reported as the pod's with an
/// empty container_id rather than with the id of the container it monitors, which would claim
/// it shares that container's namespaces. A caller mapping network namespaces to pods should
/// still not trust one process alone: conmon and host-network pods share the host's namespace.
///
/// nullopt for a process outside any pod ("/init.scope", "/system.slice/...", "/") and for
/// anything malformed: a pod uid that is no uid, a container id that is not 64 hex digits.
/// Linear in the text: no regular expression, whatever the input.
std::optional<CgroupContainer> ParseCgroupContainer(std::string_view proc_pid_cgroup);

/// `uid` in the form CgroupContainer::pod_uid uses (8-4-4-4-12 with '-' or '_', any case; or 32
/// hex digits), or nullopt when it is neither.
std::optional<std::string> CanonicalPodUid(std::string_view uid);

struct PodName {
  std::string namespace_name;
  std::string pod;

  bool operator==(const PodName&) const = default;
};

/// The pods the kubelet knows on this node, by uid, from the names of the /var/log/pods
/// entries. Never throws: a directory that cannot be read gives an empty index and Error().
class PodDirectory {
 public:
  PodDirectory() = default;
  /// From entry names as a directory listing gives them ("kube-system_coredns-5d78c9869d-abcde_
  /// 0b5c...-...."). Names that do not parse, and a second name for a uid already seen, are
  /// skipped and counted; names are taken in sorted order so which one wins does not depend on
  /// the listing's order.
  explicit PodDirectory(std::vector<std::string> entry_names);

  /// Lists `log_pods_dir`. A missing or unreadable directory gives an empty index and the reason
  /// in Error(); an error part way through keeps the entries read so far.
  static PodDirectory Read(const std::string& log_pods_dir = kDefaultLogPodsDir);

  /// The pod with this uid, in any spelling CanonicalPodUid accepts.
  std::optional<PodName> Find(const std::string& pod_uid) const;

  size_t Size() const { return by_uid_.size(); }
  /// Entries whose names do not parse (or repeat a uid).
  size_t Skipped() const { return skipped_; }
  /// Empty when the directory was read whole.
  const std::string& Error() const { return error_; }

 private:
  std::map<std::string, PodName, std::less<>> by_uid_;
  size_t skipped_ = 0;
  std::string error_;
};

}  // namespace portwatch
