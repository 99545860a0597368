#include "exporter/privileges.h"

#include <linux/capability.h>

#include <algorithm>
#include <bit>
#include <map>
#include <set>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"

namespace portwatch {

PrivilegePlan PlanPrivileges(const std::vector<CollectorNeeds>& enabled,
                             const ProcessCapabilities& held) {
  PrivilegePlan plan;
  CapabilityMask effective = 0;  // needed effective by at least one collector
  for (const CollectorNeeds& collector : enabled) {
    for (const CapabilityNeed& need : collector.needs) {
      // Kernels before CAP_BPF and CAP_PERFMON check CAP_SYS_ADMIN in the call itself, on
      // whichever thread makes it: effective.
      const bool mapped = need.capability > held.last_known;
      const int capability = mapped ? CAP_SYS_ADMIN : need.capability;
      const bool permitted = (held.permitted & CapabilityBit(capability)) != 0;
      // One requirement per collector and capability (one series of
      // portwatch_collector_capability_held): CAP_BPF and CAP_PERFMON both become CAP_SYS_ADMIN
      // on kernels before them.
      const auto same = std::find_if(plan.requirements.begin(), plan.requirements.end(),
                                     [&](const PrivilegePlan::Requirement& requirement) {
                                       return requirement.collector == collector.collector &&
                                              requirement.capability == capability;
                                     });
      if (same == plan.requirements.end()) {
        plan.requirements.push_back({collector.collector, capability, need.without, permitted});
      } else if (same->without != need.without) {
        same->without += "; " + need.without;
      }
      if (permitted) {
        plan.keep |= CapabilityBit(capability);
        if (mapped || !need.raised_on_use) {
          effective |= CapabilityBit(capability);
        }
      }
    }
  }
  plan.permitted_only = plan.keep & ~effective;
  plan.drop = (held.permitted | held.bounding) & ~plan.keep;
  return plan;
}

void AppendPrivilegeMetrics(const PrivilegePlan& plan, CapabilityMask effective_after_drop,
                            std::vector<prometheus::MetricFamily>& out) {
  FamilyBuilder held("portwatch_collector_capability_held",
                     "Whether the exporter holds a capability an enabled collector needs (1) or "
                     "lacks it (0: the collector runs without what the capability gives; the log "
                     "says what at start).",
                     prometheus::MetricType::Gauge);
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    held.Add({{"capability", CapabilityName(requirement.capability)},
              {"collector", requirement.collector}},
             requirement.held ? 1 : 0);
  }
  held.MoveTo(out);
  FamilyBuilder effective("portwatch_capability_effective",
                          "A capability the exporter kept after dropping every one no enabled "
                          "collector needs (one series per capability): 1 effective on every "
                          "thread, 0 permitted only, raised only around its use by the thread "
                          "that uses it (CAP_SYS_ADMIN: setns into pods' network namespaces).",
                          prometheus::MetricType::Gauge);
  for (int capability = 0; capability < 64; ++capability) {
    if ((effective_after_drop & CapabilityBit(capability)) != 0) {
      effective.Add({{"capability", CapabilityName(capability)}}, 1);
    } else if ((plan.permitted_only & plan.keep & CapabilityBit(capability)) != 0) {
      effective.Add({{"capability", CapabilityName(capability)}}, 0);
    }
  }
  effective.MoveTo(out);
}

void LogPrivilegePlan(const PrivilegePlan& plan) {
  // One line per collector, its missing capabilities together.
  struct Missing {
    std::string names;
    std::string costs;
    std::set<std::string> costs_said;  // CAP_BPF and CAP_PERFMON cost the same: said once
  };
  std::map<std::string, Missing> missing;
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    if (requirement.held) {
      continue;
    }
    Missing& collector = missing[requirement.collector];
    collector.names +=
        (collector.names.empty() ? "" : ",") + CapabilityName(requirement.capability);
    if (collector.costs_said.insert(requirement.without).second) {
      collector.costs += (collector.costs.empty() ? "" : "; ") + requirement.without;
    }
  }
  for (const auto& [collector, what] : missing) {
    spdlog::warn("{}", LogLine("collector lacks capabilities, running without what they give")
                           .Add("collector", collector)
                           .Add("missing", what.names)
                           .Add("cost", what.costs)
                           .Text());
  }
}

std::vector<prometheus::MetricFamily> EnforceLeastPrivilege(
    const std::vector<CollectorNeeds>& enabled) {
  std::vector<prometheus::MetricFamily> metrics;
  const Result<ProcessCapabilities> before = ReadProcessCapabilities();
  if (!before) {
    spdlog::warn(
        "{}",
        LogLine("cannot check capabilities, keeping them all").Add("err", before.Error()).Text());
    return metrics;
  }
  const PrivilegePlan plan = PlanPrivileges(enabled, *before);
  LogPrivilegePlan(plan);
  CapabilityMask effective = before->effective;
  if (plan.drop != 0 || (before->effective & plan.permitted_only) != 0) {
    if (const Status restricted = RestrictCapabilities(plan.keep, plan.permitted_only);
        !restricted) {
      spdlog::warn("{}", LogLine("cannot drop capabilities no enabled collector needs")
                             .Add("err", restricted.Error())
                             .Text());
    }
    if (const Result<ProcessCapabilities> after = ReadProcessCapabilities()) {
      effective = after->effective;
      // What really went: an unprivileged process cannot shrink its bounding set.
      const CapabilityMask dropped =
          (before->permitted | before->bounding) & ~(after->permitted | after->bounding);
      if (dropped != 0) {
        spdlog::info("{}", LogLine("dropped capabilities no enabled collector needs")
                               .Add("kept", CapabilityNames(after->permitted))
                               .Add("dropped", std::popcount(dropped))
                               .Text());
      }
    }
  }
  AppendPrivilegeMetrics(plan, effective, metrics);
  return metrics;
}

}  // namespace portwatch
