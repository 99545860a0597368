#include "collectors/services/service_holders.h"

#include <algorithm>
#include <re2/re2.h>
#include <set>

namespace portwatch {

namespace {

/// Walks the port's sockets and sorts their processes into owner and foreign.
class HolderSorter {
 public:
  HolderSorter(const ServiceConfig& service, const SocketOwners& owners, ServiceHolders& holders)
      : service_(service), owners_(owners), holders_(holders) {}

  void Sort(uint32_t inode, bool listening) {
    auto found = owners_.by_inode.find(inode);
    if (found == owners_.by_inode.end()) {
      holders_.invisible_holders = true;
      return;
    }
    for (const ProcessInfo& process : found->second) {
      const bool owner = OwnerMatches(service_.owner, process);
      if (owner && listening) {
        owned_listeners_.insert(inode);
      }
      if (seen_.insert(process.pid).second) {
        (owner ? holders_.owner_processes : holders_.foreign_holders).push_back(process);
      }
    }
  }
  size_t OwnedListeners() const { return owned_listeners_.size(); }

 private:
  const ServiceConfig& service_;
  const SocketOwners& owners_;
  ServiceHolders& holders_;
  std::set<uint32_t> owned_listeners_;
  std::set<pid_t> seen_;
};

}  // namespace

bool OwnerMatches(const OwnerMatch& owner, const ProcessInfo& process) {
  if (!owner.Any()) {
    return true;
  }
  return (!owner.process.empty() && process.command == owner.process) ||
         (owner.cmdline_regex != nullptr &&
          RE2::PartialMatch(process.cmdline, *owner.cmdline_regex)) ||
         (!owner.exe.empty() && process.exe == owner.exe);
}

ServiceHolders ClassifyHolders(const ServiceConfig& service, const PortObservation& observed,
                               const SocketOwners& owners) {
  return ClassifyHolders(service, observed, owners, owners.processes);
}

ServiceHolders ClassifyHolders(const ServiceConfig& service, const PortObservation& observed,
                               const SocketOwners& owners,
                               const std::vector<ProcessInfo>& running) {
  ServiceHolders holders;
  HolderSorter sorter(service, owners, holders);
  for (uint32_t inode : observed.listener_inodes) {
    sorter.Sort(inode, true);
  }
  // UDP has no listen(): a connected socket on the service's port still receives on it, so it
  // counts as the owner's serving socket too.
  const bool others_serve = ProtocolOf(service) == netlink::Protocol::kUdp;
  for (uint32_t inode : observed.other_inodes) {
    sorter.Sort(inode, others_serve);
  }
  holders.owned_listeners = sorter.OwnedListeners();
  if (service.owner.Any()) {
    holders.matching_processes = static_cast<size_t>(std::count_if(
        running.begin(), running.end(),
        [&service](const ProcessInfo& process) { return OwnerMatches(service.owner, process); }));
  }
  return holders;
}

}  // namespace portwatch
