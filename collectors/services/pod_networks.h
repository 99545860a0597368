#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "collectors/common/result.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/pod_namespaces.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// What the services collector needs of the node's pods: PodNamespaces on a node (SharedPods),
/// recorded sock_diag exchanges and settings in unit tests.
class PodNetworks {
 public:
  virtual ~PodNetworks() = default;
  /// The pods now; a discovery another collector made earlier in the same scrape is reused.
  virtual std::shared_ptr<const PodDiscovery> Discover(const std::string& pod_logs_dir) = 0;
  /// A sock_diag transport inside pod namespace `inode`.
  virtual Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const = 0;
  /// What `make` returns when run inside pod namespace `inode` (a BPF socket iterator's walk).
  virtual Result<netlink::UniqueFd> CreateInside(uint64_t inode,
                                                 const NamespaceWorker::Make& make) const = 0;
  /// The pod namespace's own net.ipv4.ip_local_port_range.
  virtual std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const = 0;
  /// The text of the pod namespace's own net.ipv4.ip_local_reserved_ports.
  virtual std::optional<std::string> ReservedPorts(uint64_t inode) const = 0;
};

/// The pods as the collectors' shared PodNamespaces sees them (Discover with kSameScrape).
class SharedPods : public PodNetworks {
 public:
  explicit SharedPods(std::shared_ptr<PodNamespaces> pods) : pods_(std::move(pods)) {}

  std::shared_ptr<const PodDiscovery> Discover(const std::string& pod_logs_dir) override {
    return pods_->Discover(pod_logs_dir, PodNamespaces::kSameScrape);
  }
  Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const override {
    return pods_->Open(inode);
  }
  Result<netlink::UniqueFd> CreateInside(uint64_t inode,
                                         const NamespaceWorker::Make& make) const override {
    return pods_->CreateInside(inode, make);
  }
  std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const override {
    return pods_->EphemeralRangeOf(inode);
  }
  std::optional<std::string> ReservedPorts(uint64_t inode) const override {
    return pods_->Setting(inode, NamespaceSetting::kReservedPorts);
  }

 private:
  std::shared_ptr<PodNamespaces> pods_;
};

}  // namespace portwatch
