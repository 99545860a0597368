#pragma once

#include <cstddef>
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
  /// one (one instance), SO_REUSEPORT duplicates have one each.
  size_t owned_listeners = 0;
  std::vector<ProcessInfo> owner_processes;  ///< matching processes holding sockets on the port
  std::vector<ProcessInfo> foreign_holders;  ///< other processes holding sockets on the port
  bool invisible_holders = false;            ///< some socket's process could not be seen
  /// Running processes matching the owner, listening or not (`ps -ef | grep`); only when the
  /// service names an owner.
  std::optional<size_t> matching_processes;
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
