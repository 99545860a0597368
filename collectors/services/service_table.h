#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_set>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/procfs/socket_owners.h"
#include "collectors/services/bind_prediction.h"
#include "collectors/services/listener_memory.h"
#include "collectors/services/service_holders.h"
#include "collectors/services/service_report.h"
#include "collectors/services/services_config.h"
#include "collectors/services/socket_intake.h"

namespace portwatch {

/// SO_REUSEADDR of the socket with this inode, or nullopt when it cannot be read.
using ReuseLookup = std::function<std::optional<bool>(uint32_t inode)>;

/// One scrape of the services model: feeds the sock_diag records to the intake (per-service
/// observations, listeners), then puts holders, bind predictions and remembered listener flags
/// together into one report per service. The model itself lives in the files it includes;
/// this class only orders the steps and owns what one scrape accumulates.
class ServiceTable {
 public:
  /// `services` evaluated in the network namespace `scope` names (the node's by default), whose
  /// kernel settings are `facts`.
  ServiceTable(const std::vector<ServiceConfig>& services, ServicesOptions options,
               KernelFacts facts, ServiceScope scope = {});

  /// Feeds one socket: listeners of any port, and any socket on a service's port.
  void Add(netlink::Protocol protocol, const netlink::SocketRecord& record);

  /// TCP service ports on which nothing visible competes with the service's address: only
  /// these need the costly look for bound-inactive sockets (see kBoundInactiveStates).
  std::vector<uint16_t> PortsThatLookFree() const;

  /// Socket inodes whose holding processes the /proc pass must find.
  std::unordered_set<uint32_t> WantedInodes() const;
  /// Whether some service names an owner, so every process must be identified (`ps -ef`).
  bool NeedsAllProcesses() const;

  /// One report per service. `reuse` reads the SO_REUSEADDR of sockets whose records did not
  /// carry it; `memory` is read and updated with the flags of the listeners seen at `now`.
  std::vector<ServiceReport> Reports(const SocketOwners& owners, const ReuseLookup& reuse,
                                     ListenerMemory& memory,
                                     std::chrono::steady_clock::time_point now) const;

  const ServiceScope& Scope() const { return scope_; }
  const KernelFacts& Facts() const { return facts_; }
  /// The listeners fed (when options.listener_info), for portwatch_listener_info.
  const ListenerIntake& Listeners() const { return listeners_; }

 private:
  /// The processes of the table's network namespace, for the `ps -ef` check.
  const std::vector<ProcessInfo>& RunningProcesses(const SocketOwners& owners) const;
  ServiceReport Report(size_t index, const SocketOwners& owners, const ReuseLookup& reuse,
                       ListenerMemory& memory, std::chrono::steady_clock::time_point now) const;

  std::vector<ServiceConfig> services_;
  ServicesOptions options_;
  KernelFacts facts_;
  ServiceScope scope_;
  std::vector<PortObservation> observed_;  ///< one per service, same order
  ListenerIntake listeners_;
};

}  // namespace portwatch
