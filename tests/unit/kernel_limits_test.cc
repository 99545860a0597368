// kernel_limits with pods: BuildKernelLimitFamilies on fixture texts, as the collector would read
// them from the node's /proc/sys/net and from files opened inside each pod's network namespace.
// The node-only exposition is covered by golden_test.cc, the reading failures by
// collectors_test.cc, the reading inside real namespaces by tests/e2e/pods_kernel_e2e_test.cc.
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/kernel_limits/kernel_limits_collector.h"
#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using unit::FamilyNames;
using unit::Samples;
using unit::Serialize;
using Counts = std::map<std::string, double>;

const std::string kHelpBuckets =
    "# HELP portwatch_tcp_max_tw_buckets net.ipv4.tcp_max_tw_buckets: TIME_WAIT sockets beyond "
    "this are destroyed at once (counted in portwatch_tcpext_tcp_time_wait_overflow_total). The "
    "node's, and each pod's own (labels namespace and pod).\n"
    "# TYPE portwatch_tcp_max_tw_buckets gauge\n";
const std::string kHelpFirst =
    "# HELP portwatch_ephemeral_port_range_first First port of net.ipv4.ip_local_port_range (IPv4 "
    "and IPv6). The node's, and each pod's own (labels namespace and pod).\n"
    "# TYPE portwatch_ephemeral_port_range_first gauge\n";
const std::string kHelpLast =
    "# HELP portwatch_ephemeral_port_range_last Last port of net.ipv4.ip_local_port_range (IPv4 "
    "and IPv6). The node's, and each pod's own (labels namespace and pod).\n"
    "# TYPE portwatch_ephemeral_port_range_last gauge\n";
const std::string kHelpAvailable =
    "# HELP portwatch_ephemeral_ports_available Ports connect() can pick: the size of "
    "ip_local_port_range less the ip_local_reserved_ports inside it. The node's, and each pod's "
    "own (labels namespace and pod).\n"
    "# TYPE portwatch_ephemeral_ports_available gauge\n";
const std::string kHelpUnreadable =
    "# HELP portwatch_pod_kernel_settings_unreadable Pods whose own sysctl (setting) could not be "
    "read or parsed this scrape: they have no series in the families it feeds "
    "(net.ipv4.tcp_max_tw_buckets: portwatch_tcp_max_tw_buckets; net.ipv4.ip_local_port_range: "
    "portwatch_ephemeral_port_range_first/_last and portwatch_ephemeral_ports_available; "
    "net.ipv4.ip_local_reserved_ports: portwatch_ephemeral_ports_available). Pods that could not "
    "be entered are counted in portwatch_pod_network_namespaces{state=\"failed\"}.\n"
    "# TYPE portwatch_pod_kernel_settings_unreadable gauge\n";

/// The node's defaults: 28232 ports, none reserved.
KernelLimitTexts NodeTexts() { return {"262144\n", "32768\t60999\n", "\n"}; }

PodKernelLimitTexts Pod(const std::string& ns, const std::string& name, KernelLimitTexts texts) {
  return {{{"namespace", ns}, {"pod", name}}, "uid-" + name, std::move(texts)};
}

TEST(KernelLimitsTest, EachPodsOwnSettingsJoinTheNodesFamiliesAndAnUnreadablePodIsCounted) {
  // web-0 set its own: 1000 ports, 11 of them reserved (20000, 20100-20109; 30000 is outside).
  // web-1 is gone between discovery and reading: none of its files answers.
  const std::vector<PodKernelLimitTexts> pods = {
      Pod("shop", "web-0", {"4096\n", "20000\t20999\n", "20000,20100-20109,30000\n"}),
      Pod("shop", "web-1", {std::nullopt, std::nullopt, std::nullopt})};
  const KernelLimitFamilies built = BuildKernelLimitFamilies(NodeTexts(), pods);
  EXPECT_EQ(
      Serialize(built.families),
      kHelpBuckets +
          "portwatch_tcp_max_tw_buckets 262144\n"
          "portwatch_tcp_max_tw_buckets{namespace=\"shop\",pod=\"web-0\"} 4096\n" +
          kHelpFirst +
          "portwatch_ephemeral_port_range_first 32768\n"
          "portwatch_ephemeral_port_range_first{namespace=\"shop\",pod=\"web-0\"} 20000\n" +
          kHelpLast +
          "portwatch_ephemeral_port_range_last 60999\n"
          "portwatch_ephemeral_port_range_last{namespace=\"shop\",pod=\"web-0\"} 20999\n" +
          kHelpAvailable +
          "portwatch_ephemeral_ports_available 28232\n"
          "portwatch_ephemeral_ports_available{namespace=\"shop\",pod=\"web-0\"} 989\n" +
          kHelpUnreadable +
          "portwatch_pod_kernel_settings_unreadable{setting=\"net.ipv4.ip_local_port_range\"} "
          "1\n"
          "portwatch_pod_kernel_settings_unreadable{setting=\"net.ipv4.ip_local_reserved_"
          "ports\"} 1\n"
          "portwatch_pod_kernel_settings_unreadable{setting=\"net.ipv4.tcp_max_tw_buckets\"} "
          "1\n");
  EXPECT_TRUE(built.node_unreadable.empty());
  ASSERT_EQ(built.pods_unreadable.size(), 3U);
  for (const UnreadablePodSetting& unreadable : built.pods_unreadable) {
    EXPECT_EQ(unreadable.pod, 1U) << unreadable.setting;
  }
  EXPECT_EQ(built.pods_unreadable[0].setting, "net.ipv4.tcp_max_tw_buckets");
  EXPECT_EQ(built.pods_unreadable[1].setting, "net.ipv4.ip_local_port_range");
  EXPECT_EQ(built.pods_unreadable[2].setting, "net.ipv4.ip_local_reserved_ports");
}

TEST(KernelLimitsTest, APodsMalformedSettingLeavesOutOnlyTheFamiliesItFeeds) {
  // The reserved ports do not parse: the pod keeps its range and its TIME_WAIT limit, loses only
  // the ports available, which needs both.
  const std::vector<PodKernelLimitTexts> pods = {
      Pod("", "0d5c6a8e-uid", {"8192\n", "40000\t40099\n", "8080-\n"})};
  const KernelLimitFamilies built = BuildKernelLimitFamilies(NodeTexts(), pods);
  const std::string pod = "{namespace=\"\",pod=\"0d5c6a8e-uid\"}";
  EXPECT_EQ(Samples(built.families, "portwatch_tcp_max_tw_buckets"),
            (Counts{{"", 262144}, {pod, 8192}}));
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_port_range_first"),
            (Counts{{"", 32768}, {pod, 40000}}));
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_port_range_last"),
            (Counts{{"", 60999}, {pod, 40099}}));
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_ports_available"), (Counts{{"", 28232}}));
  EXPECT_EQ(Samples(built.families, "portwatch_pod_kernel_settings_unreadable"),
            (Counts{{"{setting=\"net.ipv4.ip_local_port_range\"}", 0},
                    {"{setting=\"net.ipv4.ip_local_reserved_ports\"}", 1},
                    {"{setting=\"net.ipv4.tcp_max_tw_buckets\"}", 0}}));
}

TEST(KernelLimitsTest, WithoutPodsTheNodesSeriesAloneAndNoPodCount) {
  const KernelLimitFamilies built = BuildKernelLimitFamilies(NodeTexts(), std::nullopt);
  EXPECT_EQ(Serialize(built.families),
            kHelpBuckets + "portwatch_tcp_max_tw_buckets 262144\n" + kHelpFirst +
                "portwatch_ephemeral_port_range_first 32768\n" + kHelpLast +
                "portwatch_ephemeral_port_range_last 60999\n" + kHelpAvailable +
                "portwatch_ephemeral_ports_available 28232\n");
}

TEST(KernelLimitsTest, WithPodsOnAndNoPodEveryCountIsZero) {
  const KernelLimitFamilies built =
      BuildKernelLimitFamilies(NodeTexts(), std::vector<PodKernelLimitTexts>{});
  EXPECT_EQ(FamilyNames(built.families),
            (std::vector<std::string>{
                "portwatch_tcp_max_tw_buckets", "portwatch_ephemeral_port_range_first",
                "portwatch_ephemeral_port_range_last", "portwatch_ephemeral_ports_available",
                "portwatch_pod_kernel_settings_unreadable"}));
  EXPECT_EQ(Samples(built.families, "portwatch_pod_kernel_settings_unreadable"),
            (Counts{{"{setting=\"net.ipv4.ip_local_port_range\"}", 0},
                    {"{setting=\"net.ipv4.ip_local_reserved_ports\"}", 0},
                    {"{setting=\"net.ipv4.tcp_max_tw_buckets\"}", 0}}));
}

TEST(KernelLimitsTest, AnUnreadableNodeSettingStillShowsThePodsOwn) {
  // The node's range is reversed (rejected) and its TIME_WAIT limit not a number: the node fails
  // those (the collector reports them), the pod's rows stay.
  const std::vector<PodKernelLimitTexts> pods = {
      Pod("batch", "job-0", {"4096\n", "30000\t30999\n", "\n"})};
  const KernelLimitFamilies built =
      BuildKernelLimitFamilies({"lots\n", "60999\t32768\n", "\n"}, pods);
  EXPECT_EQ(built.node_unreadable, (std::vector<std::string>{"net.ipv4.tcp_max_tw_buckets",
                                                             "net.ipv4.ip_local_port_range"}));
  const std::string pod = "{namespace=\"batch\",pod=\"job-0\"}";
  EXPECT_EQ(Samples(built.families, "portwatch_tcp_max_tw_buckets"), (Counts{{pod, 4096}}));
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_port_range_first"),
            (Counts{{pod, 30000}}));
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_ports_available"), (Counts{{pod, 1000}}));
  EXPECT_TRUE(built.pods_unreadable.empty());
}

TEST(KernelLimitsTest, ThePodsOwnReservedPortsCountAgainstThePodsOwnRange) {
  // The node reserves its whole range, 40000-40099; the pod reserves the same ports, outside its
  // own range: each namespace's reserved ports count against its own range only.
  const std::vector<PodKernelLimitTexts> pods = {
      Pod("shop", "web-0", {"4096\n", "32768\t32867\n", "40000-40099\n"})};
  const KernelLimitFamilies built =
      BuildKernelLimitFamilies({"262144\n", "40000\t40099\n", "40000-40099\n"}, pods);
  EXPECT_EQ(Samples(built.families, "portwatch_ephemeral_ports_available"),
            (Counts{{"", 0}, {"{namespace=\"shop\",pod=\"web-0\"}", 100}}));
}

}  // namespace
}  // namespace portwatch
