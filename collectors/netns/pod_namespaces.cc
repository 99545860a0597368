#include "collectors/netns/pod_namespaces.h"

#include <algorithm>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/logfmt.h"
#include "collectors/netns/netns_discovery.h"
#include "collectors/pods/pod_identity.h"

namespace portwatch {

std::vector<prometheus::ClientMetric::Label> PodNamespace::Labels() const {
  return {{"namespace", namespace_name}, {"pod", name}};
}

const PodNamespace* PodDiscovery::Find(uint64_t inode) const {
  const auto found =
      std::lower_bound(pods.begin(), pods.end(), inode,
                       [](const PodNamespace& pod, uint64_t wanted) { return pod.inode < wanted; });
  return found != pods.end() && found->inode == inode ? &*found : nullptr;
}

size_t PodDiscovery::EnterFailures() const {
  return static_cast<size_t>(std::count_if(pods.begin(), pods.end(),
                                           [](const PodNamespace& pod) { return !pod.entered; }));
}

PodNamespaces::PodNamespaces(ProcFs procfs) : procfs_(procfs), sockets_(std::move(procfs)) {}

std::shared_ptr<const PodDiscovery> PodNamespaces::Discover(
    const std::string& pod_logs_dir, std::chrono::steady_clock::duration reuse_younger_than) {
  const std::lock_guard lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  if (latest_ && latest_dir_ == pod_logs_dir && now - latest_->at < reuse_younger_than) {
    return latest_;
  }
  auto discovery = std::make_shared<PodDiscovery>();
  discovery->at = now;
  std::vector<ProcessNamespace> processes =
      ReadProcessNamespaces(procfs_, discovery->processes_unreadable);
  std::vector<NetworkNamespace> namespaces = GroupByNamespace(
      std::move(processes), procfs_.NetworkNamespace("self"),
      [this](pid_t pid) { return procfs_.ReadFile(std::to_string(pid) + "/cgroup"); });
  discovery->not_pods = static_cast<size_t>(std::count_if(
      namespaces.begin(), namespaces.end(), [](const NetworkNamespace& n) { return !n.pod; }));
  std::erase_if(namespaces, [](const NetworkNamespace& n) { return !n.pod; });
  const std::map<uint64_t, std::string> failures = sockets_.Refresh(namespaces);

  discovery->directory = PodDirectory::Read(pod_logs_dir);
  for (const NetworkNamespace& found : namespaces) {
    PodNamespace& pod = discovery->pods.emplace_back();
    pod.inode = found.inode;
    pod.pid = found.pid;
    pod.uid = found.pod->pod_uid;
    const std::optional<PodName> name = discovery->directory.Find(pod.uid);
    pod.namespace_name = name ? name->namespace_name : "";
    pod.name = name ? name->pod : pod.uid;
    const auto failure = failures.find(found.inode);
    pod.entered = failure == failures.end();
    if (!pod.entered) {
      pod.enter_error = failure->second;
      spdlog::debug("{}", LogLine("pods: cannot enter a pod's network namespace")
                              .Add("netns", found.inode)
                              .Add("pod_uid", pod.uid)
                              .Add("err", failure->second)
                              .Text());
    }
  }
  std::sort(discovery->pods.begin(), discovery->pods.end(),
            [](const PodNamespace& a, const PodNamespace& b) { return a.inode < b.inode; });
  // Without the privileges no pod can be entered, at every scrape: say so once, not per pod.
  if (!failures.empty() && failures.size() == namespaces.size() && !warned_no_pods_) {
    warned_no_pods_ = true;
    spdlog::warn("{}", LogLine("pods: cannot enter any pod's network namespace, counting the "
                               "node's sockets only (needs hostPID, CAP_SYS_ADMIN and "
                               "CAP_SYS_PTRACE)")
                           .Add("pods", failures.size())
                           .Add("err", failures.begin()->second)
                           .Text());
  }
  latest_ = std::move(discovery);
  latest_dir_ = pod_logs_dir;
  return latest_;
}

std::shared_ptr<const PodDiscovery> PodNamespaces::Latest() const {
  const std::lock_guard lock(mutex_);
  return latest_;
}

void PodNamespaces::Close() {
  const std::lock_guard lock(mutex_);
  static_cast<void>(sockets_.Refresh({}));
  latest_.reset();
}

Result<std::unique_ptr<netlink::Transport>> PodNamespaces::Open(uint64_t inode) const {
  const std::lock_guard lock(mutex_);
  return sockets_.Open(inode);
}

Result<netlink::UniqueFd> PodNamespaces::CreateInside(uint64_t inode,
                                                      const NamespaceWorker::Make& make) const {
  const std::lock_guard lock(mutex_);
  return sockets_.CreateInside(inode, make);
}

std::optional<std::string> PodNamespaces::Setting(uint64_t inode, NamespaceSetting setting) const {
  const std::lock_guard lock(mutex_);
  return sockets_.Setting(inode, setting);
}

std::optional<EphemeralRange> PodNamespaces::EphemeralRangeOf(uint64_t inode) const {
  const std::lock_guard lock(mutex_);
  return sockets_.EphemeralRangeOf(inode);
}

bool PodNamespaces::HasPrivateHash(uint64_t inode) const {
  const std::lock_guard lock(mutex_);
  return sockets_.HasPrivateHash(inode);
}

size_t PodNamespaces::Entered() const {
  const std::lock_guard lock(mutex_);
  return sockets_.Size();
}

}  // namespace portwatch
