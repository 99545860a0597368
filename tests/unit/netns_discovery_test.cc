// Network namespaces from processes: grouping, the host's own left out, pods named from cgroups;
// and series of several namespaces merged into one family per name.
#include "collectors/netns/netns_discovery.h"

#include <map>

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include "collectors/common/family_builder.h"

namespace portwatch {
namespace {

constexpr uint64_t kHost = 4026531840;
constexpr uint64_t kWeb = 4026532500;
constexpr uint64_t kPlain = 4026532600;  // `ip netns add`: no pod
const std::string kWebCgroup =
    "0::/kubepods.slice/kubepods-besteffort.slice/"
    "kubepods-besteffort-pod0b1c2d3e_4f50_6172_8394_a5b6c7d8e9f0.slice/"
    "cri-containerd-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef.scope\n";

TEST(GroupByNamespaceTest, GroupsLeavesOutTheHostAndNamesPods) {
  std::map<pid_t, std::string> cgroups = {{700, "0::/system.slice/sshd.service\n"},
                                          {812, kWebCgroup},
                                          {815, kWebCgroup},
                                          {900, "0::/user.slice/user-0.slice\n"}};
  std::vector<pid_t> asked;
  const std::vector<NetworkNamespace> namespaces = GroupByNamespace(
      {{1, kHost}, {815, kWeb}, {812, kWeb}, {900, kPlain}, {700, kHost}, {2, 0}}, kHost,
      [&](pid_t pid) -> std::optional<std::string> {
        asked.push_back(pid);
        return cgroups.count(pid) != 0 ? std::optional(cgroups[pid]) : std::nullopt;
      });
  ASSERT_EQ(namespaces.size(), 2U);
  EXPECT_EQ(namespaces[0].inode, kWeb);
  EXPECT_EQ(namespaces[0].pid, 812);  // the lowest pid: the pod's sandbox
  ASSERT_TRUE(namespaces[0].pod);
  EXPECT_EQ(namespaces[0].pod->pod_uid, "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  EXPECT_EQ(namespaces[1].inode, kPlain);
  EXPECT_FALSE(namespaces[1].pod);
  // The host's processes are never asked, nor a namespace's others once one named the pod.
  EXPECT_EQ(asked, (std::vector<pid_t>{812, 900}));
}

TEST(GroupByNamespaceTest, AsksAFewProcessesAtMostPerNamespace) {
  std::vector<ProcessNamespace> processes;
  for (pid_t pid = 100; pid < 200; ++pid) {
    processes.push_back({pid, kPlain});
  }
  size_t asked = 0;
  const std::vector<NetworkNamespace> namespaces =
      GroupByNamespace(processes, kHost, [&](pid_t) -> std::optional<std::string> {
        ++asked;
        return "0::/\n";
      });
  ASSERT_EQ(namespaces.size(), 1U);
  EXPECT_EQ(asked, kCgroupsTried);
}

TEST(AppendLabelledTest, MergesIntoTheFamilyOfTheSameName) {
  std::vector<prometheus::MetricFamily> out;
  FamilyBuilder("portwatch_sockets", "Sockets.", prometheus::MetricType::Gauge)
      .Add({{"port", "22"}}, 1)
      .MoveTo(out);
  std::vector<prometheus::MetricFamily> pod;
  FamilyBuilder("portwatch_sockets", "Sockets.", prometheus::MetricType::Gauge)
      .Add({{"port", "8080"}}, 3)
      .MoveTo(pod);
  FamilyBuilder("portwatch_peer_sockets", "Peers.", prometheus::MetricType::Gauge)
      .Add({{"peer_port", "5432"}}, 2)
      .MoveTo(pod);
  AppendLabelled(pod, {{"namespace", "shop"}, {"pod", "web-0"}}, out);
  EXPECT_TRUE(pod.empty());
  EXPECT_EQ(prometheus::TextSerializer().Serialize(out),
            "# HELP portwatch_sockets Sockets.\n"
            "# TYPE portwatch_sockets gauge\n"
            "portwatch_sockets{port=\"22\"} 1\n"
            "portwatch_sockets{port=\"8080\",namespace=\"shop\",pod=\"web-0\"} 3\n"
            "# HELP portwatch_peer_sockets Peers.\n"
            "# TYPE portwatch_peer_sockets gauge\n"
            "portwatch_peer_sockets{peer_port=\"5432\",namespace=\"shop\",pod=\"web-0\"} 2\n");
}

}  // namespace
}  // namespace portwatch
