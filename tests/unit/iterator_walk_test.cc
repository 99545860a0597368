#include "collectors/socket_source/iterator_walk.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/bpf/socket_iter_abi.h"
#include "collectors/socket_source/socket_iterators.h"

namespace portwatch {
namespace {

using netlink::DumpOutcome;
using netlink::DumpRequest;
using netlink::Family;
using netlink::Protocol;
using netlink::SocketRecord;

portwatch_socket_record Raw(uint8_t family, uint8_t state, uint16_t local_port, int8_t reuse) {
  portwatch_socket_record raw{};
  raw.kind = PORTWATCH_SOCKET_ITER_RECORD;
  raw.family = family;
  raw.state = state;
  raw.v6only = -1;
  raw.reuse = reuse;
  raw.reuseport = 0;
  raw.local_port = local_port;
  return raw;
}

portwatch_socket_trailer Trailer(uint64_t objects) {
  portwatch_socket_trailer trailer{};
  trailer.kind = PORTWATCH_SOCKET_ITER_TRAILER;
  trailer.objects = objects;
  return trailer;
}

template <typename T>
void Append(std::vector<std::byte>& bytes, const T& value) {
  const auto* begin = reinterpret_cast<const std::byte*>(&value);
  bytes.insert(bytes.end(), begin, begin + sizeof(value));
}

/// Serves `chunks` in order, one per read (an errno as a negative single-element chunk's
/// `error`), then 0.
struct Chunk {
  std::vector<std::byte> bytes;
  int error = 0;
};
class FakeWalk {
 public:
  explicit FakeWalk(std::deque<Chunk> chunks) : chunks_(std::move(chunks)) {}
  ReadWalkBytes Reader() {
    return [this](std::span<std::byte> buffer) -> ssize_t {
      ++reads_;
      if (chunks_.empty()) {
        return 0;
      }
      Chunk chunk = std::move(chunks_.front());
      chunks_.pop_front();
      if (chunk.error != 0) {
        return -chunk.error;
      }
      EXPECT_LE(chunk.bytes.size(), buffer.size());
      std::memcpy(buffer.data(), chunk.bytes.data(), chunk.bytes.size());
      return static_cast<ssize_t>(chunk.bytes.size());
    };
  }
  int Reads() const { return reads_; }

 private:
  std::deque<Chunk> chunks_;
  int reads_ = 0;
};

DumpRequest Everything(Protocol protocol) {
  return {protocol, Family::kIpv4, netlink::kAllStates, {}, true};
}

TEST(IteratorWalkTest, DecodesEveryFieldOfARecord) {
  portwatch_socket_record raw = Raw(AF_INET6, netlink::kListen, 8080, 1);
  raw.v6only = 1;
  raw.reuseport = 1;
  raw.timer = 0;
  raw.remote_port = 0;
  raw.inode = 424242;
  raw.uid = 1000;
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", raw.local_address), 1);
  ASSERT_EQ(inet_pton(AF_INET6, "fe80::1", raw.remote_address), 1);
  std::vector<std::byte> bytes;
  Append(bytes, raw);
  Append(bytes, Trailer(1));
  FakeWalk walk({{bytes}});
  std::vector<SocketRecord> seen;
  const netlink::DumpResult result =
      ReadIteratorWalk(walk.Reader(), Everything(Protocol::kTcp),
                       [&seen](const SocketRecord& record) { seen.push_back(record); });
  ASSERT_EQ(result.outcome, DumpOutcome::kComplete) << result.error;
  EXPECT_EQ(result.sockets, 1U);
  ASSERT_EQ(seen.size(), 1U);
  const SocketRecord& record = seen.front();
  EXPECT_EQ(record.family, AF_INET6);
  EXPECT_EQ(record.state, netlink::kListen);
  EXPECT_EQ(record.local_port, 8080);
  EXPECT_EQ(record.v6only, 1);
  EXPECT_EQ(record.reuse, 1);
  EXPECT_EQ(record.reuseport, 1);
  EXPECT_EQ(record.inode, 424242U);
  EXPECT_EQ(record.uid, 1000U);
  EXPECT_EQ(std::memcmp(record.local_address.data(), raw.local_address, 16), 0);
  EXPECT_EQ(std::memcmp(record.remote_address.data(), raw.remote_address, 16), 0);
}

TEST(IteratorWalkTest, TimeWaitKeepsItsFlagAndExpiry) {
  portwatch_socket_record raw = Raw(AF_INET, netlink::kTimeWait, 9000, 0);
  raw.timer = 3;
  raw.timer_expires_ms = 59000;
  ASSERT_EQ(inet_pton(AF_INET, "10.1.2.3", raw.local_address), 1);
  std::vector<std::byte> bytes;
  Append(bytes, raw);
  Append(bytes, Trailer(1));
  FakeWalk walk({{bytes}});
  std::vector<SocketRecord> seen;
  ASSERT_EQ(ReadIteratorWalk(walk.Reader(), Everything(Protocol::kTcp),
                             [&seen](const SocketRecord& record) { seen.push_back(record); })
                .outcome,
            DumpOutcome::kComplete);
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].reuse, 0);
  EXPECT_EQ(seen[0].timer, 3);
  EXPECT_EQ(seen[0].timer_expires_ms, 59000U);
  EXPECT_EQ(seen[0].inode, 0U);
  EXPECT_EQ(seen[0].local_address[0], 10);
  EXPECT_EQ(seen[0].local_address[3], 3);
}

TEST(IteratorWalkTest, AppliesTheRequestsFamilyStatesAndPortsAsTheKernelDoes) {
  const std::vector<portwatch_socket_record> table = {
      Raw(AF_INET, netlink::kListen, 80, 1),      Raw(AF_INET6, netlink::kListen, 80, 1),
      Raw(AF_INET, netlink::kEstablished, 80, 0), Raw(AF_INET, netlink::kTimeWait, 80, 0),
      Raw(AF_INET, netlink::kEstablished, 81, 0), Raw(AF_INET6, netlink::kSynRecv, 80, 1)};
  std::vector<std::byte> bytes;
  for (const auto& raw : table) {
    Append(bytes, raw);
  }
  Append(bytes, Trailer(table.size()));
  auto count = [&bytes](const DumpRequest& request) {
    FakeWalk walk({{bytes}});
    uint64_t visited = 0;
    const netlink::DumpResult result =
        ReadIteratorWalk(walk.Reader(), request, [&visited](const SocketRecord&) { ++visited; });
    EXPECT_EQ(result.outcome, DumpOutcome::kComplete);
    EXPECT_EQ(result.sockets, visited);
    return visited;
  };
  EXPECT_EQ(count(Everything(Protocol::kTcp)), 6U);
  EXPECT_EQ(count({Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {}}), 4U);
  EXPECT_EQ(count({Protocol::kTcp, Family::kIpv6, netlink::kAllStates, {}}), 2U);
  EXPECT_EQ(count({Protocol::kTcp, Family::kIpv4, netlink::StateBit(netlink::kListen), {}, true}),
            2U);
  EXPECT_EQ(count({Protocol::kTcp,
                   Family::kIpv4,
                   netlink::kAllStates & ~netlink::StateBit(netlink::kListen),
                   {80},
                   true}),
            3U);
  EXPECT_EQ(count({Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {81, 82}}), 1U);
}

TEST(IteratorWalkTest, JoinsARecordSplitAcrossReadsAndRetriesEagain) {
  std::vector<std::byte> bytes;
  Append(bytes, Raw(AF_INET, netlink::kEstablished, 1, 1));
  Append(bytes, Raw(AF_INET, netlink::kEstablished, 2, 1));
  Append(bytes, Trailer(2));
  std::vector<std::byte> first(bytes.begin(), bytes.begin() + 70);
  std::vector<std::byte> rest(bytes.begin() + 70, bytes.end());
  FakeWalk walk({{first}, {{}, EAGAIN}, {{}, EINTR}, {rest}});
  std::vector<uint16_t> ports;
  const netlink::DumpResult result = ReadIteratorWalk(
      walk.Reader(), Everything(Protocol::kTcp),
      [&ports](const SocketRecord& record) { ports.push_back(record.local_port); });
  ASSERT_EQ(result.outcome, DumpOutcome::kComplete) << result.error;
  EXPECT_EQ(ports, (std::vector<uint16_t>{1, 2}));
  EXPECT_EQ(walk.Reads(), 5);
}

TEST(IteratorWalkTest, AWalkWithoutItsTrailerFailsAfterHandingOnWhatItRead) {
  std::vector<std::byte> bytes;
  Append(bytes, Raw(AF_INET, netlink::kEstablished, 1, 1));
  FakeWalk walk({{bytes}});
  uint64_t visited = 0;
  const netlink::DumpResult result = ReadIteratorWalk(
      walk.Reader(), Everything(Protocol::kTcp), [&visited](const SocketRecord&) { ++visited; });
  EXPECT_EQ(result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(result.error, "socket iterator: the walk ended without its trailer");
  EXPECT_EQ(visited, 1U);
}

TEST(IteratorWalkTest, RejectsBrokenWalks) {
  const auto outcome_of = [](std::deque<Chunk> chunks) {
    FakeWalk walk(std::move(chunks));
    return ReadIteratorWalk(walk.Reader(), Everything(Protocol::kUdp), [](const SocketRecord&) {});
  };
  {
    std::vector<std::byte> bytes;
    Append(bytes, Trailer(0));
    Append(bytes, Raw(AF_INET, netlink::kClose, 1, 1));
    EXPECT_EQ(outcome_of({{bytes}}).error, "socket iterator: data after the end of the walk");
  }
  {
    std::vector<std::byte> bytes;
    Append(bytes, Trailer(0));
    bytes.resize(bytes.size() + 10);
    EXPECT_EQ(outcome_of({{bytes}}).error, "socket iterator: the walk ended inside a record");
  }
  {
    std::vector<std::byte> bytes;
    portwatch_socket_record raw = Raw(AF_INET, netlink::kClose, 1, 1);
    raw.kind = 0x33;
    Append(bytes, raw);
    EXPECT_EQ(outcome_of({{bytes}}).error, "socket iterator: unknown record kind 51");
  }
  { EXPECT_EQ(outcome_of({{{}, EIO}}).error, "socket iterator: read: Input/output error"); }
  {
    std::deque<Chunk> again(100, Chunk{{}, EAGAIN});
    EXPECT_EQ(outcome_of(std::move(again)).outcome, DumpOutcome::kFailed);
  }
}

TEST(SocketBackendChoiceTest, AutoNeedsExactIterationPerProtocol) {
  using Setting = SocketBackendSetting;
  EXPECT_EQ(ChooseBpfProtocols(Setting::kAuto, true, {true, true}),
            (std::array<bool, 2>{true, true}));
  EXPECT_EQ(ChooseBpfProtocols(Setting::kAuto, true, {false, true}),
            (std::array<bool, 2>{false, true}));
  EXPECT_EQ(ChooseBpfProtocols(Setting::kAuto, false, {true, true}),
            (std::array<bool, 2>{false, false}));
  EXPECT_EQ(ChooseBpfProtocols(Setting::kBpf, true, {false, false}),
            (std::array<bool, 2>{true, true}));
  EXPECT_EQ(ChooseBpfProtocols(Setting::kBpf, false, {true, true}),
            (std::array<bool, 2>{false, false}));
  EXPECT_EQ(ChooseBpfProtocols(Setting::kNetlink, true, {true, true}),
            (std::array<bool, 2>{false, false}));
}

}  // namespace
}  // namespace portwatch
