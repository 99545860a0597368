#include "collectors/netlink/recorded_dump.h"

#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/netns/kept_dumps.h"

namespace portwatch {
namespace {

using netlink::DumpRequest;
using netlink::Family;
using netlink::kAllStates;
using netlink::kBoundInactiveStates;
using netlink::Protocol;
using netlink::RecordedDump;
using netlink::SocketRecord;
using netlink::StateBit;

SocketRecord Socket(uint8_t state, uint16_t local_port, uint32_t inode) {
  SocketRecord record;
  record.family = 2;
  record.state = state;
  record.local_port = local_port;
  record.inode = inode;
  return record;
}

std::shared_ptr<const RecordedDump::PortSet> Ports(std::initializer_list<uint16_t> ports) {
  auto set = std::make_shared<RecordedDump::PortSet>();
  for (uint16_t port : ports) {
    set->set(port);
  }
  return set;
}

std::vector<uint32_t> Replayed(const RecordedDump& dump, const DumpRequest& request) {
  std::vector<uint32_t> inodes;
  const uint64_t count = dump.Replay(
      request, [&inodes](const SocketRecord& record) { inodes.push_back(record.inode); });
  EXPECT_EQ(count, inodes.size());
  return inodes;
}

/// A namespace's full TCP and UDP dumps: listeners on 22 and 8080, connections on 8080 (a
/// service port) and on 443 (not one), UDP on 53 and an ephemeral port.
RecordedDump FullDump(size_t max_records = 100) {
  RecordedDump dump(Ports({8080}), max_records);
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kListen, 22, 1));
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kListen, 8080, 2));
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kEstablished, 8080, 3));
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kTimeWait, 8080, 0));
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kEstablished, 443, 4));
  dump.Complete(Protocol::kTcp, Family::kIpv4, kAllStates);
  dump.Add(Protocol::kTcp, Family::kIpv6, Socket(netlink::kListen, 8080, 5));
  dump.Complete(Protocol::kTcp, Family::kIpv6, kAllStates);
  dump.Add(Protocol::kUdp, Family::kIpv4, Socket(netlink::kClose, 53, 6));
  dump.Add(Protocol::kUdp, Family::kIpv4, Socket(netlink::kEstablished, 40000, 7));
  dump.Complete(Protocol::kUdp, Family::kIpv4, kAllStates);
  dump.Complete(Protocol::kUdp, Family::kIpv6, kAllStates);
  return dump;
}

TEST(RecordedDumpTest, KeepsListenersUdpAndTheChosenPortsOnly) {
  const RecordedDump dump = FullDump();
  EXPECT_EQ(dump.Records(), 7U);  // not the connection on 443
  EXPECT_FALSE(dump.GaveUp());
}

TEST(RecordedDumpTest, AnswersWhatTheServicesCollectorAsksExactly) {
  const RecordedDump dump = FullDump();
  const DumpRequest listeners{Protocol::kTcp, Family::kIpv4, StateBit(netlink::kListen), {}};
  ASSERT_TRUE(dump.Covers(listeners));
  EXPECT_EQ(Replayed(dump, listeners), (std::vector<uint32_t>{1, 2}));

  const DumpRequest service_port{
      Protocol::kTcp, Family::kIpv4, kAllStates & ~StateBit(netlink::kListen), {8080}};
  ASSERT_TRUE(dump.Covers(service_port));
  EXPECT_EQ(Replayed(dump, service_port), (std::vector<uint32_t>{3, 0}));

  const DumpRequest time_wait_only{
      Protocol::kTcp, Family::kIpv4, StateBit(netlink::kTimeWait), {8080}};
  ASSERT_TRUE(dump.Covers(time_wait_only));
  EXPECT_EQ(Replayed(dump, time_wait_only), (std::vector<uint32_t>{0}));

  const DumpRequest ipv6_listeners{Protocol::kTcp, Family::kIpv6, StateBit(netlink::kListen), {}};
  ASSERT_TRUE(dump.Covers(ipv6_listeners));
  EXPECT_EQ(Replayed(dump, ipv6_listeners), (std::vector<uint32_t>{5}));

  const DumpRequest udp{Protocol::kUdp, Family::kIpv4, kAllStates, {}};
  ASSERT_TRUE(dump.Covers(udp));
  EXPECT_EQ(Replayed(dump, udp), (std::vector<uint32_t>{6, 7}));
  const DumpRequest udp_port{Protocol::kUdp, Family::kIpv4, kAllStates, {53}};
  ASSERT_TRUE(dump.Covers(udp_port));
  EXPECT_EQ(Replayed(dump, udp_port), (std::vector<uint32_t>{6}));
  EXPECT_TRUE(dump.Covers({Protocol::kUdp, Family::kIpv6, kAllStates, {}}));
}

TEST(RecordedDumpTest, DoesNotAnswerWhatItMayNotHaveKept) {
  const RecordedDump dump = FullDump();
  // Connections on a port that was not kept, or on every port.
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, kAllStates, {443}}));
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, kAllStates, {8080, 443}}));
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, kAllStates, {}}));
  // Bound-inactive sockets were not asked for.
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, kBoundInactiveStates, {8080}}));
}

TEST(RecordedDumpTest, ATableNotReadInFullAnswersNothing) {
  RecordedDump dump(Ports({8080}), 100);
  dump.Add(Protocol::kTcp, Family::kIpv4, Socket(netlink::kListen, 22, 1));
  // The dump failed before Complete(): the listeners seen so far may not be all.
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, StateBit(netlink::kListen), {}}));
  // A dump of fewer states than asked.
  dump.Complete(Protocol::kTcp, Family::kIpv4, StateBit(netlink::kListen));
  EXPECT_TRUE(dump.Covers({Protocol::kTcp, Family::kIpv4, StateBit(netlink::kListen), {}}));
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, kAllStates, {8080}}));
  // A dump that asked for bound-inactive sockets holds CLOSE records it cannot tell apart.
  dump.Complete(Protocol::kTcp, Family::kIpv6, kAllStates | kBoundInactiveStates);
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv6, StateBit(netlink::kListen), {}}));
}

TEST(RecordedDumpTest, GivesUpPastItsRecordLimitAndFreesWhatItKept) {
  const RecordedDump dump = FullDump(/*max_records=*/6);
  EXPECT_TRUE(dump.GaveUp());
  EXPECT_EQ(dump.Records(), 0U);
  EXPECT_FALSE(dump.Covers({Protocol::kTcp, Family::kIpv4, StateBit(netlink::kListen), {}}));
  EXPECT_FALSE(dump.Covers({Protocol::kUdp, Family::kIpv6, kAllStates, {}}));
  EXPECT_TRUE(Replayed(dump, {Protocol::kUdp, Family::kIpv4, kAllStates, {}}).empty());
}

std::chrono::steady_clock::time_point fake_now{};
std::chrono::steady_clock::time_point FakeNow() { return fake_now; }

std::shared_ptr<RecordedDump> Recording(size_t listeners) {
  auto dump = std::make_shared<RecordedDump>(nullptr, 1000);
  for (size_t i = 0; i < listeners; ++i) {
    dump->Add(Protocol::kTcp, Family::kIpv4,
              Socket(netlink::kListen, static_cast<uint16_t>(1000 + i), 1));
  }
  dump->Complete(Protocol::kTcp, Family::kIpv4, kAllStates);
  return dump;
}

TEST(KeptDumpsTest, ServesARecordingWhileFreshOnly) {
  KeptDumps kept(100);
  kept.SetClockForTesting(&FakeNow);
  fake_now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  const auto pod = Recording(2);
  kept.Keep(7, pod);
  EXPECT_EQ(kept.Find(7), pod);
  EXPECT_EQ(kept.Find(KeptDumps::kOwnNamespace), nullptr);
  fake_now += KeptDumps::kFreshFor - std::chrono::milliseconds(1);
  EXPECT_EQ(kept.Find(7), pod);
  // A pod the sockets collector skipped this scrape: last scrape's recording is not served.
  fake_now += std::chrono::milliseconds(1);
  EXPECT_EQ(kept.Find(7), nullptr);
}

TEST(KeptDumpsTest, SharesOneRecordBudgetAndDropsStaleRecordings) {
  KeptDumps kept(10);
  kept.SetClockForTesting(&FakeNow);
  fake_now = std::chrono::steady_clock::time_point(std::chrono::hours(1));
  EXPECT_EQ(kept.Room(1), 10U);
  kept.Keep(1, Recording(6));
  EXPECT_EQ(kept.Room(2), 4U);
  kept.Keep(2, Recording(4));
  EXPECT_EQ(kept.Room(3), 0U);
  // The namespace's own previous recording does not count against its next one.
  EXPECT_EQ(kept.Room(2), 4U);
  EXPECT_EQ(kept.Find(2), nullptr);
  // A recording that gave up is not kept.
  auto overflowing = std::make_shared<RecordedDump>(nullptr, 0);
  overflowing->Add(Protocol::kUdp, Family::kIpv4, Socket(netlink::kClose, 53, 1));
  kept.Keep(2, overflowing);
  EXPECT_EQ(kept.Find(2), nullptr);
  // The next scrape: last scrape's recordings leave room.
  fake_now += KeptDumps::kFreshFor;
  EXPECT_EQ(kept.Room(3), 10U);
  EXPECT_EQ(kept.Find(1), nullptr);
  kept.Keep(3, Recording(1));
  kept.Clear();
  EXPECT_EQ(kept.Find(3), nullptr);
  EXPECT_EQ(kept.Room(4), 10U);
}

}  // namespace
}  // namespace portwatch
