// End to end: each pod's own kernel settings. ip_local_port_range, ip_local_reserved_ports and
// tcp_max_tw_buckets belong to a network namespace (a pod sets them as safe sysctls); the
// kernel_limits collector reads every pod's from files opened inside its namespace and writes
// them, labelled, beside the node's own in the same families.
#include "tests/e2e/pods_fixture.h"

namespace portwatch::testing {
namespace {

/// The number of series of family `name` in `metrics`, and the number of its `# TYPE` lines.
std::pair<size_t, size_t> SeriesAndTypeLines(const Exposition& metrics, const std::string& name) {
  size_t series = 0;
  for (const auto& [key, value] : metrics.Samples()) {
    series += key == name || key.rfind(name + "{", 0) == 0;
  }
  size_t types = 0;
  const std::string type = "# TYPE " + name + " ";
  for (size_t at = metrics.Text().find(type); at != std::string::npos;
       at = metrics.Text().find(type, at + 1)) {
    ++types;
  }
  return {series, types};
}

TEST_F(PodsE2eTest, EachPodsOwnKernelSettingsAreExposedBesideTheNodes) {
  // The node (the exporter's own namespace) has settings no pod shares.
  ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_port_range", "45000 45999"), "");
  ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_reserved_ports", "45000-45009"), "");
  ASSERT_EQ(WriteSysctl("net/ipv4/tcp_max_tw_buckets", "7000"), "");

  std::mt19937_64 random(std::random_device{}());
  const std::string web0 = NewPodUid(random);
  const std::string web1 = NewPodUid(random);
  // web-0 sets all three: 1000 ports of which 11 reserved (20000, 20100-20109; 30000 lies
  // outside its range).
  StartPod(
      web0, CgroupfsRoot(), fs::path("kubepods") / ("pod" + web0) / RandomHex(random, 64),
      "20000 20999", [](std::vector<UniqueFd>&) {
        if (!WriteSysctl("net/ipv4/tcp_max_tw_buckets", "4096").empty() ||
            !WriteSysctl("net/ipv4/ip_local_reserved_ports", "20000,20100-20109,30000").empty()) {
          ::_exit(4);
        }
      });
  // web-1 sets only its range; its TIME_WAIT limit is a new namespace's default (half the TCP
  // hash's size), which it writes down for the test to compare.
  const fs::path web1_default = dir_ / "web-1.tcp_max_tw_buckets";
  StartPod(web1, CgroupfsRoot(), fs::path("kubepods") / ("pod" + web1) / RandomHex(random, 64),
           "30000 30999", [web1_default](std::vector<UniqueFd>&) {
             std::ifstream in("/proc/sys/net/ipv4/tcp_max_tw_buckets");
             int64_t buckets = 0;
             if (!(in >> buckets)) {
               ::_exit(4);
             }
             std::ofstream(web1_default) << buckets;
           });
  for (const FakePod& pod : pods_) {
    ASSERT_TRUE(pod.process->Ready());
  }
  NamePod("shop", "web-0", web0);
  NamePod("shop", "web-1", web1);
  double web1_buckets = 0;
  ASSERT_TRUE(std::ifstream(web1_default) >> web1_buckets);
  ASSERT_NE(web1_buckets, 7000);  // else the node's value would pass for the pod's

  ASSERT_NO_FATAL_FAILURE(StartExporter());
  const Exposition metrics = ScrapeUntilEveryPodWasRead();
  const std::map<std::string, std::string> web0_labels = {{"namespace", "shop"}, {"pod", "web-0"}};
  const std::map<std::string, std::string> web1_labels = {{"namespace", "shop"}, {"pod", "web-1"}};

  EXPECT_EQ(metrics.Value("portwatch_tcp_max_tw_buckets", web0_labels), 4096) << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_first", web0_labels), 20000);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_last", web0_labels), 20999);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_ports_available", web0_labels), 1000 - 11);

  EXPECT_EQ(metrics.Value("portwatch_tcp_max_tw_buckets", web1_labels), web1_buckets);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_first", web1_labels), 30000);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_last", web1_labels), 30999);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_ports_available", web1_labels), 1000);

  // The node's series: its own values, no pod labels, whatever the pods set.
  EXPECT_EQ(metrics.Value("portwatch_tcp_max_tw_buckets"), 7000);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_first"), 45000);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_port_range_last"), 45999);
  EXPECT_EQ(metrics.Value("portwatch_ephemeral_ports_available"), 1000 - 10);

  // One family each (one HELP and TYPE): the node's series and the two pods'.
  for (const char* family :
       {"portwatch_tcp_max_tw_buckets", "portwatch_ephemeral_port_range_first",
        "portwatch_ephemeral_port_range_last", "portwatch_ephemeral_ports_available"}) {
    EXPECT_EQ(SeriesAndTypeLines(metrics, family), std::make_pair(size_t{3}, size_t{1})) << family;
  }
  for (const char* setting : {"net.ipv4.tcp_max_tw_buckets", "net.ipv4.ip_local_port_range",
                              "net.ipv4.ip_local_reserved_ports"}) {
    EXPECT_EQ(metrics.Value("portwatch_pod_kernel_settings_unreadable", {{"setting", setting}}), 0)
        << setting;
  }
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "kernel_limits"}}),
            1);

  // web-1 goes away: its series go with it, the node's and web-0's stay.
  pods_[1].process->Kill();
  const Exposition after = Scrape();
  EXPECT_EQ(after.Value("portwatch_tcp_max_tw_buckets", web1_labels), std::nullopt) << after.Text();
  EXPECT_EQ(after.Value("portwatch_tcp_max_tw_buckets", web0_labels), 4096);
  EXPECT_EQ(after.Value("portwatch_tcp_max_tw_buckets"), 7000);
  EXPECT_EQ(SeriesAndTypeLines(after, "portwatch_ephemeral_ports_available"),
            std::make_pair(size_t{2}, size_t{1}));
}

}  // namespace
}  // namespace portwatch::testing
