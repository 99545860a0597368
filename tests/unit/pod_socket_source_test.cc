// A pod's socket source: each BPF walk made inside the pod (a fake CreateInside around a pipe
// standing for the iterator), sock_diag for what the iterators cannot see and for walks that
// cannot start, with the reason; and SocketSources::OpenPod's choice of backend.
#include <sys/socket.h>

#include <string>
#include <utility>
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

/// An iterator's walk: `records` TIME_WAIT sockets on port 9 with SO_REUSEADDR, and the trailer.
Result<netlink::UniqueFd> TimeWaitWalk(int records) {
  portwatch_socket_record raw{};
  raw.family = AF_INET;
  raw.state = netlink::kTimeWait;
  raw.local_port = 9;
  raw.reuse = 1;
  return testing::PipeWalk(raw, records);
}

/// A pod whose namespace the fake CreateInside "enters": `inside` is true only while an action
/// runs there, so a walk made outside it is caught.
struct FakePod {
  enum class Enter { kWorks, kSetnsFails };
  Enter enter = Enter::kWorks;
  bool create_fails = false;
  bool inside = false;
  int entered = 0;
  std::vector<Protocol> walks_made_inside;
  std::vector<Protocol> walks_made_outside;
  std::vector<DumpRequest> netlink_asked;
  std::vector<std::pair<std::string, std::string>> fallbacks;

  CreateInside Inside() {
    return
        [this](
            const std::function<Result<netlink::UniqueFd>()>& make) -> Result<netlink::UniqueFd> {
          if (enter == Enter::kSetnsFails) {
            return Failure{"setns into a pod's network namespace: Operation not permitted"};
          }
          ++entered;
          inside = true;
          Result<netlink::UniqueFd> made = make();
          inside = false;
          return made;
        };
  }

  std::unique_ptr<SocketSource> Source(std::array<bool, 2> use_bpf) {
    return MakePodSource(
        [this](Protocol protocol) -> Result<netlink::UniqueFd> {
          (inside ? walks_made_inside : walks_made_outside).push_back(protocol);
          if (create_fails) {
            return Failure{"socket iterator: create: Cannot allocate memory"};
          }
          return TimeWaitWalk(2);
        },
        Inside(), use_bpf, std::make_unique<FakeSockDiag>(netlink_asked),
        [this](const std::string& reason, const std::string& error) {
          fallbacks.emplace_back(reason, error);
        });
  }
};

std::vector<SocketRecord> WalkAll(SocketSource& source, const DumpRequest& request) {
  std::vector<SocketRecord> seen;
  const netlink::DumpResult result =
      source.Walk(request, [&seen](const SocketRecord& record) { seen.push_back(record); });
  EXPECT_EQ(result.outcome, DumpOutcome::kComplete) << result.error;
  EXPECT_EQ(result.sockets, seen.size());
  return seen;
}

/// One request for the protocol's whole table, both families.
DumpRequest Whole(Protocol protocol) {
  return {protocol, Family::kIpv4, netlink::kAllStates, {}, true};
}

TEST(PodSocketSourceTest, EachWalkIsMadeInsideThePodAndCarriesTheIteratorsFlags) {
  FakePod pod;
  const std::unique_ptr<SocketSource> source = pod.Source({true, true});
  EXPECT_EQ(source->Backend(Protocol::kTcp), SocketBackend::kBpf);
  EXPECT_EQ(source->Backend(Protocol::kUdp), SocketBackend::kBpf);
  EXPECT_TRUE(source->WalksBothFamilies(Protocol::kTcp));
  const std::vector<SocketRecord> tcp = WalkAll(*source, Whole(Protocol::kTcp));
  ASSERT_EQ(tcp.size(), 2U);
  EXPECT_EQ(tcp[0].state, netlink::kTimeWait);
  EXPECT_EQ(tcp[0].local_port, 9);
  EXPECT_EQ(tcp[0].reuse, 1);
  EXPECT_EQ(WalkAll(*source, Whole(Protocol::kUdp)).size(), 2U);
  EXPECT_EQ(WalkAll(*source, Whole(Protocol::kTcp)).size(), 2U);
  // One entry per walk: an iterator's fd is one walk.
  EXPECT_EQ(pod.entered, 3);
  EXPECT_EQ(pod.walks_made_inside,
            (std::vector<Protocol>{Protocol::kTcp, Protocol::kUdp, Protocol::kTcp}));
  EXPECT_TRUE(pod.walks_made_outside.empty());
  EXPECT_TRUE(pod.netlink_asked.empty());
  EXPECT_TRUE(pod.fallbacks.empty());
}

TEST(PodSocketSourceTest, BoundInactiveSocketsAndNetlinkProtocolsGoToThePodsSockDiag) {
  FakePod pod;
  const std::unique_ptr<SocketSource> source = pod.Source({true, false});
  EXPECT_EQ(source->Backend(Protocol::kUdp), SocketBackend::kNetlink);
  const std::vector<SocketRecord> udp =
      WalkAll(*source, {Protocol::kUdp, Family::kIpv6, netlink::kAllStates, {}});
  ASSERT_EQ(udp.size(), 1U);
  EXPECT_EQ(udp[0].local_port, 7);
  EXPECT_EQ(udp[0].reuse, -1);
  EXPECT_EQ(
      WalkAll(*source, {Protocol::kTcp, Family::kIpv4, netlink::kBoundInactiveStates, {80}}).size(),
      1U);
  ASSERT_EQ(pod.netlink_asked.size(), 2U);
  EXPECT_EQ(pod.netlink_asked[0].protocol, Protocol::kUdp);
  EXPECT_EQ(pod.netlink_asked[1].states, netlink::kBoundInactiveStates);
  EXPECT_EQ(pod.netlink_asked[1].local_ports, std::vector<uint16_t>{80});
  EXPECT_EQ(pod.entered, 0);
  EXPECT_TRUE(pod.fallbacks.empty());
}

TEST(PodSocketSourceTest, APodThatCannotBeEnteredIsReadThroughSockDiagForReasonSetns) {
  FakePod pod;
  pod.enter = FakePod::Enter::kSetnsFails;
  const std::unique_ptr<SocketSource> source = pod.Source({true, true});
  const std::vector<SocketRecord> seen = WalkAll(*source, Whole(Protocol::kTcp));
  ASSERT_EQ(seen.size(), 1U);
  EXPECT_EQ(seen[0].local_port, 7);
  EXPECT_TRUE(pod.walks_made_inside.empty());
  EXPECT_TRUE(pod.walks_made_outside.empty());
  ASSERT_EQ(pod.netlink_asked.size(), 1U);
  EXPECT_TRUE(pod.netlink_asked[0].both_families);
  EXPECT_EQ(pod.fallbacks,
            (std::vector<std::pair<std::string, std::string>>{
                {"setns", "setns into a pod's network namespace: Operation not permitted"}}));
}

TEST(PodSocketSourceTest, EachFallbackCarriesTheReasonOfItsOwnWalk) {
  FakePod pod;
  pod.create_fails = true;
  const std::unique_ptr<SocketSource> source = pod.Source({true, true});
  EXPECT_EQ(WalkAll(*source, Whole(Protocol::kTcp)).size(), 1U);
  pod.create_fails = false;
  pod.enter = FakePod::Enter::kSetnsFails;
  EXPECT_EQ(WalkAll(*source, Whole(Protocol::kUdp)).size(), 1U);
  pod.enter = FakePod::Enter::kWorks;
  EXPECT_EQ(WalkAll(*source, Whole(Protocol::kUdp)).size(), 2U);
  EXPECT_EQ(pod.fallbacks,
            (std::vector<std::pair<std::string, std::string>>{
                {"create", "socket iterator: create: Cannot allocate memory"},
                {"setns", "setns into a pod's network namespace: Operation not permitted"}}));
  EXPECT_EQ(pod.walks_made_inside, (std::vector<Protocol>{Protocol::kTcp, Protocol::kUdp}));
  EXPECT_EQ(pod.netlink_asked.size(), 2U);
}

TEST(SocketSourcesTest, APodsSourceIsTheNetlinkOneWhenTheIteratorsAreNotUsed) {
  int loads = 0;
  int node_transports = 0;
  int pod_transports = 0;
  int entered = 0;
  SocketSources sources(
      [&node_transports]() -> Result<std::unique_ptr<netlink::Transport>> {
        ++node_transports;
        return Failure{"the node's sock_diag"};
      },
      [&loads]() -> Result<std::shared_ptr<const SocketIterators>> {
        ++loads;
        return Failure{"socket iterators: load: Operation not permitted"};
      });
  const CreateInside inside = [&entered](const std::function<Result<netlink::UniqueFd>()>& make) {
    ++entered;
    return make();
  };
  const netlink::TransportFactory pod_netlink =
      [&pod_transports]() -> Result<std::unique_ptr<netlink::Transport>> {
    ++pod_transports;
    return Failure{"the pod's sock_diag"};
  };
  for (const SocketBackendSetting setting :
       {SocketBackendSetting::kNetlink, SocketBackendSetting::kAuto, SocketBackendSetting::kBpf}) {
    const std::unique_ptr<SocketSource> source = sources.OpenPod(setting, {}, inside, pod_netlink);
    EXPECT_EQ(source->Backend(Protocol::kTcp), SocketBackend::kNetlink);
    EXPECT_EQ(source->Backend(Protocol::kUdp), SocketBackend::kNetlink);
    const netlink::DumpResult result =
        source->Walk(Whole(Protocol::kTcp), [](const SocketRecord& /*record*/) {});
    EXPECT_EQ(result.outcome, DumpOutcome::kFailed);
    EXPECT_NE(result.error.find("the pod's sock_diag"), std::string::npos) << result.error;
  }
  // backend: netlink never loads the iterators; the others tried once.
  EXPECT_EQ(loads, 1);
  EXPECT_EQ(pod_transports, 3);
  EXPECT_EQ(node_transports, 0);
  EXPECT_EQ(entered, 0);
  EXPECT_TRUE(sources.Current().fallbacks.empty());
}

}  // namespace
}  // namespace portwatch
