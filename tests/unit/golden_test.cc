// Golden files: every collector runs on fixtures and its exposition, as prometheus::TextSerializer
// writes it, must equal tests/golden/<collector>.prom byte for byte.
//
//   sockets        tests/fixtures/sockdiag/table.nlrec, a netlink dump recorded by
//                  tests/fixtures/record_sockdiag.sh, replayed through ReplayTransport, with the
//                  ephemeral port range of tests/fixtures/proc
//   kernel_limits  tests/fixtures/proc/sys/net/ipv4/{tcp_max_tw_buckets,ip_local_port_range}
//   netstat        tests/fixtures/proc/net/netstat, captured from a real machine
//
// After an intended change to a collector's output, regenerate the files and review the diff:
//
//   PORTWATCH_UPDATE_GOLDEN=1 build/tests/unit/golden_test && git diff tests/golden
//
// With PORTWATCH_UPDATE_GOLDEN=1 each test first rewrites its golden file with what the collector
// wrote now, so the comparison that follows passes.
// tests/unit/CMakeLists.txt also runs `promtool check metrics` on every golden file.
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/kernel_limits_collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/netstat_collector.h"
#include "collectors/sockets_collector.h"
#include "exporter/config.h"
#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

const std::string kFixtures = PORTWATCH_FIXTURES;
const std::string kProcFixture = kFixtures + "/proc";
const std::string kRecording = kFixtures + "/sockdiag/table.nlrec";

bool UpdateRequested() {
  const char* update = std::getenv("PORTWATCH_UPDATE_GOLDEN");
  return update != nullptr && std::string(update) == "1";
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

/// Compares `exposition` with tests/golden/<name>.prom, or rewrites that file on request.
void ExpectGolden(const std::string& name, const std::string& exposition) {
  const std::string path = std::string(PORTWATCH_GOLDEN) + "/" + name + ".prom";
  if (UpdateRequested()) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << exposition;
    std::cout << "rewrote " << path << "\n";
  }
  std::ifstream probe(path);
  ASSERT_TRUE(probe.good()) << path << " is missing; create it with PORTWATCH_UPDATE_GOLDEN=1";
  EXPECT_EQ(exposition, ReadWholeFile(path))
      << "the " << name << " exposition differs from " << path
      << "; if the change is intended, regenerate with PORTWATCH_UPDATE_GOLDEN=1";
}

SocketsCollector::TransportFactory ReplayFactory(const std::string& path) {
  return [path](std::string& error) -> std::unique_ptr<netlink::Transport> {
    return netlink::ReplayTransport::Load(path, error);
  };
}

std::string CollectText(Collector& collector) {
  std::vector<prometheus::MetricFamily> families;
  CollectStatus status = collector.Collect(Config{}, families);
  EXPECT_TRUE(status.ok) << collector.Name() << ": " << status.error;
  EXPECT_EQ(status.error, "");
  return unit::Serialize(families);
}

TEST(GoldenTest, Sockets) {
  SocketsCollector collector(ProcFs(kProcFixture), ReplayFactory(kRecording));
  const std::string text = CollectText(collector);
  ExpectGolden("sockets", text);
  // Each scrape opens a fresh transport, so the replay gives the same answer again.
  EXPECT_EQ(CollectText(collector), text);
}

TEST(GoldenTest, KernelLimits) {
  KernelLimitsCollector collector{ProcFs(kProcFixture)};
  ExpectGolden("kernel_limits", CollectText(collector));
}

TEST(GoldenTest, Netstat) {
  NetstatCollector collector{ProcFs(kProcFixture)};
  ExpectGolden("netstat", CollectText(collector));
}

}  // namespace
}  // namespace portwatch
