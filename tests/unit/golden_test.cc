// Golden files: every collector runs on fixtures and its exposition, as prometheus::TextSerializer
// writes it, must equal tests/golden/<collector>.prom byte for byte.
//
//   sockets        tests/fixtures/sockdiag/table.nlrec, a netlink dump recorded by
//                  tests/fixtures/record_sockdiag.sh, replayed through ReplayTransport, with the
//                  ephemeral port range of tests/fixtures/proc and
//                  tests/fixtures/config/golden_sockets.yaml
//   kernel_limits  tests/fixtures/proc/sys/net/ipv4/{tcp_max_tw_buckets,ip_local_port_range}
//   netstat        tests/fixtures/proc/net/netstat, captured from a real machine
//   services       the services of tests/fixtures/config/golden_services.yaml, the sock_diag
//                  answers built below (ServicesKernel) and the processes of tests/fixtures/proc
//                  (pids above the kernel's PID_MAX_LIMIT, so no real process is ever asked)
//   bind_events    the counts of a fake eBPF source (FixedCountsSource below): the kernel side is
//                  tested by tests/e2e/bind_events_e2e_test.cc
//
// Every collector of the registry has a golden file and every golden file a collector
// (GoldenTest.EveryCollectorHasAGoldenFile); tests/unit/CMakeLists.txt runs promtool on each file
// it finds in tests/golden.
//
// After an intended change to a collector's output, regenerate the files and review the diff:
//
//   PORTWATCH_UPDATE_GOLDEN=1 build/tests/unit/golden_test && git diff tests/golden
//
// With PORTWATCH_UPDATE_GOLDEN=1 each test first rewrites its golden file with what the collector
// wrote now, so the comparison that follows passes.
#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/bind_events/bind_events_collector.h"
#include "collectors/kernel_limits/kernel_limits_collector.h"
#include "collectors/netlink/transport.h"
#include "collectors/netstat/netstat_collector.h"
#include "collectors/services/services_collector.h"
#include "collectors/sockets/sockets_collector.h"
#include "exporter/config.h"
#include "exporter/registry.h"
#include "tests/unit/metric_samples.h"
#include "tests/unit/netlink_builder.h"

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
    // Never bless the output of a collection that already failed an expectation.
    ASSERT_FALSE(::testing::Test::HasFailure()) << "not rewriting " << path;
    std::ofstream(path, std::ios::binary | std::ios::trunc) << exposition;
    std::cout << "rewrote " << path << "\n";
  }
  std::ifstream probe(path);
  ASSERT_TRUE(probe.good()) << path << " is missing; create it with PORTWATCH_UPDATE_GOLDEN=1";
  EXPECT_EQ(exposition, ReadWholeFile(path))
      << "the " << name << " exposition differs from " << path
      << "; if the change is intended, regenerate with PORTWATCH_UPDATE_GOLDEN=1";
}

netlink::TransportFactory ReplayFactory(const std::string& path) {
  return [path]() -> Result<std::unique_ptr<netlink::Transport>> {
    Result<std::unique_ptr<netlink::ReplayTransport>> replay = netlink::ReplayTransport::Load(path);
    if (!replay) {
      return Failure{replay.Error()};
    }
    return std::unique_ptr<netlink::Transport>(std::move(replay).Value());
  };
}

std::string CollectText(Collector& collector, const Config& config = Config{}) {
  std::vector<prometheus::MetricFamily> families;
  Status status = collector.Collect(config, families);
  EXPECT_TRUE(status.Ok()) << collector.Name() << ": " << status.Error();
  EXPECT_EQ(status.Error(), "");
  return unit::Serialize(families);
}

TEST(GoldenTest, Sockets) {
  Result<Config> config = LoadConfig(kFixtures + "/config/golden_sockets.yaml");
  ASSERT_TRUE(config.Ok()) << config.Error();
  SocketsCollector collector(ProcFs(kProcFixture), ReplayFactory(kRecording));
  const std::string text = CollectText(collector, *config);
  ExpectGolden("sockets", text);
  // Each scrape opens a fresh transport, so the replay gives the same answer again.
  EXPECT_EQ(CollectText(collector, *config), text);
}

TEST(GoldenTest, KernelLimits) {
  KernelLimitsCollector collector{ProcFs(kProcFixture)};
  ExpectGolden("kernel_limits", CollectText(collector));
}

TEST(GoldenTest, Netstat) {
  NetstatCollector collector{ProcFs(kProcFixture)};
  ExpectGolden("netstat", CollectText(collector));
}

using netlink::Family;
using netlink::Protocol;
using unit::DatagramBuilder;
using unit::DiagSocket;

DiagSocket Socket(uint8_t family, uint8_t state, const std::string& local, uint16_t local_port,
                  const std::string& remote, uint16_t remote_port, uint32_t inode) {
  DiagSocket socket;
  socket.family = family;
  socket.state = state;
  socket.local_address = local;
  socket.local_port = local_port;
  socket.remote_address = remote;
  socket.remote_port = remote_port;
  socket.inode = inode;
  return socket;
}

unit::Attribute V6only(bool on) {
  return unit::Attribute{
      INET_DIAG_SKV6ONLY, {std::byte{on ? uint8_t{1} : uint8_t{0}}}, std::nullopt};
}

/// What the kernel answers the services collector for golden_services.yaml: per family, TCP
/// listeners, other TCP sockets on the services' ports, then every UDP socket; then the
/// bound-inactive TCP sockets on the ports that look free.
std::vector<netlink::Exchange> ServicesKernel() {
  constexpr uint32_t kPortId = 4242;
  const std::vector<uint16_t> tcp_ports = {5432, 8080, 40600, 40700};
  const uint32_t tcp_listen = netlink::StateBit(netlink::kListen);
  std::vector<netlink::Exchange> exchanges;
  auto exchange = [&exchanges](const netlink::DumpRequest& request, DatagramBuilder datagram) {
    const auto sequence = static_cast<uint32_t>(exchanges.size() + 1);
    exchanges.push_back(unit::MakeExchange(request, sequence, kPortId, {datagram.Done().Build()}));
  };
  auto next = [&exchanges]() {
    return DatagramBuilder(static_cast<uint32_t>(exchanges.size() + 1), kPortId);
  };
  // IPv4.
  exchange(unit::Request(Protocol::kTcp, Family::kIpv4, tcp_listen),
           next()
               .Socket(Socket(AF_INET, netlink::kListen, "0.0.0.0", 8080, "0.0.0.0", 0, 1001))
               .Socket(Socket(AF_INET, netlink::kListen, "127.0.0.1", 5432, "0.0.0.0", 0, 1003))
               .Socket(Socket(AF_INET, netlink::kListen, "0.0.0.0", 22, "0.0.0.0", 0, 1005)));
  DiagSocket time_wait =
      Socket(AF_INET, netlink::kTimeWait, "127.0.0.1", 8080, "127.0.0.1", 40123, 0);
  time_wait.timer = 3;
  time_wait.expires_ms = 30500;
  exchange(
      unit::Request(Protocol::kTcp, Family::kIpv4, netlink::kAllStates & ~tcp_listen, tcp_ports),
      next()
          .Socket(Socket(AF_INET, netlink::kEstablished, "10.0.0.5", 8080, "10.0.0.9", 51000, 1002))
          .Socket(time_wait));
  exchange(unit::Request(Protocol::kUdp, Family::kIpv4, netlink::kAllStates),
           next().Socket(Socket(AF_INET, netlink::kClose, "127.0.0.53", 53, "0.0.0.0", 0, 1006)));
  // IPv6.
  exchange(unit::Request(Protocol::kTcp, Family::kIpv6, tcp_listen),
           next().Socket(Socket(AF_INET6, netlink::kListen, "::1", 9792, "::", 0, 2000),
                         {V6only(true)}));
  exchange(
      unit::Request(Protocol::kTcp, Family::kIpv6, netlink::kAllStates & ~tcp_listen, tcp_ports),
      next());
  exchange(
      unit::Request(Protocol::kUdp, Family::kIpv6, netlink::kAllStates),
      next().Socket(Socket(AF_INET6, netlink::kClose, "::", 53, "::", 0, 1004), {V6only(false)}));
  // The TCP service ports nothing seems to hold are asked again for bound-inactive sockets:
  // 40700 has one (bind() without listen()), 40600 is free.
  const std::vector<uint16_t> look_free = {40600, 40700};
  exchange(unit::Request(Protocol::kTcp, Family::kIpv4, netlink::kBoundInactiveStates, look_free),
           next().Socket(Socket(AF_INET, netlink::kClose, "0.0.0.0", 40700, "0.0.0.0", 0, 1007)));
  exchange(unit::Request(Protocol::kTcp, Family::kIpv6, netlink::kBoundInactiveStates, look_free),
           next());
  return exchanges;
}

TEST(GoldenTest, Services) {
  Result<Config> config = LoadConfig(kFixtures + "/config/golden_services.yaml");
  ASSERT_TRUE(config.Ok()) << config.Error();
  const std::vector<netlink::Exchange> kernel = ServicesKernel();
  ServicesCollector collector(ProcFs(kProcFixture),
                              [&kernel]() -> Result<std::unique_ptr<netlink::Transport>> {
                                return std::unique_ptr<netlink::Transport>(
                                    std::make_unique<netlink::ReplayTransport>(kernel));
                              });
  std::vector<prometheus::MetricFamily> families;
  Status status = collector.Collect(*config, families);
  EXPECT_TRUE(status.Ok()) << status.Error();
  ExpectGolden("services", unit::Serialize(families));
}

/// The kernel side of bind_events, as fixed counts: two failures of one port and one of another
/// in the exporter's namespace, one connect() that found no local port.
class FixedCountsSource : public BindEventSource {
 public:
  bool Available() const override { return true; }
  std::string UnavailableReason() const override { return ""; }
  void SetNetnsFilter(uint32_t /*netns*/) override {}
  std::vector<std::pair<BindFailureKey, uint64_t>> ReadCounts() override {
    auto key = [](uint16_t port, uint8_t syscall, uint8_t err, const char* comm) {
      BindFailureKey failure;
      failure.netns = kNetns;
      failure.port = port;
      failure.syscall = syscall;
      failure.err = err;
      failure.family = AF_INET;
      failure.comm = comm;
      return failure;
    };
    return {{key(8080, PORTWATCH_SYSCALL_BIND, EADDRINUSE, "java"), 2},
            {key(80, PORTWATCH_SYSCALL_BIND, EACCES, "nginx"), 1},
            {key(443, PORTWATCH_SYSCALL_CONNECT, EADDRNOTAVAIL, "curl"), 1}};
  }
  uint64_t UncountedFailures() const override { return 0; }
  uint64_t LostEvents() const override { return 0; }
  std::string AttachPath() const override { return "fexit"; }

  static constexpr uint32_t kNetns = 4026531840;
};

TEST(GoldenTest, BindEvents) {
  const Config config;
  BindEventsCollector collector(
      ProcFs(kProcFixture),
      []() -> Result<std::unique_ptr<netlink::Transport>> {
        return Failure{"no socket table in the golden test"};
      },
      [](const std::vector<BindEventsAttach>&, BindEventHandler) {
        return std::make_unique<FixedCountsSource>();
      },
      config.bind_events, FixedCountsSource::kNetns, [](const std::string&) {});
  ExpectGolden("bind_events", CollectText(collector, config));
}

TEST(GoldenTest, EveryCollectorHasAGoldenFile) {
  std::set<std::string> collectors;
  for (const CollectorSpec& spec : KnownCollectors()) {
    collectors.insert(spec.name);
  }
  std::set<std::string> golden;
  for (const auto& entry : std::filesystem::directory_iterator(PORTWATCH_GOLDEN)) {
    if (entry.path().extension() == ".prom") {
      golden.insert(entry.path().stem().string());
    }
  }
  EXPECT_EQ(golden, collectors);
}

}  // namespace
}  // namespace portwatch
