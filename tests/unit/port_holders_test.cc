#include "collectors/port_holders/port_holders.h"

#include <sys/socket.h>

#include <cerrno>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/netlink_builder.h"

namespace portwatch {
namespace {

using netlink::Exchange;
using netlink::Family;
using netlink::Protocol;
using unit::DatagramBuilder;
using unit::DiagSocket;

constexpr uint32_t kPortId = 31;
constexpr const char* kProcFixture = PORTWATCH_FIXTURES "/proc";  // 1001: nginx

DiagSocket Socket(uint8_t family, uint8_t state, uint16_t port, uint32_t inode) {
  DiagSocket socket;
  socket.family = family;
  socket.state = state;
  socket.local_port = port;
  socket.local_address = family == AF_INET ? "0.0.0.0" : "::";
  socket.remote_address = socket.local_address;
  socket.inode = inode;
  return socket;
}

/// The kernel's side of a port query: one exchange per table, in the order FindPortHolders()
/// asks, each request carrying `ports` as its kernel-side filter (ReplayTransport fails any
/// request that differs, an unfiltered one included).
class Kernel {
 public:
  explicit Kernel(std::vector<uint16_t> ports, uint32_t states = netlink::kAllStates)
      : ports_(std::move(ports)), states_(states) {}

  Kernel& Answer(Protocol protocol, Family family,
                 const std::function<std::vector<std::byte>(DatagramBuilder)>& answer) {
    const uint32_t sequence = 700 + static_cast<uint32_t>(exchanges_.size());
    exchanges_.push_back(unit::MakeExchange(unit::Request(protocol, family, states_, ports_),
                                            sequence, kPortId,
                                            {answer(DatagramBuilder(sequence, kPortId))}));
    return *this;
  }
  Kernel& Empty(Protocol protocol, Family family) {
    return Answer(protocol, family,
                  [](DatagramBuilder datagram) { return datagram.Done().Build(); });
  }

  netlink::ReplayTransport Transport() const { return netlink::ReplayTransport(exchanges_); }

 private:
  std::vector<uint16_t> ports_;
  uint32_t states_;
  std::vector<Exchange> exchanges_;
};

TEST(PortHoldersTest, DumpsEachTableFilteredToThePortAndNamesTheProcesses) {
  Kernel kernel({8080});
  kernel
      .Answer(Protocol::kTcp, Family::kIpv4,
              [](DatagramBuilder datagram) {
                return datagram.Socket(Socket(AF_INET, netlink::kListen, 8080, 1001))
                    .Socket(Socket(AF_INET, netlink::kTimeWait, 8080, 0))
                    .Done()
                    .Build();
              })
      .Answer(
          Protocol::kTcp, Family::kIpv6,
          [](DatagramBuilder datagram) {
            return datagram.Socket(Socket(AF_INET6, netlink::kListen, 8080, 1002)).Done().Build();
          })
      .Empty(Protocol::kUdp, Family::kIpv4)
      .Answer(Protocol::kUdp, Family::kIpv6, [](DatagramBuilder datagram) {
        return datagram.Socket(Socket(AF_INET6, netlink::kClose, 8080, 5555)).Done().Build();
      });
  netlink::ReplayTransport transport = kernel.Transport();
  PortQuery query;
  query.ports = {8080};
  const PortHolders holders =
      FindPortHolders(transport, query, ProcOwnerResolver(ProcFs(kProcFixture)));
  EXPECT_EQ(transport.RequestsServed(), 4U);
  EXPECT_TRUE(holders.unread.empty()) << holders.UnreadText();
  EXPECT_EQ(holders.UnreadText(), "");
  ASSERT_EQ(holders.sockets.size(), 4U);
  EXPECT_EQ(holders.sockets[0].protocol, Protocol::kTcp);
  EXPECT_EQ(holders.sockets[3].protocol, Protocol::kUdp);
  EXPECT_EQ(holders.sockets[3].record.inode, 5555U);

  // nginx (pid 4194401) holds 1001 and 1002: named once. 5555 is nobody's the fixture shows.
  ASSERT_EQ(holders.ProcessesOf(holders.sockets[0]).size(), 1U);
  EXPECT_EQ(holders.ProcessesOf(holders.sockets[0]).front().command, "nginx");
  EXPECT_TRUE(holders.ProcessesOf(holders.sockets[1]).empty());  // TIME_WAIT: no fd
  ASSERT_EQ(holders.Processes().size(), 1U);
  EXPECT_EQ(holders.Processes().front().pid, 4194401);
  EXPECT_TRUE(holders.HasInvisibleHolders());
  EXPECT_EQ(holders.CountByState(),
            (std::map<std::string, uint64_t>{{"listen", 2}, {"time_wait", 1}, {"unconn", 1}}));
}

TEST(PortHoldersTest, AsksOnlyTheTablesAndStatesOfTheQuery) {
  const uint32_t listening = netlink::StateBit(netlink::kListen);
  Kernel kernel({9000, 9001}, listening);
  kernel.Empty(Protocol::kTcp, Family::kIpv6);
  netlink::ReplayTransport transport = kernel.Transport();
  PortQuery query;
  query.ports = {9000, 9001};
  query.protocols = {Protocol::kTcp};
  query.families = {Family::kIpv6};
  query.states = listening;
  int resolved = 0;
  const PortHolders holders =
      FindPortHolders(transport, query, [&resolved](const std::unordered_set<uint32_t>&) {
        resolved++;
        return SocketOwners{};
      });
  EXPECT_EQ(transport.RequestsServed(), 1U);
  EXPECT_TRUE(holders.unread.empty()) << holders.UnreadText();
  EXPECT_TRUE(holders.sockets.empty());
  EXPECT_EQ(resolved, 0);  // no socket with an fd: /proc is not read
}

TEST(PortHoldersTest, NoPortAsksNothing) {
  netlink::ReplayTransport transport({});
  const PortHolders holders = FindPortHolders(transport, PortQuery{}, nullptr);
  EXPECT_TRUE(holders.sockets.empty());
  EXPECT_TRUE(holders.unread.empty());
}

TEST(PortHoldersTest, InjectedResolverGetsTheInodesWithAnFd) {
  Kernel kernel({53});
  kernel
      .Answer(Protocol::kUdp, Family::kIpv4,
              [](DatagramBuilder datagram) {
                return datagram.Socket(Socket(AF_INET, netlink::kClose, 53, 1004))
                    .Socket(Socket(AF_INET, netlink::kClose, 53, 0))
                    .Done()
                    .Build();
              })
      .Answer(Protocol::kUdp, Family::kIpv6, [](DatagramBuilder datagram) {
        return datagram.Socket(Socket(AF_INET6, netlink::kClose, 53, 1005)).Done().Build();
      });
  netlink::ReplayTransport transport = kernel.Transport();
  PortQuery query;
  query.ports = {53};
  query.protocols = {Protocol::kUdp};
  std::unordered_set<uint32_t> asked;
  const PortHolders holders =
      FindPortHolders(transport, query, [&asked](const std::unordered_set<uint32_t>& inodes) {
        asked = inodes;
        SocketOwners owners;
        ProcessInfo dnsmasq;
        dnsmasq.pid = 9;
        dnsmasq.command = "dnsmasq";
        owners.by_inode[1004] = {dnsmasq};
        owners.by_inode[1005] = {dnsmasq};
        return owners;
      });
  EXPECT_EQ(asked, (std::unordered_set<uint32_t>{1004, 1005}));
  ASSERT_EQ(holders.Processes().size(), 1U);
  EXPECT_EQ(holders.Processes().front().command, "dnsmasq");
  EXPECT_FALSE(holders.HasInvisibleHolders());
}

TEST(PortHoldersTest, SaysWhichTablesCouldNotBeReadAndWhy) {
  Kernel kernel({8080});
  kernel
      .Answer(
          Protocol::kTcp, Family::kIpv4,
          [](DatagramBuilder datagram) {
            return datagram.Socket(Socket(AF_INET, netlink::kListen, 8080, 0)).Error(EPERM).Build();
          })
      .Empty(Protocol::kTcp, Family::kIpv6)
      .Answer(Protocol::kUdp, Family::kIpv4,
              [](DatagramBuilder datagram) { return datagram.Error(ENOENT).Build(); })
      .Empty(Protocol::kUdp, Family::kIpv6);
  netlink::ReplayTransport transport = kernel.Transport();
  PortQuery query;
  query.ports = {8080};
  const PortHolders holders = FindPortHolders(transport, query, nullptr);
  ASSERT_EQ(holders.unread.size(), 2U);
  EXPECT_EQ(holders.unread[0].outcome, netlink::DumpOutcome::kFailed);
  EXPECT_EQ(holders.unread[1].outcome, netlink::DumpOutcome::kUnsupported);
  EXPECT_EQ(holders.UnreadText(),
            "tcp/ipv4 (kernel error: Operation not permitted), udp/ipv4 (No such file or "
            "directory)");
  // What the failed table gave before failing is kept.
  EXPECT_EQ(holders.sockets.size(), 1U);
}

TEST(PortHoldersTest, ATransportThatFailsLeavesEveryTableUnread) {
  netlink::ReplayTransport transport({});  // every send: No data available
  PortQuery query;
  query.ports = {8080};
  const PortHolders holders = FindPortHolders(transport, query, nullptr);
  EXPECT_EQ(holders.unread.size(), 4U);
  EXPECT_EQ(holders.unread[3].protocol, Protocol::kUdp);
  EXPECT_EQ(holders.unread[3].family, Family::kIpv6);
  EXPECT_EQ(holders.unread[3].error, "netlink send: No data available");
}

}  // namespace
}  // namespace portwatch
