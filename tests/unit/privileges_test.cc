// Least privilege: what the exporter keeps and drops, planned from fixtures of capability sets,
// and the deploy manifests asking for exactly what the default collectors need.
#include "exporter/privileges.h"

#include <linux/capability.h>

#include <fstream>
#include <set>
#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>
#include <yaml-cpp/yaml.h>

#include "exporter/registry.h"

namespace portwatch {
namespace {

/// What loading tracing programs needs (bind_events; the services' socket owner walk; the socket
/// iterators).
constexpr CapabilityMask kEbpf = CapabilityBit(CAP_BPF) | CapabilityBit(CAP_PERFMON);
/// Reading other users' /proc/<pid>/fd and socket links.
constexpr CapabilityMask kProcReading =
    CapabilityBit(CAP_DAC_READ_SEARCH) | CapabilityBit(CAP_SYS_PTRACE);
constexpr CapabilityMask kServices = kProcReading | kEbpf;
constexpr int kLastCap = CAP_CHECKPOINT_RESTORE;  // 40 on Linux 5.9+
constexpr CapabilityMask kRoot = (CapabilityMask{1} << (kLastCap + 1)) - 1;

std::set<std::string> DefaultCollectors() {
  std::set<std::string> enabled;
  for (const CollectorSpec& spec : KnownCollectors()) {
    if (spec.enabled_by_default) {
      enabled.insert(spec.name);
    }
  }
  return enabled;
}

ProcessCapabilities Held(CapabilityMask permitted, CapabilityMask bounding,
                         int last_known = kLastCap) {
  return {permitted, permitted, bounding, last_known};
}

/// A plain host: pods on (the default) but no kubelet pod log directory, so entering pods asks
/// for nothing; sockets read through sock_diag (the BPF socket iterators' needs are tested apart).
Config PlainHost() {
  Config config;
  config.sockets.pod_logs_dir = "/nonexistent/portwatch-test/pods";
  config.sockets.backend = SocketBackendSetting::kNetlink;
  return config;
}

/// A Kubernetes node: the default config with the pod log directory present (sock_diag).
Config KubernetesNode() {
  Config config;
  config.sockets.pod_logs_dir = PORTWATCH_SOURCE_DIR;  // any directory that exists
  config.sockets.backend = SocketBackendSetting::kNetlink;
  return config;
}

std::string Exposed(const PrivilegePlan& plan, CapabilityMask effective) {
  std::vector<prometheus::MetricFamily> families;
  AppendPrivilegeMetrics(plan, effective, families);
  return prometheus::TextSerializer().Serialize(families);
}

TEST(PrivilegesTest, RootKeepsOnlyWhatTheDefaultCollectorsNeed) {
  const PrivilegePlan plan = PlanPrivileges(
      CollectorCapabilityNeeds(DefaultCollectors(), PlainHost()), Held(kRoot, kRoot));
  EXPECT_EQ(plan.keep, kServices);
  EXPECT_EQ(plan.drop, kRoot & ~(kServices));
  EXPECT_EQ(CapabilityNames(plan.keep), "CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE,CAP_PERFMON,CAP_BPF");
  EXPECT_EQ(
      Exposed(plan, plan.keep),
      "# HELP portwatch_collector_capability_held Whether the exporter holds a capability "
      "an enabled collector needs (1) or lacks it (0: the collector runs without what the "
      "capability gives; the log says what at start).\n"
      "# TYPE portwatch_collector_capability_held gauge\n"
      "portwatch_collector_capability_held{capability=\"CAP_BPF\",collector=\"bind_events\"} 1\n"
      "portwatch_collector_capability_held{capability=\"CAP_BPF\",collector=\"services\"} 1\n"
      "portwatch_collector_capability_held{capability=\"CAP_DAC_READ_SEARCH\",collector="
      "\"services\"} 1\n"
      "portwatch_collector_capability_held{capability=\"CAP_PERFMON\",collector=\"bind_events\"} "
      "1\n"
      "portwatch_collector_capability_held{capability=\"CAP_PERFMON\",collector=\"services\"} 1\n"
      "portwatch_collector_capability_held{capability=\"CAP_SYS_PTRACE\",collector=\"services\"} "
      "1\n"
      "# HELP portwatch_capability_effective A capability the exporter kept after dropping "
      "every one no enabled collector needs (one series per capability): 1 effective on "
      "every thread, 0 permitted only, raised only around its use by the thread that uses it "
      "(CAP_SYS_ADMIN: setns into pods' network namespaces).\n"
      "# TYPE portwatch_capability_effective gauge\n"
      "portwatch_capability_effective{capability=\"CAP_BPF\"} 1\n"
      "portwatch_capability_effective{capability=\"CAP_DAC_READ_SEARCH\"} 1\n"
      "portwatch_capability_effective{capability=\"CAP_PERFMON\"} 1\n"
      "portwatch_capability_effective{capability=\"CAP_SYS_PTRACE\"} 1\n");
}

TEST(PrivilegesTest, DisabledCollectorsGiveUpTheirCapabilities) {
  const PrivilegePlan plan =
      PlanPrivileges(CollectorCapabilityNeeds({"sockets", "services", "netstat"}, PlainHost()),
                     Held(kRoot, kRoot));
  EXPECT_EQ(plan.keep, kServices);
  const PrivilegePlan none = PlanPrivileges(
      CollectorCapabilityNeeds({"sockets", "kernel_limits"}, PlainHost()), Held(kRoot, kRoot));
  EXPECT_EQ(none.keep, 0U);
  EXPECT_EQ(none.drop, kRoot);
  EXPECT_TRUE(none.requirements.empty());
}

TEST(PrivilegesTest, PodNamespacesAddWhatEnteringThemNeedsOnANodeWithPods) {
  const PrivilegePlan plan =
      PlanPrivileges(CollectorCapabilityNeeds({"sockets"}, KubernetesNode()), Held(kRoot, kRoot));
  EXPECT_EQ(plan.keep, CapabilityBit(CAP_SYS_ADMIN) | CapabilityBit(CAP_SYS_PTRACE));
  // Only the thread entering a namespace raises CAP_SYS_ADMIN: no other thread acts with it.
  EXPECT_EQ(plan.permitted_only, CapabilityBit(CAP_SYS_ADMIN));
  EXPECT_EQ(
      Exposed(plan, plan.keep & ~plan.permitted_only),
      "# HELP portwatch_collector_capability_held Whether the exporter holds a capability "
      "an enabled collector needs (1) or lacks it (0: the collector runs without what the "
      "capability gives; the log says what at start).\n"
      "# TYPE portwatch_collector_capability_held gauge\n"
      "portwatch_collector_capability_held{capability=\"CAP_SYS_ADMIN\",collector=\"sockets\"} "
      "1\n"
      "portwatch_collector_capability_held{capability=\"CAP_SYS_PTRACE\",collector="
      "\"sockets\"} 1\n"
      "# HELP portwatch_capability_effective A capability the exporter kept after dropping "
      "every one no enabled collector needs (one series per capability): 1 effective on "
      "every thread, 0 permitted only, raised only around its use by the thread that uses it "
      "(CAP_SYS_ADMIN: setns into pods' network namespaces).\n"
      "# TYPE portwatch_capability_effective gauge\n"
      "portwatch_capability_effective{capability=\"CAP_SYS_ADMIN\"} 0\n"
      "portwatch_capability_effective{capability=\"CAP_SYS_PTRACE\"} 1\n");
  Config off = KubernetesNode();
  off.sockets.pods = false;
  EXPECT_EQ(PlanPrivileges(CollectorCapabilityNeeds({"sockets"}, off), Held(kRoot, kRoot)).keep,
            0U);
}

TEST(PrivilegesTest, MissingCapabilitiesAreReportedPerCollector) {
  // A systemd unit that granted only what reading /proc needs: nothing to drop, no eBPF.
  const PrivilegePlan plan = PlanPrivileges(
      CollectorCapabilityNeeds(DefaultCollectors(), PlainHost()), Held(kProcReading, kProcReading));
  EXPECT_EQ(plan.keep, kProcReading);
  EXPECT_EQ(plan.drop, 0U);
  ASSERT_EQ(plan.requirements.size(), 6U);
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    EXPECT_EQ(requirement.held, (CapabilityBit(requirement.capability) & kProcReading) != 0)
        << requirement.collector << " " << CapabilityName(requirement.capability);
    EXPECT_FALSE(requirement.without.empty());
  }
  const std::string exposed = Exposed(plan, plan.keep);
  EXPECT_THAT(exposed,
              ::testing::HasSubstr("portwatch_collector_capability_held{capability=\"CAP_BPF\","
                                   "collector=\"bind_events\"} 0\n"));
  EXPECT_THAT(exposed,
              ::testing::HasSubstr("portwatch_collector_capability_held{capability=\"CAP_BPF\","
                                   "collector=\"services\"} 0\n"));
}

TEST(PrivilegesTest, TheServicesOwnerWalkAsksForEbpfWhateverReadsTheSockets) {
  // backend: netlink and bind_events off: the services collector alone keeps CAP_BPF and
  // CAP_PERFMON, for its iter/task_file owner walk (without them its first pass reads every
  // /proc/<pid>/fd).
  const PrivilegePlan plan = PlanPrivileges(
      CollectorCapabilityNeeds({"sockets", "services"}, PlainHost()), Held(kRoot, kRoot));
  EXPECT_EQ(plan.keep, kServices);
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    EXPECT_EQ(requirement.collector, "services");
    if ((CapabilityBit(requirement.capability) & kEbpf) != 0) {
      EXPECT_THAT(requirement.without, ::testing::StartsWith("the socket owner iterator"));
      EXPECT_THAT(requirement.without, ::testing::Not(::testing::HasSubstr("socket iterators")));
    }
  }
}

TEST(PrivilegesTest, SocketIteratorsAskCapBpfAndCapPerfmonForSocketsAndServices) {
  Config config = PlainHost();
  config.sockets.backend = SocketBackendSetting::kAuto;
  const PrivilegePlan plan =
      PlanPrivileges(CollectorCapabilityNeeds({"sockets", "services"}, config), Held(kRoot, kRoot));
  EXPECT_EQ(plan.keep, kServices);
  EXPECT_EQ(plan.permitted_only, 0U);
  std::set<std::string> asked;
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    asked.insert(requirement.collector + ":" + CapabilityName(requirement.capability));
  }
  EXPECT_EQ(asked, (std::set<std::string>{"services:CAP_BPF", "services:CAP_DAC_READ_SEARCH",
                                          "services:CAP_PERFMON", "services:CAP_SYS_PTRACE",
                                          "sockets:CAP_BPF", "sockets:CAP_PERFMON"}));
  EXPECT_EQ(plan.requirements.size(), asked.size());
  for (const PrivilegePlan::Requirement& requirement : plan.requirements) {
    if (requirement.collector == "services" && requirement.capability == CAP_BPF) {
      // One requirement, both costs: the iterators and the owner walk.
      EXPECT_THAT(requirement.without, ::testing::HasSubstr("BPF socket iterators"));
      EXPECT_THAT(requirement.without, ::testing::HasSubstr("socket owner iterator"));
    }
  }
  // The defaults of a plain host keep exactly what they kept before: bind_events asked for both.
  EXPECT_EQ(
      PlanPrivileges(CollectorCapabilityNeeds(DefaultCollectors(), Config{}), Held(kRoot, kRoot))
          .keep,
      kServices);
}

TEST(PrivilegesTest, OnlyTheBoundingSetLeftIsDroppedToo) {
  // An unprivileged user: nothing permitted, a full bounding set (what the kernel gives).
  const PrivilegePlan plan =
      PlanPrivileges(CollectorCapabilityNeeds(DefaultCollectors(), Config{}), Held(0, kRoot));
  EXPECT_EQ(plan.keep, 0U);
  EXPECT_EQ(plan.drop, kRoot);
}

TEST(PrivilegesTest, KernelsBeforeCapBpfNeedCapSysAdminForEbpf) {
  // Linux 5.4 knows capabilities up to CAP_AUDIT_READ (37): bpf() checks CAP_SYS_ADMIN.
  const int linux_5_4 = CAP_AUDIT_READ;
  const CapabilityMask root = (CapabilityMask{1} << (linux_5_4 + 1)) - 1;
  const PrivilegePlan plan = PlanPrivileges(CollectorCapabilityNeeds({"bind_events"}, Config{}),
                                            Held(root, root, linux_5_4));
  EXPECT_EQ(plan.keep, CapabilityBit(CAP_SYS_ADMIN));
  // CAP_BPF and CAP_PERFMON both become CAP_SYS_ADMIN: one requirement, one series.
  ASSERT_EQ(plan.requirements.size(), 1U);
  EXPECT_EQ(plan.requirements[0].capability, CAP_SYS_ADMIN);
  const std::string exposed = Exposed(plan, plan.keep);
  const std::string series =
      "portwatch_collector_capability_held{capability=\"CAP_SYS_ADMIN\",collector=\"bind_events\"} "
      "1\n";
  ASSERT_THAT(exposed, ::testing::HasSubstr(series));
  EXPECT_EQ(exposed.find(series), exposed.rfind(series)) << exposed;
}

TEST(PrivilegesTest, OnKernelsBeforeCapBpfPodsAndEbpfKeepCapSysAdminEffective) {
  // bpf() checks CAP_SYS_ADMIN on the thread that calls it: it cannot stay permitted only.
  const int linux_5_4 = CAP_AUDIT_READ;
  const CapabilityMask root = (CapabilityMask{1} << (linux_5_4 + 1)) - 1;
  const PrivilegePlan plan =
      PlanPrivileges(CollectorCapabilityNeeds({"sockets", "bind_events"}, KubernetesNode()),
                     Held(root, root, linux_5_4));
  EXPECT_EQ(plan.keep, CapabilityBit(CAP_SYS_ADMIN) | CapabilityBit(CAP_SYS_PTRACE));
  EXPECT_EQ(plan.permitted_only, 0U);
}

TEST(PrivilegesTest, CapabilityNamesFollowTheKernelHeaders) {
  EXPECT_EQ(CapabilityName(CAP_BPF), "CAP_BPF");
  EXPECT_EQ(CapabilityName(CAP_NET_BIND_SERVICE), "CAP_NET_BIND_SERVICE");
  EXPECT_EQ(CapabilityNames(0), "");
}

// --- The deploy files request exactly the default collectors' set.

CapabilityMask DefaultCollectorsNeed(const Config& node) {
  CapabilityMask mask = 0;
  for (const CollectorNeeds& collector : CollectorCapabilityNeeds(DefaultCollectors(), node)) {
    for (const CapabilityNeed& need : collector.needs) {
      mask |= CapabilityBit(need.capability);
    }
  }
  return mask;
}

std::string Names(const std::vector<std::string>& names, const std::string& prefix) {
  std::set<std::string> sorted;
  for (const std::string& name : names) {
    sorted.insert(prefix + name);
  }
  std::string joined;
  for (const std::string& name : sorted) {
    joined += (joined.empty() ? "" : ",") + name;
  }
  return joined;
}

std::string SortedNames(CapabilityMask mask) {
  std::vector<std::string> names;
  std::stringstream all(CapabilityNames(mask));
  for (std::string name; std::getline(all, name, ',');) {
    names.push_back(name);
  }
  return Names(names, "");
}

TEST(PrivilegesTest, DaemonSetAddsExactlyWhatTheDefaultCollectorsNeed) {
  const YAML::Node daemonset = YAML::LoadFile(std::string(PORTWATCH_SOURCE_DIR) +
                                              "/deploy/kubernetes/exporter/daemonset.yaml");
  const YAML::Node capabilities =
      daemonset["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"];
  EXPECT_EQ(capabilities["drop"].as<std::vector<std::string>>(), std::vector<std::string>{"ALL"});
  EXPECT_EQ(Names(capabilities["add"].as<std::vector<std::string>>(), "CAP_"),
            SortedNames(DefaultCollectorsNeed(KubernetesNode())));
}

TEST(PrivilegesTest, SystemdUnitGrantsExactlyWhatTheDefaultCollectorsNeed) {
  std::ifstream unit(std::string(PORTWATCH_SOURCE_DIR) +
                     "/deploy/systemd/portwatch_exporter.service");
  ASSERT_TRUE(unit);
  std::map<std::string, std::string> settings;
  for (std::string line; std::getline(unit, line);) {
    const size_t equals = line.find('=');
    if (!line.empty() && line[0] != '#' && equals != std::string::npos) {
      settings[line.substr(0, equals)] = line.substr(equals + 1);
    }
  }
  for (const std::string key : {"AmbientCapabilities", "CapabilityBoundingSet"}) {
    std::vector<std::string> names;
    std::stringstream words(settings[key]);
    for (std::string word; words >> word;) {
      names.push_back(word);
    }
    EXPECT_EQ(Names(names, ""), SortedNames(DefaultCollectorsNeed(PlainHost()))) << key;
  }
}

}  // namespace
}  // namespace portwatch
