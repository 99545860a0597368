#pragma once

#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/capabilities.h"

namespace portwatch {

/// A capability a collector needs, and what the collector cannot do without it (for the log).
struct CapabilityNeed {
  int capability = 0;
  std::string without;
  /// The code using it raises it into the effective set of its own short-lived thread for the
  /// call (RaiseEffectiveCapability): the process keeps it permitted but not effective, so no
  /// other thread (the web server's included) acts with it.
  bool raised_on_use = false;
};

/// The needs of one enabled collector (or of the exporter itself: collector "exporter").
struct CollectorNeeds {
  std::string collector;
  std::vector<CapabilityNeed> needs;
};

/// What the exporter keeps and drops at start, and what each collector lacks.
struct PrivilegePlan {
  struct Requirement {
    std::string collector;
    int capability = 0;
    std::string without;
    bool held = false;
  };
  std::vector<Requirement> requirements;  ///< every need of every enabled collector
  CapabilityMask keep = 0;                ///< needed and permitted: stays permitted
  /// Of `keep`, those every collector needing them raises on use: permitted, not effective.
  CapabilityMask permitted_only = 0;
  CapabilityMask drop = 0;  ///< permitted or bounding, but no enabled collector needs it
};

/// Plans least privilege from what the enabled collectors need and what the process holds.
/// A capability the kernel does not know yet (CAP_BPF and CAP_PERFMON before Linux 5.8) is
/// needed as CAP_SYS_ADMIN, which those kernels check instead.
PrivilegePlan PlanPrivileges(const std::vector<CollectorNeeds>& enabled,
                             const ProcessCapabilities& held);

/// portwatch_collector_capability_held{collector,capability} for every requirement and
/// portwatch_capability_effective{capability} for every capability left after the drop.
void AppendPrivilegeMetrics(const PrivilegePlan& plan, CapabilityMask effective_after_drop,
                            std::vector<prometheus::MetricFamily>& out);

/// Reads the process's capabilities, drops every one `enabled` does not need, logs and returns
/// the metrics of the result. Call it before any thread exists: capabilities are per thread, and
/// threads inherit them from the one that creates them. Never fails the start: a process that
/// cannot read or change its capabilities runs as it is, and says so.
std::vector<prometheus::MetricFamily> EnforceLeastPrivilege(
    const std::vector<CollectorNeeds>& enabled);

/// Logs once per collector what it lacks and what that costs (warn).
void LogPrivilegePlan(const PrivilegePlan& plan);

}  // namespace portwatch
