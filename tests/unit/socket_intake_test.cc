// Taking sockets in: sock_diag records, built by hand, to per-service observations and the
// listener list.
#include "collectors/services/socket_intake.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

using netlink::Protocol;

netlink::SocketRecord Socket(uint8_t state, const std::string& address, uint16_t port,
                             uint32_t inode = 0) {
  netlink::SocketRecord record;
  record.family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  EXPECT_EQ(::inet_pton(record.family, address.c_str(), record.local_address.data()), 1);
  record.state = state;
  record.local_port = port;
  record.inode = inode;
  return record;
}

ServiceConfig Service(const std::string& address, uint16_t port,
                      ServiceProtocol protocol = ServiceProtocol::kTcp) {
  ServiceConfig service;
  service.name = "web";
  service.port = port;
  service.protocol = protocol;
  EXPECT_TRUE(SetServiceAddress(address, service));
  return service;
}

TEST(ObserveSocketTest, IgnoresOtherPortsAndProtocols) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  ObserveSocket(service, Protocol::kTcp, Socket(netlink::kListen, "0.0.0.0", 8081, 1), observed);
  ObserveSocket(service, Protocol::kUdp, Socket(netlink::kClose, "0.0.0.0", 8080, 2), observed);
  EXPECT_EQ(observed.sockets_by_state, StateCounts{});
  EXPECT_FALSE(observed.AnythingOverlaps());
  EXPECT_TRUE(observed.listener_inodes.empty());
  EXPECT_TRUE(observed.other_inodes.empty());
}

TEST(ObserveSocketTest, CountsEverySocketOnThePortButOnlyOverlappingOnesCompete) {
  const ServiceConfig service = Service("127.0.0.1", 8080);
  PortObservation observed;
  for (const netlink::SocketRecord& record : {Socket(netlink::kListen, "127.0.0.1", 8080, 1),
                                              Socket(netlink::kListen, "10.0.0.1", 8080, 2),
                                              Socket(netlink::kEstablished, "127.0.0.1", 8080, 3),
                                              Socket(netlink::kEstablished, "10.0.0.1", 8080, 4),
                                              Socket(netlink::kSynRecv, "127.0.0.1", 8080)}) {
    ObserveSocket(service, Protocol::kTcp, record, observed);
  }
  StateCounts all{};
  all[netlink::kListen] = 2;
  all[netlink::kEstablished] = 2;
  all[netlink::kSynRecv] = 1;
  StateCounts overlapping{};
  overlapping[netlink::kListen] = 1;
  overlapping[netlink::kEstablished] = 1;
  overlapping[netlink::kSynRecv] = 1;
  EXPECT_EQ(observed.sockets_by_state, all);
  EXPECT_EQ(observed.overlapping_by_state, overlapping);
  EXPECT_EQ(observed.listener_inodes, std::vector<uint32_t>{1});
  EXPECT_EQ(observed.other_inodes, std::vector<uint32_t>{3});  // request sockets hold no fd
  EXPECT_EQ(observed.others_without_inode, 0U);
}

TEST(ObserveSocketTest, KeepsTheLongestTimeWaitAndCountsSocketsWithoutAnFd) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  netlink::SocketRecord time_wait = Socket(netlink::kTimeWait, "10.0.0.1", 8080);
  for (uint32_t expires_ms : {12'000U, 43'000U, 5'000U}) {
    time_wait.timer_expires_ms = expires_ms;
    ObserveSocket(service, Protocol::kTcp, time_wait, observed);
  }
  ObserveSocket(service, Protocol::kTcp, Socket(netlink::kFinWait2, "10.0.0.1", 8080), observed);
  EXPECT_EQ(observed.longest_time_wait_ms, 43'000U);
  EXPECT_EQ(observed.overlapping_by_state[netlink::kTimeWait], 3U);
  EXPECT_EQ(observed.others_without_inode, 1U);  // the orphaned FIN_WAIT2; TIME_WAIT not counted
  EXPECT_TRUE(observed.other_inodes.empty());
}

TEST(ObserveSocketTest, UdpUnconnectedSocketsAreTheListeners) {
  const ServiceConfig service = Service("0.0.0.0", 53, ServiceProtocol::kUdp);
  PortObservation observed;
  ObserveSocket(service, Protocol::kUdp, Socket(netlink::kClose, "0.0.0.0", 53, 1), observed);
  ObserveSocket(service, Protocol::kUdp, Socket(netlink::kEstablished, "10.0.0.1", 53, 2),
                observed);
  EXPECT_EQ(observed.listener_inodes, std::vector<uint32_t>{1});
  EXPECT_EQ(observed.other_inodes, std::vector<uint32_t>{2});
}

TEST(ObserveSocketTest, KeepsEachInodeOnceAndAtMostKMaxInodesPerService) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  for (uint32_t inode = 1; inode <= 300; ++inode) {
    ObserveSocket(service, Protocol::kTcp, Socket(netlink::kEstablished, "10.0.0.1", 8080, inode),
                  observed);
    ObserveSocket(service, Protocol::kTcp, Socket(netlink::kEstablished, "10.0.0.1", 8080, inode),
                  observed);  // the same socket again, as a retried dump may show it
  }
  EXPECT_EQ(observed.other_inodes.size(), kMaxInodesPerService);
  EXPECT_EQ(observed.other_inodes.front(), 1U);
  EXPECT_EQ(observed.other_inodes.back(), kMaxInodesPerService);
  EXPECT_EQ(observed.overlapping_by_state[netlink::kEstablished], 600U);  // counts stay exact
}

TEST(ObserveSocketTest, KeepsTheFlagsTheRecordsCarried) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  auto observe = [&](uint8_t state, uint32_t inode, int8_t reuse) {
    netlink::SocketRecord record = Socket(state, "10.0.0.1", 8080, inode);
    record.reuse = reuse;
    ObserveSocket(service, Protocol::kTcp, record, observed);
  };
  observe(netlink::kListen, 1, 1);
  observe(netlink::kEstablished, 2, 0);
  observe(netlink::kEstablished, 3, -1);  // the source did not say
  observe(netlink::kTimeWait, 0, 0);
  observe(netlink::kTimeWait, 0, 1);
  observe(netlink::kTimeWait, 0, 1);
  observe(netlink::kTimeWait, 0, -1);
  observe(netlink::kFinWait2, 0, 0);  // orphans: no inode
  observe(netlink::kLastAck, 0, 1);
  observe(netlink::kLastAck, 0, -1);
  observe(netlink::kNewSynRecv, 0, 0);  // a request socket, as a socket iterator shows it
  EXPECT_EQ(observed.reuse_by_inode, (ReuseFlags{{1, true}, {2, false}}));
  StateCounts set{};
  set[netlink::kTimeWait] = 2;
  set[netlink::kLastAck] = 1;
  StateCounts unset{};
  unset[netlink::kTimeWait] = 1;
  unset[netlink::kFinWait2] = 1;
  EXPECT_EQ(observed.reuse_without_inode.set, set);
  EXPECT_EQ(observed.reuse_without_inode.unset, unset);
  EXPECT_EQ(observed.overlapping_by_state[netlink::kTimeWait], 4U);
  EXPECT_EQ(observed.others_without_inode, 3U);  // the request socket holds no port
  EXPECT_EQ(observed.overlapping_by_state[netlink::kNewSynRecv], 1U);
}

TEST(ObserveSocketTest, RecordsWithoutFlagsLeaveNoFlag) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  for (const netlink::SocketRecord& record : {Socket(netlink::kListen, "0.0.0.0", 8080, 1),
                                              Socket(netlink::kEstablished, "10.0.0.1", 8080, 2),
                                              Socket(netlink::kTimeWait, "10.0.0.1", 8080),
                                              Socket(netlink::kFinWait2, "10.0.0.1", 8080)}) {
    ObserveSocket(service, Protocol::kTcp, record, observed);
  }
  EXPECT_TRUE(observed.reuse_by_inode.empty());
  EXPECT_EQ(observed.reuse_without_inode.set, StateCounts{});
  EXPECT_EQ(observed.reuse_without_inode.unset, StateCounts{});
}

TEST(ObserveSocketTest, KeepsFlagsOnlyForTheInodesItKeeps) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  for (uint32_t inode = 1; inode <= 300; ++inode) {
    netlink::SocketRecord record = Socket(netlink::kEstablished, "10.0.0.1", 8080, inode);
    record.reuse = 1;
    ObserveSocket(service, Protocol::kTcp, record, observed);
  }
  EXPECT_EQ(observed.reuse_by_inode.size(), kMaxInodesPerService);
  EXPECT_TRUE(observed.reuse_by_inode.contains(kMaxInodesPerService));
  EXPECT_FALSE(observed.reuse_by_inode.contains(kMaxInodesPerService + 1));
  // Inode 0 keys no flag: sockets without an fd would share it.
  netlink::SocketRecord unnamed = Socket(netlink::kListen, "0.0.0.0", 8080, 0);
  unnamed.reuse = 0;
  PortObservation listener;
  ObserveSocket(service, Protocol::kTcp, unnamed, listener);
  EXPECT_EQ(listener.listener_inodes, std::vector<uint32_t>{0});
  EXPECT_TRUE(listener.reuse_by_inode.empty());
}

TEST(ObserveSocketTest, AStateOutOfRangeCountsInSlotZero) {
  const ServiceConfig service = Service("0.0.0.0", 8080);
  PortObservation observed;
  ObserveSocket(service, Protocol::kTcp, Socket(200, "0.0.0.0", 8080, 5), observed);
  EXPECT_EQ(observed.sockets_by_state[0], 1U);
}

TEST(ListenerIntakeTest, KeepsListenersOnly) {
  ListenerIntake intake;
  intake.Add(Protocol::kTcp, Socket(netlink::kListen, "0.0.0.0", 22, 1));
  intake.Add(Protocol::kTcp, Socket(netlink::kEstablished, "10.0.0.1", 22, 2));
  intake.Add(Protocol::kTcp, Socket(netlink::kClose, "0.0.0.0", 23, 3));  // bound, not listening
  intake.Add(Protocol::kUdp, Socket(netlink::kClose, "::", 53, 4));
  intake.Add(Protocol::kUdp, Socket(netlink::kEstablished, "::1", 53, 5));
  ASSERT_EQ(intake.Listeners().size(), 2U);
  EXPECT_EQ(intake.Listeners()[0].protocol, Protocol::kTcp);
  EXPECT_EQ(intake.Listeners()[0].port, 22);
  EXPECT_EQ(intake.Listeners()[0].inode, 1U);
  EXPECT_EQ(AddressText(intake.Listeners()[0].endpoint), "0.0.0.0");
  EXPECT_EQ(intake.Listeners()[1].protocol, Protocol::kUdp);
  EXPECT_EQ(AddressText(intake.Listeners()[1].endpoint), "::");
  EXPECT_EQ(intake.Dropped(), 0U);
}

TEST(ListenerIntakeTest, CountsWhatTheCapLeavesOut) {
  ListenerIntake intake;
  netlink::SocketRecord listener = Socket(netlink::kListen, "0.0.0.0", 1);
  for (size_t i = 0; i < ListenerIntake::kMaxListeners + 3; ++i) {
    listener.inode = static_cast<uint32_t>(i + 1);
    intake.Add(Protocol::kTcp, listener);
  }
  EXPECT_EQ(intake.Listeners().size(), ListenerIntake::kMaxListeners);
  EXPECT_EQ(intake.Dropped(), 3U);
}

}  // namespace
}  // namespace portwatch
