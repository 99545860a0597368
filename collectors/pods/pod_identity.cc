#include "collectors/pods/pod_identity.h"

#include <dirent.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <memory>
#include <utility>

#include "collectors/common/result.h"

namespace portwatch {

namespace {

constexpr size_t kContainerIdLength = 64;
constexpr size_t kDashedUidLength = 36;
constexpr size_t kStaticPodUidLength = 32;
// Kubernetes' limits for a DNS label (namespace) and a DNS subdomain (pod name).
constexpr size_t kMaxNamespaceLength = 63;
constexpr size_t kMaxPodNameLength = 253;

bool IsHex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool AllHex(std::string_view text) { return std::all_of(text.begin(), text.end(), IsHex); }

std::string Lowered(std::string_view text) {
  std::string lowered(text);
  std::transform(lowered.begin(), lowered.end(), lowered.begin(), Lower);
  return lowered;
}

bool StripSuffix(std::string_view& text, std::string_view suffix) {
  if (!text.ends_with(suffix)) {
    return false;
  }
  text.remove_suffix(suffix.size());
  return true;
}

/// The non-empty components of a cgroup path; "/" has none.
std::vector<std::string_view> PathComponents(std::string_view path) {
  std::vector<std::string_view> components;
  while (!path.empty()) {
    const size_t slash = path.find('/');
    const std::string_view component = path.substr(0, slash);
    if (!component.empty()) {
      components.push_back(component);
    }
    if (slash == std::string_view::npos) {
      break;
    }
    path.remove_prefix(slash + 1);
  }
  return components;
}

/// The uid of a systemd-driver pod slice, "<parents>-pod<uid>.slice", where the parents (a
/// systemd slice name carries its whole ancestry) end in kubepods and an optional QoS class:
/// "kubepods-pod…", "kubepods-burstable-pod…", "kubelet-kubepods-besteffort-pod…".
std::optional<std::string> SystemdPodUid(std::string_view component) {
  if (!StripSuffix(component, ".slice")) {
    return std::nullopt;
  }
  const size_t pod = component.rfind("-pod");
  if (pod == std::string_view::npos) {
    return std::nullopt;
  }
  std::string_view parents = component.substr(0, pod);
  if (!StripSuffix(parents, "-besteffort")) {
    StripSuffix(parents, "-burstable");
  }
  if (parents != "kubepods" && !parents.ends_with("-kubepods")) {
    return std::nullopt;
  }
  return CanonicalPodUid(component.substr(pod + 4));
}

/// The uid of a cgroupfs-driver pod cgroup, "pod<uid>" right below kubepods or its QoS class.
/// ".." is a parent too: seen from inside a cgroup namespace, a path outside it climbs up to
/// the common ancestor ("/../../besteffort/pod<uid>/<id>"), so kubepods itself may be cut off.
std::optional<std::string> CgroupfsPodUid(std::string_view component, std::string_view parent) {
  if (!component.starts_with("pod")) {
    return std::nullopt;
  }
  if (parent != "kubepods" && parent != "besteffort" && parent != "burstable" && parent != "..") {
    return std::nullopt;
  }
  return CanonicalPodUid(component.substr(3));
}

/// "crio", "cri-containerd", "crio-conmon": dash-separated words of lower-case letters and
/// digits, which is all the runtimes use.
bool IsRuntimeName(std::string_view name) {
  bool after_dash = true;  // so that an empty name or word fails
  for (const char c : name) {
    if (c == '-') {
      if (after_dash) {
        return false;
      }
      after_dash = true;
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      after_dash = false;
    } else {
      return false;
    }
  }
  return !after_dash;
}

/// What the cgroup right below a pod's says about the container.
struct ContainerCgroup {
  bool valid = false;
  std::string id;  ///< empty for conmon
};

/// "<64hex>" (cgroupfs with containerd or docker), "<runtime>-<64hex>" (CRI-O with cgroupfs),
/// "<runtime>-<64hex>.scope" (systemd: cri-containerd, crio, docker, crio-conmon, ...).
ContainerCgroup ParseContainerCgroup(std::string_view component) {
  StripSuffix(component, ".scope");
  std::string_view runtime;
  std::string_view id = component;
  if (component.size() > kContainerIdLength) {
    const size_t dash = component.size() - kContainerIdLength - 1;
    if (component[dash] != '-') {
      return {};
    }
    runtime = component.substr(0, dash);
    id = component.substr(dash + 1);
    if (!IsRuntimeName(runtime)) {
      return {};
    }
  }
  if (id.size() != kContainerIdLength || !AllHex(id)) {
    return {};
  }
  // conmon shares none of the container's namespaces: see the header.
  if (runtime == "conmon" || runtime.ends_with("-conmon")) {
    return {true, ""};
  }
  return {true, Lowered(id)};
}

/// The pod of one cgroup path, or nullopt.
std::optional<CgroupContainer> ParseCgroupPath(std::string_view path) {
  if (!path.starts_with('/')) {
    return std::nullopt;
  }
  // cgroup v2 marks the cgroup of a process that outlived it (a zombie) this way.
  StripSuffix(path, " (deleted)");
  const std::vector<std::string_view> components = PathComponents(path);
  // From the end: with nested clusters the innermost pod holds the process.
  for (size_t i = components.size(); i-- > 0;) {
    std::optional<std::string> uid = SystemdPodUid(components[i]);
    if (!uid && i > 0) {
      uid = CgroupfsPodUid(components[i], components[i - 1]);
    }
    if (!uid) {
      continue;
    }
    CgroupContainer result{std::move(*uid), ""};
    if (i + 1 < components.size()) {
      ContainerCgroup container = ParseContainerCgroup(components[i + 1]);
      if (!container.valid) {
        return std::nullopt;
      }
      result.container_id = std::move(container.id);
    }
    return result;
  }
  return std::nullopt;
}

bool IsDnsLabelChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; }

/// One /var/log/pods entry name, "<namespace>_<pod-name>_<pod-uid>": the uid and the pod.
std::optional<std::pair<std::string, PodName>> ParseLogPodsEntry(std::string_view name) {
  const size_t first = name.find('_');
  const size_t last = name.rfind('_');
  if (first == std::string_view::npos || first == last) {
    return std::nullopt;
  }
  const std::string_view namespace_name = name.substr(0, first);
  const std::string_view pod = name.substr(first + 1, last - first - 1);
  if (namespace_name.empty() || namespace_name.size() > kMaxNamespaceLength ||
      !std::all_of(namespace_name.begin(), namespace_name.end(), IsDnsLabelChar)) {
    return std::nullopt;
  }
  if (pod.empty() || pod.size() > kMaxPodNameLength ||
      !std::all_of(pod.begin(), pod.end(), [](char c) { return IsDnsLabelChar(c) || c == '.'; })) {
    return std::nullopt;
  }
  std::optional<std::string> uid = CanonicalPodUid(name.substr(last + 1));
  if (!uid) {
    return std::nullopt;
  }
  return std::make_pair(std::move(*uid), PodName{std::string(namespace_name), std::string(pod)});
}

}  // namespace

std::optional<std::string> CanonicalPodUid(std::string_view uid) {
  if (uid.size() == kStaticPodUidLength) {
    return AllHex(uid) ? std::optional<std::string>(Lowered(uid)) : std::nullopt;
  }
  if (uid.size() != kDashedUidLength) {
    return std::nullopt;
  }
  constexpr std::array<size_t, 4> kSeparators = {8, 13, 18, 23};
  const char separator = uid[kSeparators[0]];
  if (separator != '-' && separator != '_') {
    return std::nullopt;
  }
  std::string canonical = Lowered(uid);
  for (size_t i = 0; i < canonical.size(); ++i) {
    const bool at_separator =
        std::find(kSeparators.begin(), kSeparators.end(), i) != kSeparators.end();
    if (at_separator) {
      if (canonical[i] != separator) {
        return std::nullopt;  // one spelling throughout, not a mix
      }
      canonical[i] = '-';
    } else if (!IsHex(canonical[i])) {
      return std::nullopt;
    }
  }
  return canonical;
}

std::optional<CgroupContainer> ParseCgroupContainer(std::string_view proc_pid_cgroup) {
  std::optional<CgroupContainer> pod_only;
  std::string_view rest = proc_pid_cgroup;
  while (!rest.empty()) {
    const size_t newline = rest.find('\n');
    const std::string_view line = rest.substr(0, newline);
    rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
    // "hierarchy-ID:controller-list:cgroup-path"; the path itself may hold a ':'.
    const size_t first_colon = line.find(':');
    if (first_colon == std::string_view::npos) {
      continue;
    }
    const size_t second_colon = line.find(':', first_colon + 1);
    if (second_colon == std::string_view::npos) {
      continue;
    }
    std::optional<CgroupContainer> found = ParseCgroupPath(line.substr(second_colon + 1));
    if (!found) {
      continue;
    }
    if (!found->container_id.empty()) {
      return found;
    }
    if (!pod_only) {
      pod_only = std::move(found);
    }
  }
  return pod_only;
}

PodDirectory::PodDirectory(std::vector<std::string> entry_names) {
  std::sort(entry_names.begin(), entry_names.end());
  for (const std::string& name : entry_names) {
    std::optional<std::pair<std::string, PodName>> entry = ParseLogPodsEntry(name);
    if (!entry || !by_uid_.emplace(std::move(entry->first), std::move(entry->second)).second) {
      skipped_++;
    }
  }
}

PodDirectory PodDirectory::Read(const std::string& log_pods_dir) {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(log_pods_dir.c_str()), ::closedir);
  if (!dir) {
    PodDirectory empty;
    empty.error_ = ErrnoText(log_pods_dir, errno);
    return empty;
  }
  std::vector<std::string> names;
  std::string error;
  while (true) {
    errno = 0;
    const dirent* entry = ::readdir(dir.get());
    if (entry == nullptr) {
      if (errno != 0) {
        error = ErrnoText(log_pods_dir, errno);
      }
      break;
    }
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") {
      names.emplace_back(name);
    }
  }
  PodDirectory directory(std::move(names));
  directory.error_ = std::move(error);
  return directory;
}

std::optional<PodName> PodDirectory::Find(const std::string& pod_uid) const {
  std::optional<std::string> uid = CanonicalPodUid(pod_uid);
  if (!uid) {
    return std::nullopt;
  }
  auto found = by_uid_.find(*uid);
  if (found == by_uid_.end()) {
    return std::nullopt;
  }
  return found->second;
}

}  // namespace portwatch
