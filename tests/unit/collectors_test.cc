// The procfs collectors' failure paths; their normal output is covered by golden_test.cc.
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/kernel_limits/kernel_limits_collector.h"
#include "collectors/netstat/netstat_collector.h"
#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using unit::FamilyNames;
using unit::Samples;
using Counts = std::map<std::string, double>;

/// A proc tree in a fresh temporary directory, removed afterwards.
class ProcTreeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "/portwatch-collectors-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    root_ = pattern;
  }
  void TearDown() override { std::filesystem::remove_all(root_); }

  void Write(const std::string& relative_path, const std::string& contents) {
    const std::filesystem::path path = root_ + "/" + relative_path;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path) << contents;
  }

  std::string root_;
};

TEST_F(ProcTreeTest, NetstatWithoutTheFileFails) {
  NetstatCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "cannot read " + root_ + "/net/netstat");
  EXPECT_TRUE(out.empty());
}

TEST_F(ProcTreeTest, NetstatWithoutTcpExtFails) {
  Write("net/netstat", "IpExt: InOctets\nIpExt: 5\n");
  NetstatCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "no TcpExt section in " + root_ + "/net/netstat");
  EXPECT_TRUE(out.empty());
}

TEST_F(ProcTreeTest, NetstatLeavesOutCountersTheKernelLacks) {
  Write("net/netstat", "TcpExt: ListenDrops TW Other\nTcpExt: 7 3 9\n");
  NetstatCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_TRUE(status.Ok());
  EXPECT_EQ(status.Error(), "");
  EXPECT_EQ(FamilyNames(out), (std::vector<std::string>{"portwatch_tcpext_tw_total",
                                                        "portwatch_tcpext_listen_drops_total"}));
  EXPECT_EQ(Samples(out, "portwatch_tcpext_tw_total"), (Counts{{"", 3}}));
  EXPECT_EQ(Samples(out, "portwatch_tcpext_listen_drops_total"), (Counts{{"", 7}}));
  EXPECT_EQ(out[0].type, prometheus::MetricType::Counter);
}

TEST_F(ProcTreeTest, KernelLimitsWithNothingToReadFails) {
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(),
            "cannot read net.ipv4.tcp_max_tw_buckets, net.ipv4.ip_local_port_range, "
            "net.ipv4.ip_local_reserved_ports");
  EXPECT_TRUE(out.empty());
}

TEST_F(ProcTreeTest, KernelLimitsReportsWhatItCouldRead) {
  Write("sys/net/ipv4/tcp_max_tw_buckets", "4096\n");
  Write("sys/net/ipv4/ip_local_port_range", "60999\t32768\n");  // reversed: rejected
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(),
            "cannot read net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports");
  EXPECT_EQ(FamilyNames(out), (std::vector<std::string>{"portwatch_tcp_max_tw_buckets"}));
  EXPECT_EQ(Samples(out, "portwatch_tcp_max_tw_buckets"), (Counts{{"", 4096}}));
}

TEST_F(ProcTreeTest, KernelLimitsWithOnlyTheRange) {
  Write("sys/net/ipv4/ip_local_port_range", "1024\t65535\n");
  Write("sys/net/ipv4/ip_local_reserved_ports", "\n");  // nothing reserved
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "cannot read net.ipv4.tcp_max_tw_buckets");
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_port_range_first"), (Counts{{"", 1024}}));
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_port_range_last"), (Counts{{"", 65535}}));
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_ports_available"), (Counts{{"", 64512}}));
}

TEST_F(ProcTreeTest, ReservedPortsInsideTheRangeAreNotAvailable) {
  Write("sys/net/ipv4/tcp_max_tw_buckets", "4096\n");
  Write("sys/net/ipv4/ip_local_port_range", "40000\t40999\n");
  // 3 inside the range (40000, 40998-40999), 2 outside it.
  Write("sys/net/ipv4/ip_local_reserved_ports", "22,40000,40998-41000,50000\n");
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_ports_available"), (Counts{{"", 1000 - 3}}));
}

TEST_F(ProcTreeTest, ReservedPortsListedTwiceCountOnce) {
  // Found by tests/fuzz (regressions/sysctl/reserved_port_twice): a port listed twice was
  // subtracted twice, and a one-port range with "0,0" reserved showed 4294967295 available.
  Write("sys/net/ipv4/tcp_max_tw_buckets", "4096\n");
  Write("sys/net/ipv4/ip_local_port_range", "40000\t40001\n");
  Write("sys/net/ipv4/ip_local_reserved_ports", "40000,40000-40001,40001\n");
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_ports_available"), (Counts{{"", 0}}));
}

TEST_F(ProcTreeTest, UnreadableReservedPortsFail) {
  Write("sys/net/ipv4/tcp_max_tw_buckets", "4096\n");
  Write("sys/net/ipv4/ip_local_port_range", "40000\t40999\n");
  Write("sys/net/ipv4/ip_local_reserved_ports", "8080-\n");
  KernelLimitsCollector collector{ProcFs(root_)};
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(Config{}, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "cannot read net.ipv4.ip_local_reserved_ports");
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_ports_available"), Counts{});
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_port_range_first"), (Counts{{"", 40000}}));
}

TEST_F(ProcTreeTest, KernelLimitsCountsUnreadablePodsOnlyWithPodsOn) {
  Write("sys/net/ipv4/tcp_max_tw_buckets", "4096\n");
  Write("sys/net/ipv4/ip_local_port_range", "40000\t40999\n");
  Write("sys/net/ipv4/ip_local_reserved_ports", "\n");
  // A proc tree without processes: no pod to read, but pods are looked for.
  KernelLimitsCollector collector{ProcFs(root_), std::make_shared<PodNamespaces>(ProcFs(root_))};
  Config config;
  config.sockets.pods = true;
  config.sockets.pod_logs_dir = root_ + "/pods";
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(config, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(Samples(out, "portwatch_tcp_max_tw_buckets"), (Counts{{"", 4096}}));
  EXPECT_EQ(Samples(out, "portwatch_pod_kernel_settings_unreadable"),
            (Counts{{"{setting=\"net.ipv4.ip_local_port_range\"}", 0},
                    {"{setting=\"net.ipv4.ip_local_reserved_ports\"}", 0},
                    {"{setting=\"net.ipv4.tcp_max_tw_buckets\"}", 0}}));

  config.sockets.pods = false;
  out.clear();
  status = collector.Collect(config, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(FamilyNames(out),
            (std::vector<std::string>{
                "portwatch_tcp_max_tw_buckets", "portwatch_ephemeral_port_range_first",
                "portwatch_ephemeral_port_range_last", "portwatch_ephemeral_ports_available"}));
}

}  // namespace
}  // namespace portwatch
