#include "collectors/services/service_holders.h"

#include <map>
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
        owned_listeners_[inode].push_back(&process);
      }
      if (seen_.insert(process.pid).second) {
        (owner ? holders_.owner_processes : holders_.foreign_holders).push_back(process);
      }
    }
  }
  /// Each owned listening socket's matching holders.
  const std::map<uint32_t, std::vector<const ProcessInfo*>>& OwnedListeners() const {
    return owned_listeners_;
  }

 private:
  const ServiceConfig& service_;
  const SocketOwners& owners_;
  ServiceHolders& holders_;
  std::map<uint32_t, std::vector<const ProcessInfo*>> owned_listeners_;
  std::set<pid_t> seen_;
};

/// Disjoint sets of instance roots: listening sockets held by processes of two roots join them.
class RootSets {
 public:
  pid_t Find(pid_t root) {
    parent_.try_emplace(root, root);
    while (parent_[root] != root) {
      parent_[root] = parent_[parent_[root]];  // path halving
      root = parent_[root];
    }
    return root;
  }
  void Join(pid_t a, pid_t b) { parent_[Find(a)] = Find(b); }

 private:
  std::map<pid_t, pid_t> parent_;
};

/// How many instances `listeners` (socket -> its matching holders) are.
size_t CountInstances(const std::map<uint32_t, std::vector<const ProcessInfo*>>& listeners,
                      const InstanceGrouping& grouping) {
  RootSets sets;
  for (const auto& [inode, processes] : listeners) {
    const pid_t first = grouping.RootOf(*processes.front());
    for (const ProcessInfo* process : processes) {
      sets.Join(grouping.RootOf(*process), first);
    }
  }
  std::set<pid_t> instances;
  for (const auto& [inode, processes] : listeners) {
    instances.insert(sets.Find(grouping.RootOf(*processes.front())));
  }
  return instances.size();
}

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

InstanceGrouping::InstanceGrouping(const OwnerMatch& owner,
                                   const std::vector<const ProcessInfo*>& known)
    : owner_(owner) {
  for (const ProcessInfo* process : known) {
    by_pid_.try_emplace(process->pid, process);
  }
}

pid_t InstanceGrouping::RootOf(const ProcessInfo& process) const {
  // Bounded: a pid reused by a younger process could make a cycle of parents.
  constexpr int kMaxGenerations = 64;
  const ProcessInfo* root = &process;
  for (int generation = 0; generation < kMaxGenerations; ++generation) {
    const auto parent = by_pid_.find(root->parent_pid);
    if (root->parent_pid <= 1 || parent == by_pid_.end() ||
        parent->second->command != process.command || !OwnerMatches(owner_, *parent->second)) {
      break;
    }
    root = parent->second;
  }
  return root->pid;
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
  std::vector<const ProcessInfo*> known;
  known.reserve(running.size());
  for (const ProcessInfo& process : running) {
    known.push_back(&process);
  }
  for (const auto& [inode, processes] : sorter.OwnedListeners()) {
    known.insert(known.end(), processes.begin(), processes.end());
  }
  const InstanceGrouping grouping(service.owner, known);
  holders.owned_listeners = sorter.OwnedListeners().size();
  holders.instances = CountInstances(sorter.OwnedListeners(), grouping);
  if (service.owner.Any()) {
    std::set<pid_t> matching_roots;
    size_t matching = 0;
    for (const ProcessInfo& process : running) {
      if (OwnerMatches(service.owner, process)) {
        ++matching;
        matching_roots.insert(grouping.RootOf(process));
      }
    }
    holders.matching_processes = matching;
    holders.matching_instances = matching_roots.size();
  }
  return holders;
}

}  // namespace portwatch
