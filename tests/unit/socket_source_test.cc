#include <sys/socket.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/bpf/socket_iter_abi.h"
#include "collectors/socket_source/socket_iterators.h"
#include "tests/unit/socket_source_fakes.h"

namespace portwatch {
namespace {

using netlink::DumpOutcome;
using netlink::DumpRequest;
using netlink::Family;
using netlink::Protocol;
using netlink::SocketRecord;

using testing::FakeSockDiag;

/// The iterators' walk of these tests: `records` IPv6 sockets on port 9, SO_REUSEADDR set.
Result<netlink::UniqueFd> Ipv6Walk(int records) {
  portwatch_socket_record raw{};
  raw.family = AF_INET6;
  raw.state = netlink::kEstablished;
  raw.local_port = 9;
  raw.reuse = 1;
  raw.v6only = 0;
  return testing::PipeWalk(raw, records);
}

struct Harness {
  std::vector<DumpRequest> netlink_asked;
  std::vector<Protocol> walks_created;
  std::vector<std::string> fallbacks;
  bool create_fails = false;
  bool netlink_refuses_both_families = false;

  BpfSocketSource Source(std::array<bool, 2> use_bpf) {
    return BpfSocketSource(
        [this](Protocol protocol) -> Result<netlink::UniqueFd> {
          walks_created.push_back(protocol);
          if (create_fails) {
            return Failure{"socket iterator: create: Operation not permitted"};
          }
          return Ipv6Walk(3);
        },
        use_bpf, std::make_unique<FakeSockDiag>(netlink_asked, netlink_refuses_both_families),
        [this](const std::string& error) { fallbacks.push_back(error); });
  }
};

std::vector<SocketRecord> WalkAll(SocketSource& source, const DumpRequest& request,
                                  DumpOutcome expected = DumpOutcome::kComplete) {
  std::vector<SocketRecord> seen;
  const netlink::DumpResult result =
      source.Walk(request, [&seen](const SocketRecord& record) { seen.push_back(record); });
  EXPECT_EQ(result.outcome, expected) << result.error;
  EXPECT_EQ(result.sockets, seen.size());
  return seen;
}

TEST(BpfSocketSourceTest, ReadsTheIteratorsWalkWithItsFlags) {
  Harness harness;
  BpfSocketSource source = harness.Source({true, true});
  EXPECT_EQ(source.Backend(Protocol::kTcp), SocketBackend::kBpf);
  EXPECT_FALSE(source.FiltersInKernel(Protocol::kTcp));
  EXPECT_TRUE(source.WalksBothFamilies(Protocol::kUdp));
  const std::vector<SocketRecord> seen =
      WalkAll(source, {Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {}, true});
  ASSERT_EQ(seen.size(), 3U);
  EXPECT_EQ(seen[0].local_port, 9);
  EXPECT_EQ(seen[0].reuse, 1);
  EXPECT_EQ(harness.walks_created, std::vector<Protocol>{Protocol::kTcp});
  EXPECT_TRUE(harness.netlink_asked.empty());
  // The records are IPv6: a request for IPv4 alone gets none of them.
  EXPECT_TRUE(WalkAll(source, {Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {}}).empty());
}

TEST(BpfSocketSourceTest, BoundInactiveSocketsAndNetlinkProtocolsGoToSockDiag) {
  Harness harness;
  BpfSocketSource source = harness.Source({true, false});
  EXPECT_EQ(source.Backend(Protocol::kUdp), SocketBackend::kNetlink);
  EXPECT_TRUE(source.FiltersInKernel(Protocol::kUdp));
  EXPECT_EQ(WalkAll(source, {Protocol::kUdp, Family::kIpv4, netlink::kAllStates, {}}).size(), 1U);
  EXPECT_EQ(WalkAll(source, {Protocol::kTcp, Family::kIpv6, netlink::kBoundInactiveStates, {8080}})
                .size(),
            1U);
  ASSERT_EQ(harness.netlink_asked.size(), 2U);
  EXPECT_EQ(harness.netlink_asked[1].states, netlink::kBoundInactiveStates);
  EXPECT_TRUE(harness.walks_created.empty());
}

TEST(BpfSocketSourceTest, AWalkThatCannotStartIsAnsweredBySockDiagAndReported) {
  Harness harness;
  harness.create_fails = true;
  BpfSocketSource source = harness.Source({true, true});
  EXPECT_EQ(WalkAll(source, {Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {}}).size(), 1U);
  EXPECT_EQ(harness.fallbacks,
            std::vector<std::string>{"socket iterator: create: Operation not permitted"});
  EXPECT_EQ(harness.netlink_asked.size(), 1U);
}

TEST(BpfSocketSourceTest, ABothFamiliesRequestSockDiagRefusesIsAskedAgainPerFamily) {
  // bound_inactive: the iterators cannot see those sockets, so TCP's one request for both
  // families goes to sock_diag, and a kernel without the older inet_diag request refuses it.
  Harness harness;
  harness.netlink_refuses_both_families = true;
  BpfSocketSource source = harness.Source({true, true});
  const DumpRequest both{
      Protocol::kTcp, Family::kIpv4, netlink::kAllStates | netlink::kBoundInactiveStates, {}, true};
  EXPECT_EQ(WalkAll(source, both).size(), 2U);  // one socket from each family's request
  ASSERT_EQ(harness.netlink_asked.size(), 3U);
  EXPECT_TRUE(harness.netlink_asked[0].both_families);
  EXPECT_FALSE(harness.netlink_asked[1].both_families);
  EXPECT_EQ(harness.netlink_asked[1].family, Family::kIpv4);
  EXPECT_EQ(harness.netlink_asked[2].family, Family::kIpv6);
  // Refused once, not asked again in this scrape; a walk that cannot start goes the same way.
  harness.create_fails = true;
  EXPECT_EQ(WalkAll(source, {Protocol::kTcp, Family::kIpv4, netlink::kAllStates, {}, true}).size(),
            2U);
  EXPECT_EQ(harness.netlink_asked.size(), 5U);
  EXPECT_FALSE(harness.netlink_asked[3].both_families);
}

TEST(BpfSocketSourceTest, ABothFamiliesRequestSockDiagTakesIsAskedOnce) {
  Harness harness;
  BpfSocketSource source = harness.Source({true, true});
  EXPECT_EQ(
      WalkAll(source, {Protocol::kTcp, Family::kIpv4, netlink::kBoundInactiveStates, {}, true})
          .size(),
      1U);
  ASSERT_EQ(harness.netlink_asked.size(), 1U);
  EXPECT_TRUE(harness.netlink_asked[0].both_families);
}

TEST(SocketSourcesTest, LoadsTheIteratorsOnceAndSaysWhyTheyAreUnavailable) {
  int loads = 0;
  SocketSources sources(
      []() -> Result<std::unique_ptr<netlink::Transport>> { return Failure{"no netlink here"}; },
      [&loads]() -> Result<std::shared_ptr<const SocketIterators>> {
        ++loads;
        return Failure{"socket iterators: load: Operation not permitted"};
      });
  EXPECT_EQ(sources.Current().unavailable_because[0],
            "not loaded (collectors.sockets.backend: netlink)");
  EXPECT_EQ(sources.Open(SocketBackendSetting::kNetlink)->Backend(Protocol::kTcp),
            SocketBackend::kNetlink);
  EXPECT_EQ(loads, 0);
  for (int scrape = 0; scrape < 3; ++scrape) {
    EXPECT_EQ(sources.Open(SocketBackendSetting::kAuto)->Backend(Protocol::kTcp),
              SocketBackend::kNetlink);
  }
  EXPECT_EQ(loads, 1);
  const SocketSources::Snapshot snapshot = sources.Current();
  EXPECT_EQ(snapshot.available, (std::array<bool, 2>{false, false}));
  EXPECT_EQ(snapshot.unavailable_because[1], "socket iterators: load: Operation not permitted");
}

}  // namespace
}  // namespace portwatch
