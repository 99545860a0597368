#pragma once

#include <cstddef>
#include <map>
#include <optional>
#include <vector>

#include "collectors/procfs/socket_owners.h"
#include "collectors/services/services_config.h"
#include "collectors/services/socket_intake.h"

namespace portwatch {

/// Whether a process matches a service's owner: any of process (comm), cmdline (RE2 search,
/// unanchored, in the whole command line), exe. An empty match accepts every process.
bool OwnerMatches(const OwnerMatch& owner, const ProcessInfo& process);

/// Who holds a service's port, split by the service's owner.
struct ServiceHolders {
  /// Listening sockets held by a matching process: the workers of a pre-forked server share
  /// one, an SO_REUSEPORT group has one per member.
  size_t owned_listeners = 0;
  /// Those listening sockets grouped into running instances of the service (see
  /// InstanceGrouping): one process's sockets, and those of the workers a matching master
  /// forked, are one instance; copies started separately are one each, SO_REUSEPORT or not.
  size_t instances = 0;
  std::vector<ProcessInfo> owner_processes;  ///< matching processes holding sockets on the port
  std::vector<ProcessInfo> foreign_holders;  ///< other processes holding sockets on the port
  bool invisible_holders = false;            ///< some socket's process could not be seen
  /// Running processes matching the owner, listening or not (`ps -ef | grep`); only when the
  /// service names an owner.
  std::optional<size_t> matching_processes;
  /// The same processes grouped into instances as `instances` groups holders: a master and its
  /// workers are one. More than `instances` means a copy runs without the port.
  std::optional<size_t> matching_instances;
};

/// Groups processes into instances of a service. A kernel SO_REUSEPORT group cannot tell: it
/// joins every listener of one user on one address and port, so two copies started by hand
/// share one group with the workers of a single server. The processes can: a process, and the
/// workers forked by a master matching the owner, are one instance. A process belongs to the
/// instance of its topmost ancestor that has the same command and matches the owner (a forked
/// worker keeps its master's command; a shell, a supervisor or init does not match).
class InstanceGrouping {
 public:
  /// `known`: the processes whose parents may be looked up (the namespace's running processes
  /// and the holders).
  InstanceGrouping(const OwnerMatch& owner, const std::vector<const ProcessInfo*>& known);

  /// The pid standing for the instance `process` belongs to.
  pid_t RootOf(const ProcessInfo& process) const;

 private:
  const OwnerMatch& owner_;
  std::map<pid_t, const ProcessInfo*> by_pid_;
};

/// Classifies the processes holding the sockets of `observed` against the service's owner. Each
/// process is listed once, in the order of the sockets it holds, listeners first. `running` are
/// the processes of the service's network namespace (matching_processes counts those).
ServiceHolders ClassifyHolders(const ServiceConfig& service, const PortObservation& observed,
                               const SocketOwners& owners, const std::vector<ProcessInfo>& running);
/// The same in the exporter's own network namespace: `running` is owners.processes.
ServiceHolders ClassifyHolders(const ServiceConfig& service, const PortObservation& observed,
                               const SocketOwners& owners);

}  // namespace portwatch
