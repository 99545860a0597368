#include "collectors/sockets/sockets_collector.h"

#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/metric_samples.h"
#include "tests/unit/netlink_builder.h"

namespace portwatch {
namespace {

/// The node's namespace only: these tests feed the collector recorded dumps, not a node's pods.
Config HostOnly() {
  Config config;
  config.sockets.pods = false;
  return config;
}

using netlink::DumpRequest;
using netlink::Exchange;
using netlink::Family;
using netlink::Protocol;
using unit::DatagramBuilder;
using unit::DiagSocket;
using unit::FamilyNames;
using unit::PeerKey;
using unit::Samples;
using unit::SocketKey;
using Counts = std::map<std::string, double>;
using Datagrams = std::vector<std::vector<std::byte>>;

const std::string kProcFixture = std::string(PORTWATCH_FIXTURES) + "/proc";  // 40000-40999
constexpr uint32_t kPortId = 77;

/// A ReplayTransport that reports, when the collector drops it, how many dumps it served.
class CountingReplay : public netlink::Transport {
 public:
  CountingReplay(std::vector<Exchange> exchanges, size_t& served)
      : replay_(std::move(exchanges)), served_(served) {}
  ~CountingReplay() override { served_ = replay_.RequestsServed(); }

  uint32_t NextSequence() override { return replay_.NextSequence(); }
  Status Send(std::span<const std::byte> request) override { return replay_.Send(request); }
  Result<netlink::Received> Receive(std::span<std::byte> buffer) override {
    return replay_.Receive(buffer);
  }
  uint32_t PortId() const override { return replay_.PortId(); }

 private:
  netlink::ReplayTransport replay_;
  size_t& served_;
};

/// Scripts the kernel's answers, dump by dump, in the order the collector asks.
class KernelScript {
 public:
  /// The next dump, of every socket of `protocol`/`family`, answered by `datagrams` built with
  /// the sequence and port id the collector will use.
  KernelScript& Expect(Protocol protocol, Family family,
                       const std::function<Datagrams(DatagramBuilder)>& answer,
                       uint32_t states = netlink::kAllStates) {
    const DumpRequest request = unit::Request(protocol, family, states);
    const auto sequence = static_cast<uint32_t>(exchanges_.size()) + 500;
    exchanges_.push_back(
        unit::MakeExchange(request, sequence, kPortId, answer(DatagramBuilder(sequence, kPortId))));
    return *this;
  }
  /// The next dump, of TCP's two families in one walk (the older request), answered by
  /// `answer` (sockets through DatagramBuilder::OlderReplySocket).
  KernelScript& ExpectBothFamilies(const std::function<Datagrams(DatagramBuilder)>& answer) {
    DumpRequest request = unit::Request(Protocol::kTcp, Family::kIpv4, netlink::kAllStates);
    request.both_families = true;
    const auto sequence = static_cast<uint32_t>(exchanges_.size()) + 500;
    exchanges_.push_back(
        unit::MakeExchange(request, sequence, kPortId, answer(DatagramBuilder(sequence, kPortId))));
    return *this;
  }
  KernelScript& ExpectEmpty(Protocol protocol, Family family) {
    return Expect(protocol, family,
                  [](DatagramBuilder datagram) { return Datagrams{datagram.Done().Build()}; });
  }
  KernelScript& ExpectUnsupported(Protocol protocol, Family family) {
    return Expect(protocol, family, [](DatagramBuilder datagram) {
      return Datagrams{datagram.Error(ENOENT).Build()};
    });
  }

  SocketsCollector::TransportFactory Factory() {
    return [this]() -> Result<std::unique_ptr<netlink::Transport>> {
      opened_++;
      return std::unique_ptr<netlink::Transport>(
          std::make_unique<CountingReplay>(exchanges_, served_));
    };
  }
  size_t Served() const { return served_; }
  int Opened() const { return opened_; }

 private:
  std::vector<Exchange> exchanges_;
  size_t served_ = 0;
  int opened_ = 0;
};

DiagSocket Socket(uint8_t family, uint8_t state, uint16_t local_port, uint16_t remote_port) {
  DiagSocket socket;
  socket.family = family;
  socket.state = state;
  socket.local_port = local_port;
  socket.remote_port = remote_port;
  socket.local_address = family == AF_INET ? "127.0.0.1" : "::1";
  socket.remote_address = socket.local_address;
  return socket;
}

const std::vector<std::string> kAllFamilies = {"portwatch_sock_diag_table_available",
                                               "portwatch_scrape_sockets_read",
                                               "portwatch_sockets",
                                               "portwatch_peer_sockets",
                                               "portwatch_ephemeral_destination_sockets",
                                               "portwatch_ephemeral_destination_untracked_sockets",
                                               "portwatch_port_series_folded",
                                               "portwatch_socket_table_backend",
                                               "portwatch_socket_iterator_available",
                                               "portwatch_socket_iterator_fallbacks_total"};
const std::vector<std::string> kStatusFamilies = {
    "portwatch_sock_diag_table_available", "portwatch_scrape_sockets_read",
    "portwatch_socket_table_backend", "portwatch_socket_iterator_available",
    "portwatch_socket_iterator_fallbacks_total"};

constexpr const char* kTcp4 = R"({family="ipv4",protocol="tcp"})";
constexpr const char* kTcp6 = R"({family="ipv6",protocol="tcp"})";
constexpr const char* kUdp4 = R"({family="ipv4",protocol="udp"})";
constexpr const char* kUdp6 = R"({family="ipv6",protocol="udp"})";

TEST(SocketsCollectorTest, OneDumpPerTableWhenListenersComeFirst) {
  KernelScript kernel;
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Fresh()
                                     .Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                                     .Socket(Socket(AF_INET, netlink::kListen, 40500, 0))
                                     .Build(),
                                 d.Fresh()
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40001))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40001, 5000))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40500, 40002))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40002, 40500))
                                     .Done()
                                     .Build()};
              })
      .Expect(Protocol::kTcp, Family::kIpv6,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET6, netlink::kListen, 5001, 0))
                                     .Socket(Socket(AF_INET6, netlink::kTimeWait, 40003, 5001))
                                     .Done()
                                     .Build()};
              })
      .Expect(Protocol::kUdp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET, netlink::kClose, 5353, 0))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40004, 5353))
                                     .Done()
                                     .Build()};
              })
      .ExpectUnsupported(Protocol::kUdp, Family::kIpv6);

  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_TRUE(status.Ok());
  EXPECT_EQ(status.Error(), "");
  EXPECT_EQ(kernel.Opened(), 1);
  EXPECT_EQ(kernel.Served(), 4U);  // no listener turned up late: no second read

  EXPECT_EQ(FamilyNames(out), kAllFamilies);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"),
            (Counts{{kTcp4, 1}, {kTcp6, 1}, {kUdp4, 1}, {kUdp6, 0}}));
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"),
            (Counts{{kTcp4, 6}, {kTcp6, 2}, {kUdp4, 2}, {kUdp6, 0}}));
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                {SocketKey("ipv4", "5000", "tcp", "established"), 1},
                {SocketKey("ipv4", "40500", "tcp", "listen"), 1},
                {SocketKey("ipv4", "40500", "tcp", "established"), 1},
                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 2},
                {SocketKey("ipv6", "5001", "tcp", "listen"), 1},
                {SocketKey("ipv6", "ephemeral", "tcp", "time_wait"), 1},
                {SocketKey("ipv4", "5353", "udp", "unconn"), 1},
                {SocketKey("ipv4", "ephemeral", "udp", "established"), 1},
            }));
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"), (Counts{
                                                        {PeerKey("5000", "tcp", "established"), 1},
                                                        {PeerKey("40500", "tcp", "established"), 1},
                                                        {PeerKey("5001", "tcp", "time_wait"), 1},
                                                        {PeerKey("5353", "udp", "established"), 1},
                                                    }));
  EXPECT_EQ(Samples(out, "portwatch_port_series_folded"),
            (Counts{{R"({metric="portwatch_peer_sockets"})", 0},
                    {R"({metric="portwatch_sockets"})", 0}}));
}

/// A /proc with IPv6 (net/if_inet6) and the fixture's port range, 40000-40999.
class Ipv6ProcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = std::filesystem::temp_directory_path() /
            ("portwatch-ipv6-proc-" + std::to_string(::getpid()));
    std::filesystem::create_directories(root_ / "sys/net/ipv4");
    std::filesystem::create_directories(root_ / "net");
    std::ofstream(root_ / "sys/net/ipv4/ip_local_port_range") << "40000\t40999\n";
    std::ofstream(root_ / "net/if_inet6")
        << "00000000000000000000000000000001 01 80 10 80       lo\n";
  }
  void TearDown() override { std::filesystem::remove_all(root_); }
  ProcFs Proc() const { return ProcFs(root_.string()); }

  std::filesystem::path root_;
};

DiagSocket OldReply(uint8_t family, uint8_t state, uint16_t local_port, uint16_t remote_port) {
  return Socket(family, state, local_port, remote_port);
}

TEST_F(Ipv6ProcTest, OneTcpWalkForBothFamilies) {
  KernelScript kernel;
  // Listeners of both families come first in the walk, then the rest, mixed.
  kernel
      .ExpectBothFamilies([](DatagramBuilder d) {
        return Datagrams{
            d.OlderReplySocket(OldReply(AF_INET, netlink::kListen, 5000, 0))
                .OlderReplySocket(OldReply(AF_INET6, netlink::kListen, 5001, 0))
                .OlderReplySocket(OldReply(AF_INET6, netlink::kEstablished, 5001, 40003))
                .OlderReplySocket(OldReply(AF_INET, netlink::kEstablished, 5000, 40001))
                .OlderReplySocket(OldReply(AF_INET, netlink::kEstablished, 40001, 5000))
                .Done()
                .Build()};
      })
      .ExpectEmpty(Protocol::kUdp, Family::kIpv4)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv6);
  auto dumps = std::make_shared<KeptDumps>();
  SocketsCollector collector(Proc(), kernel.Factory(), nullptr, dumps);
  std::vector<prometheus::MetricFamily> out;
  const Status status = collector.Collect(HostOnly(), out);
  ASSERT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Served(), 3U);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"),
            (Counts{{kTcp4, 1}, {kTcp6, 1}, {kUdp4, 1}, {kUdp6, 1}}));
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"),
            (Counts{{kTcp4, 3}, {kTcp6, 2}, {kUdp4, 0}, {kUdp6, 0}}));
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                {SocketKey("ipv4", "5000", "tcp", "established"), 1},
                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
                {SocketKey("ipv6", "5001", "tcp", "listen"), 1},
                {SocketKey("ipv6", "5001", "tcp", "established"), 1},
            }));
  // The recording is per family, as the services collector asks.
  const std::shared_ptr<const netlink::RecordedDump> kept = dumps->Find(KeptDumps::kOwnNamespace);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->Records(), 2U);  // the listeners; no service port
  const DumpRequest ipv6_listeners =
      unit::Request(Protocol::kTcp, Family::kIpv6, netlink::StateBit(netlink::kListen));
  ASSERT_TRUE(kept->Covers(ipv6_listeners));
  std::vector<uint16_t> ports;
  kept->Replay(ipv6_listeners, [&ports](const netlink::SocketRecord& record) {
    ports.push_back(record.local_port);
  });
  EXPECT_EQ(ports, std::vector<uint16_t>{5001});
}

TEST_F(Ipv6ProcTest, AKernelRefusingTheOneWalkIsReadPerFamilyFromThenOn) {
  KernelScript kernel;
  kernel.ExpectBothFamilies([](DatagramBuilder d) { return Datagrams{d.Error(EINVAL).Build()}; })
      .Expect(
          Protocol::kTcp, Family::kIpv4,
          [](DatagramBuilder d) {
            return Datagrams{d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0)).Done().Build()};
          })
      .ExpectEmpty(Protocol::kTcp, Family::kIpv6)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv4)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv6);
  KernelScript next_scrape;
  next_scrape.ExpectEmpty(Protocol::kTcp, Family::kIpv4)
      .ExpectEmpty(Protocol::kTcp, Family::kIpv6)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv4)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv6);
  int scrape = 0;
  SocketsCollector collector(Proc(),
                             [&]() { return (scrape == 0 ? kernel : next_scrape).Factory()(); });
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  ASSERT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Served(), 5U);
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{{SocketKey("ipv4", "5000", "tcp", "listen"), 1}}));
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"),
            (Counts{{kTcp4, 1}, {kTcp6, 1}, {kUdp4, 1}, {kUdp6, 1}}));
  scrape = 1;
  out.clear();
  status = collector.Collect(HostOnly(), out);
  ASSERT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(next_scrape.Served(), 4U);  // no second try of the one walk
}

/// Every socket `dump` replays for `request`, as "state:port".
std::vector<std::string> Replayed(const netlink::RecordedDump& dump, const DumpRequest& request) {
  EXPECT_TRUE(dump.Covers(request));
  std::vector<std::string> sockets;
  dump.Replay(request, [&sockets](const netlink::SocketRecord& record) {
    sockets.push_back(std::string(netlink::StateName(record.state)) + ":" +
                      std::to_string(record.local_port));
  });
  return sockets;
}

TEST(SocketsCollectorTest, RecordsItsDumpsForTheCollectorsAfterIt) {
  KernelScript kernel;
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                                     .Socket(Socket(AF_INET, netlink::kListen, 40500, 0))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40001))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40001, 5000))
                                     .Done()
                                     .Build()};
              })
      .ExpectEmpty(Protocol::kTcp, Family::kIpv6)
      .Expect(Protocol::kUdp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET, netlink::kClose, 5353, 0))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40004, 5353))
                                     .Done()
                                     .Build()};
              })
      .ExpectUnsupported(Protocol::kUdp, Family::kIpv6);
  auto dumps = std::make_shared<KeptDumps>();
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory(), nullptr, dumps);
  Config config = HostOnly();
  ServiceConfig service;
  service.name = "app";
  service.port = 5000;
  config.services.push_back(service);
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector.Collect(config, out).Ok());

  const std::shared_ptr<const netlink::RecordedDump> kept = dumps->Find(KeptDumps::kOwnNamespace);
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(kept->Records(), 5U);  // not the client end on 40001: no service's port
  EXPECT_EQ(
      Replayed(*kept, {Protocol::kTcp, Family::kIpv4, netlink::StateBit(netlink::kListen), {}}),
      (std::vector<std::string>{"listen:5000", "listen:40500"}));
  EXPECT_EQ(Replayed(*kept, {Protocol::kTcp,
                             Family::kIpv4,
                             netlink::kAllStates & ~netlink::StateBit(netlink::kListen),
                             {5000}}),
            (std::vector<std::string>{"established:5000"}));
  EXPECT_FALSE(kept->Covers({Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {40001}}));
  EXPECT_TRUE(
      Replayed(*kept, {Protocol::kTcp, Family::kIpv6, netlink::StateBit(netlink::kListen), {}})
          .empty());
  EXPECT_EQ(Replayed(*kept, {Protocol::kUdp, Family::kIpv4, netlink::kAllStates, {}}),
            (std::vector<std::string>{"unconn:5353", "established:40004"}));
  EXPECT_TRUE(Replayed(*kept, {Protocol::kUdp, Family::kIpv6, netlink::kAllStates, {}}).empty());

  // A failed read keeps nothing, not even the last scrape's recording.
  KernelScript failing;
  failing.Expect(Protocol::kTcp, Family::kIpv4,
                 [](DatagramBuilder d) { return Datagrams{d.Error(EPERM).Build()}; });
  SocketsCollector next_scrape(ProcFs(kProcFixture), failing.Factory(), nullptr, dumps);
  out.clear();
  EXPECT_FALSE(next_scrape.Collect(config, out).Ok());
  EXPECT_EQ(dumps->Find(KeptDumps::kOwnNamespace), nullptr);
}

/// TCP/IPv4 sockets on port 40600, listened on only over IPv6, plus the IPv4 listener on 5000.
Datagrams Tcp4WithClientOn40600(DatagramBuilder d, bool extra_client) {
  d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
      .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40600))
      .Socket(Socket(AF_INET, netlink::kEstablished, 40600, 5000));
  if (extra_client) {
    d.Socket(Socket(AF_INET, netlink::kEstablished, 40001, 5000));
  }
  return Datagrams{d.Done().Build()};
}

Datagrams Tcp6ListenerOn40600(DatagramBuilder d) {
  return Datagrams{d.Socket(Socket(AF_INET6, netlink::kListen, 40600, 0)).Done().Build()};
}

TEST(SocketsCollectorTest, LateListenerTriggersOneSecondRead) {
  KernelScript kernel;
  // First read: the IPv4 socket on 40600 is counted as a client before the IPv6 dump shows
  // that 40600 is listened on.
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) { return Tcp4WithClientOn40600(d, false); })
      .Expect(Protocol::kTcp, Family::kIpv6, Tcp6ListenerOn40600)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv4)
      .ExpectUnsupported(Protocol::kUdp, Family::kIpv6)
      // Second read, seeded with the listening ports; one more client connected meanwhile.
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) { return Tcp4WithClientOn40600(d, true); })
      .Expect(Protocol::kTcp, Family::kIpv6, Tcp6ListenerOn40600)
      .ExpectEmpty(Protocol::kUdp, Family::kIpv4)
      .ExpectUnsupported(Protocol::kUdp, Family::kIpv6);

  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Opened(), 1);
  EXPECT_EQ(kernel.Served(), 8U);
  EXPECT_EQ(FamilyNames(out), kAllFamilies);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"),
            (Counts{{kTcp4, 1}, {kTcp6, 1}, {kUdp4, 1}, {kUdp6, 0}}));
  // The second read's counts, not the sum of both reads.
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"),
            (Counts{{kTcp4, 4}, {kTcp6, 1}, {kUdp4, 0}, {kUdp6, 0}}));
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                {SocketKey("ipv4", "5000", "tcp", "established"), 1},
                {SocketKey("ipv4", "40600", "tcp", "established"), 1},
                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
                {SocketKey("ipv6", "40600", "tcp", "listen"), 1},
            }));
  // Only the real client: the socket on the listened-on port 40600 is not a client.
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"),
            (Counts{{PeerKey("5000", "tcp", "established"), 1}}));
}

TEST(SocketsCollectorTest, NeverReadsMoreThanTwice) {
  KernelScript kernel;
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{
                    d.Socket(Socket(AF_INET, netlink::kEstablished, 40600, 5000)).Done().Build()};
              })
      .Expect(Protocol::kTcp, Family::kIpv6, Tcp6ListenerOn40600)
      // The second read finds yet another late listener, on 40700: it is not read a third time
      // (a third read would find nothing recorded and fail).
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET, netlink::kEstablished, 40600, 5000))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 40700, 5000))
                                     .Done()
                                     .Build()};
              })
      .Expect(Protocol::kTcp, Family::kIpv6, [](DatagramBuilder d) {
        return Datagrams{d.Socket(Socket(AF_INET6, netlink::kListen, 40600, 0))
                             .Socket(Socket(AF_INET6, netlink::kListen, 40700, 0))
                             .Done()
                             .Build()};
      });
  Config config = HostOnly();
  config.sockets.udp = false;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(config, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Served(), 4U);
  // 40700 was counted as a client before its listener showed up; the label follows the final
  // listening set, the peer count stays (the bounded cost of reading at most twice).
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "40600", "tcp", "established"), 1},
                {SocketKey("ipv4", "40700", "tcp", "established"), 1},
                {SocketKey("ipv6", "40600", "tcp", "listen"), 1},
                {SocketKey("ipv6", "40700", "tcp", "listen"), 1},
            }));
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"),
            (Counts{{PeerKey("5000", "tcp", "established"), 1}}));
}

TEST(SocketsCollectorTest, HonoursProtocolAndFamilyChoices) {
  KernelScript kernel;
  kernel.Expect(Protocol::kUdp, Family::kIpv6, [](DatagramBuilder d) {
    return Datagrams{d.Socket(Socket(AF_INET6, netlink::kEstablished, 6000, 53)).Done().Build()};
  });
  Config config = HostOnly();
  config.sockets.tcp = false;
  config.sockets.ipv4 = false;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(config, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Served(), 1U);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"), (Counts{{kUdp6, 1}}));
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"), (Counts{{kUdp6, 1}}));
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{{SocketKey("ipv6", "6000", "udp", "established"), 1}}));
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"), Counts{});
}

TEST(SocketsCollectorTest, PassesTheCardinalityCapsToTheTable) {
  KernelScript kernel;
  kernel.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
    return Datagrams{d.Socket(Socket(AF_INET, netlink::kEstablished, 6001, 80))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 6002, 80))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 40001, 443))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 40002, 444))
                         .Done()
                         .Build()};
  });
  Config config = HostOnly();
  config.sockets.udp = false;
  config.sockets.ipv6 = false;
  config.sockets.max_port_series = 1;
  config.sockets.max_peer_port_series = 1;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector.Collect(config, out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "6001", "tcp", "established"), 1},
                {SocketKey("ipv4", "other", "tcp", "established"), 1},
                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 2},
            }));
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"), (Counts{
                                                        {PeerKey("443", "tcp", "established"), 1},
                                                        {PeerKey("other", "tcp", "established"), 1},
                                                    }));
  EXPECT_EQ(Samples(out, "portwatch_port_series_folded"),
            (Counts{{R"({metric="portwatch_peer_sockets"})", 1},
                    {R"({metric="portwatch_sockets"})", 1}}));
}

TEST(SocketsCollectorTest, LaterScrapesCountFromZero) {
  // Scrape 1 and the failed scrape 2 use ports and states scrape 3 does not; each scrape's
  // tables reuse the previous one's count arrays.
  KernelScript busy;
  busy.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
    return Datagrams{d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40001))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 40001, 5000))
                         .Socket(Socket(AF_INET, netlink::kTimeWait, 40002, 5000))
                         .Socket(Socket(AF_INET, netlink::kCloseWait, 6000, 7000))
                         .Done()
                         .Build()};
  });
  KernelScript failing;
  failing.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
    return Datagrams{d.Fresh()
                         .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40003))
                         .Socket(Socket(AF_INET, netlink::kSynSent, 40004, 5000))
                         .Build(),
                     d.Fresh().Error(ENOMEM).Build()};
  });
  KernelScript quiet;
  quiet.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
    return Datagrams{d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                         .Socket(Socket(AF_INET, netlink::kEstablished, 40005, 5000))
                         .Done()
                         .Build()};
  });
  std::vector<KernelScript*> scrapes = {&busy, &failing, &quiet};
  size_t scrape = 0;
  SocketsCollector collector(ProcFs(kProcFixture), [&]() { return scrapes[scrape]->Factory()(); });
  Config config = HostOnly();
  config.sockets.udp = false;
  config.sockets.ipv6 = false;
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector.Collect(config, out).Ok());
  scrape = 1;
  out.clear();
  ASSERT_FALSE(collector.Collect(config, out).Ok());
  scrape = 2;
  out.clear();
  ASSERT_TRUE(collector.Collect(config, out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{
                {SocketKey("ipv4", "5000", "tcp", "listen"), 1},
                {SocketKey("ipv4", "ephemeral", "tcp", "established"), 1},
            }));
  EXPECT_EQ(Samples(out, "portwatch_peer_sockets"),
            (Counts{{PeerKey("5000", "tcp", "established"), 1}}));
}

TEST(SocketsCollectorTest, FailedDumpDropsTheSocketCounts) {
  KernelScript kernel;
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) {
                return Datagrams{d.Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                                     .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40001))
                                     .Done()
                                     .Build()};
              })
      .Expect(Protocol::kTcp, Family::kIpv6,
              [](DatagramBuilder d) { return Datagrams{d.Error(EPERM).Build()}; });
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "tcp/ipv6: kernel error: Operation not permitted");
  EXPECT_EQ(kernel.Served(), 2U);  // stops at the failure
  // A partial table would show wrong counts: only the status families remain, and only for
  // the tables that were asked.
  EXPECT_EQ(FamilyNames(out), kStatusFamilies);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"), (Counts{{kTcp4, 1}, {kTcp6, 1}}));
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"), (Counts{{kTcp4, 2}, {kTcp6, 0}}));
}

/// A TCP-only scrape whose first read counts 40600's IPv4 socket as client-side before the IPv6
/// dump shows its listener; `second_read` scripts the second read. Returns the collector's status.
Status CollectTcpWithLateListener(const std::function<void(KernelScript&)>& second_read,
                                  KernelScript& kernel,
                                  std::vector<prometheus::MetricFamily>& out) {
  kernel
      .Expect(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder d) { return Tcp4WithClientOn40600(d, false); })
      .Expect(Protocol::kTcp, Family::kIpv6, Tcp6ListenerOn40600);
  second_read(kernel);
  Config config = HostOnly();
  config.sockets.udp = false;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  return collector.Collect(config, out);
}

TEST(SocketsCollectorTest, FailureInTheSecondReadFailsTheScrape) {
  KernelScript kernel;
  std::vector<prometheus::MetricFamily> out;
  Status status = CollectTcpWithLateListener(
      [](KernelScript& second) {
        second
            .Expect(Protocol::kTcp, Family::kIpv4,
                    [](DatagramBuilder d) { return Tcp4WithClientOn40600(d, false); })
            .Expect(Protocol::kTcp, Family::kIpv6,
                    [](DatagramBuilder d) { return Datagrams{d.Error(ENOMEM).Build()}; });
      },
      kernel, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "tcp/ipv6: kernel error: Cannot allocate memory");
  EXPECT_EQ(kernel.Served(), 4U);
  EXPECT_EQ(FamilyNames(out), kStatusFamilies);
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"), (Counts{{kTcp4, 3}, {kTcp6, 0}}));
}

TEST(SocketsCollectorTest, FailedSecondReadReportsWhatEachTableLastRead) {
  KernelScript kernel;
  std::vector<prometheus::MetricFamily> out;
  // The second read of TCP/IPv4 fails after two sockets: TCP/IPv6 is not read again.
  Status status = CollectTcpWithLateListener(
      [](KernelScript& second) {
        second.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
          return Datagrams{d.Fresh()
                               .Socket(Socket(AF_INET, netlink::kListen, 5000, 0))
                               .Socket(Socket(AF_INET, netlink::kEstablished, 5000, 40600))
                               .Build(),
                           d.Fresh().Error(ENOMEM).Build()};
        });
      },
      kernel, out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "tcp/ipv4: kernel error: Cannot allocate memory");
  EXPECT_EQ(kernel.Served(), 3U);
  EXPECT_EQ(FamilyNames(out), kStatusFamilies);
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"), (Counts{{kTcp4, 1}, {kTcp6, 1}}));
  // TCP/IPv4: the two sockets of the failed second read; TCP/IPv6: its first read's one.
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"), (Counts{{kTcp4, 2}, {kTcp6, 1}}));
}

TEST(SocketsCollectorTest, InterruptedDumpFailsTheScrape) {
  KernelScript kernel;
  kernel.ExpectEmpty(Protocol::kTcp, Family::kIpv4)
      .ExpectEmpty(Protocol::kTcp, Family::kIpv6)
      .Expect(Protocol::kUdp, Family::kIpv4, [](DatagramBuilder d) {
        return Datagrams{d.Socket(Socket(AF_INET, netlink::kClose, 5353, 0))
                             .Done(0, NLM_F_MULTI | NLM_F_DUMP_INTR)
                             .Build()};
      });
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(),
            "udp/ipv4: dump interrupted (NLM_F_DUMP_INTR): the socket table changed");
  EXPECT_EQ(kernel.Served(), 3U);
  EXPECT_EQ(FamilyNames(out), kStatusFamilies);
  // The table never asked about is left out rather than reported unavailable.
  EXPECT_EQ(Samples(out, "portwatch_sock_diag_table_available"),
            (Counts{{kTcp4, 1}, {kTcp6, 1}, {kUdp4, 1}}));
  EXPECT_EQ(Samples(out, "portwatch_scrape_sockets_read"),
            (Counts{{kTcp4, 0}, {kTcp6, 0}, {kUdp4, 1}}));
}

TEST(SocketsCollectorTest, MissingPortRangeFailsBeforeOpeningNetlink) {
  KernelScript kernel;
  SocketsCollector collector(ProcFs(std::string(PORTWATCH_FIXTURES) + "/procfs"), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "cannot read net.ipv4.ip_local_port_range");
  EXPECT_EQ(kernel.Opened(), 0);
  EXPECT_TRUE(out.empty());
}

TEST(SocketsCollectorTest, TransportThatCannotOpenFailsTheScrape) {
  SocketsCollector collector(ProcFs(kProcFixture),
                             []() -> Result<std::unique_ptr<netlink::Transport>> {
                               return Failure{"netlink sock_diag socket: Permission denied"};
                             });
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), "netlink sock_diag socket: Permission denied");
  EXPECT_TRUE(out.empty());
}

TEST(SocketsCollectorTest, BrokenRecordingFailsTheScrape) {
  const std::string path = std::string(PORTWATCH_FIXTURES) + "/proc/net/netstat";
  SocketsCollector collector(
      ProcFs(kProcFixture), [path]() -> Result<std::unique_ptr<netlink::Transport>> {
        auto replay = netlink::ReplayTransport::Load(path);
        if (!replay) {
          return Failure{replay.Error()};
        }
        return std::unique_ptr<netlink::Transport>(std::move(replay).Value());
      });
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(HostOnly(), out);
  EXPECT_FALSE(status.Ok());
  EXPECT_EQ(status.Error(), path + ": not a portwatch netlink recording");
  EXPECT_TRUE(out.empty());
}

TEST(SocketsCollectorTest, BoundInactiveSocketsOnlyWhenConfigured) {
  KernelScript kernel;
  kernel.Expect(
      Protocol::kTcp, Family::kIpv4,
      [](DatagramBuilder d) {
        return Datagrams{d.Socket(Socket(AF_INET, netlink::kClose, 6001, 0)).Done().Build()};
      },
      netlink::kAllStates | netlink::kBoundInactiveStates);
  Config config = HostOnly();
  config.sockets.udp = false;
  config.sockets.ipv6 = false;
  config.sockets.bound_inactive = true;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  Status status = collector.Collect(config, out);
  EXPECT_TRUE(status.Ok()) << status.Error();
  EXPECT_EQ(kernel.Served(), 1U);
  EXPECT_EQ(Samples(out, "portwatch_sockets"),
            (Counts{{SocketKey("ipv4", "6001", "tcp", "unconn"), 1}}));
}

TEST(SocketsCollectorTest, CountsDestinationsOfClientSockets) {
  KernelScript kernel;
  kernel.Expect(Protocol::kTcp, Family::kIpv4, [](DatagramBuilder d) {
    DiagSocket first = Socket(AF_INET, netlink::kEstablished, 40001, 443);
    first.remote_address = "10.0.0.1";
    DiagSocket second = Socket(AF_INET, netlink::kTimeWait, 40002, 443);
    second.remote_address = "10.0.0.1";
    return Datagrams{d.Socket(first).Socket(second).Done().Build()};
  });
  Config config = HostOnly();
  config.sockets.udp = false;
  config.sockets.ipv6 = false;
  config.sockets.top_destinations = 1;
  SocketsCollector collector(ProcFs(kProcFixture), kernel.Factory());
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector.Collect(config, out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_ephemeral_destination_sockets"),
            (Counts{{R"({peer_address="10.0.0.1",peer_port="443",protocol="tcp"})", 2}}));
}

}  // namespace
}  // namespace portwatch
