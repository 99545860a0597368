// The bind-prediction rules of the README ("Services: ownership, conflicts and bind
// prediction"), one test per rule, on hand-built sock_diag records: no kernel involved. The
// kernel itself checks the same rules end to end in tests/e2e/services_e2e_test.cc.
#include "collectors/services/bind_prediction.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/services/socket_intake.h"

namespace portwatch {
namespace {

using netlink::Protocol;

constexpr uint16_t kPort = 8080;

/// A socket on `spec` ("127.0.0.1", "::", "::ffff:10.0.0.1"; "/v6only" sets IPV6_V6ONLY) in
/// `state`, held through `inode` (0: no fd, as TIME_WAIT sockets).
netlink::SocketRecord Socket(uint8_t state, const std::string& spec, uint32_t inode = 0,
                             uint16_t port = kPort) {
  const size_t slash = spec.find('/');
  const std::string text = spec.substr(0, slash);
  netlink::SocketRecord record;
  record.family = text.find(':') != std::string::npos ? AF_INET6 : AF_INET;
  EXPECT_EQ(::inet_pton(record.family, text.c_str(), record.local_address.data()), 1) << spec;
  record.v6only =
      static_cast<int8_t>(record.family == AF_INET6 ? (slash != std::string::npos ? 1 : 0) : -1);
  record.state = state;
  record.local_port = port;
  record.inode = inode;
  return record;
}

/// `record` as a source that reports SO_REUSEADDR (a socket iterator) shows it: 1 set, 0 unset.
netlink::SocketRecord Flagged(netlink::SocketRecord record, int8_t reuse) {
  record.reuse = reuse;
  return record;
}

ServiceConfig Service(const std::string& spec, ServiceProtocol protocol = ServiceProtocol::kTcp) {
  const size_t slash = spec.find('/');
  ServiceConfig service;
  service.name = "web";
  service.port = kPort;
  service.protocol = protocol;
  EXPECT_TRUE(SetServiceAddress(spec.substr(0, slash), service)) << spec;
  service.ipv6_only = slash != std::string::npos;
  return service;
}

PortObservation Observe(const ServiceConfig& service,
                        const std::vector<netlink::SocketRecord>& records) {
  PortObservation observed;
  for (const netlink::SocketRecord& record : records) {
    ObserveSocket(service, ProtocolOf(service), record, observed);
  }
  return observed;
}

/// "free", "blocked by listen 1, time_wait 3", "unknown: <why>".
std::string Show(const BindPrediction& prediction) {
  std::string text = VerdictName(prediction.verdict);
  if (prediction.verdict == Verdict::kBlocked) {
    std::string blockers;
    for (const auto& [state, count] : prediction.blockers_by_state) {
      blockers += (blockers.empty() ? "" : ", ") + state + " " + std::to_string(count);
    }
    text += " by " + blockers;
  } else if (prediction.verdict == Verdict::kUnknown) {
    text += ": " + prediction.unknown_because;
  }
  return text;
}

/// Both predictions for `service` given the sockets on its port and what is known of their
/// flags (`flags` as read from fds; the records' own flags take precedence, as in ServiceTable):
/// "without | with".
struct Scenario {
  ServiceConfig service = Service("0.0.0.0");
  std::vector<netlink::SocketRecord> sockets = {};
  ReuseFlags flags = {};
  std::optional<bool> time_wait_reuse = std::nullopt;
  bool bound_inactive_visible = true;

  std::string Predict() const {
    const PortObservation observed = Observe(service, sockets);
    BindContext context;
    context.protocol = ProtocolOf(service);
    context.reuse_by_inode = observed.reuse_by_inode;
    context.reuse_by_inode.insert(flags.begin(), flags.end());
    context.time_wait_reuse = time_wait_reuse;
    context.bound_inactive_visible = bound_inactive_visible;
    return Show(PredictBindWithoutReuse(observed, context)) + " | " +
           Show(PredictBindWithReuse(observed, context));
  }
};

constexpr uint8_t kListen = netlink::kListen;
constexpr uint8_t kTimeWait = netlink::kTimeWait;
constexpr uint8_t kEstablished = netlink::kEstablished;
constexpr uint8_t kUnconn = netlink::kClose;  // bound, neither listening nor connected

const std::string kNeverSaw =
    "unknown: TIME_WAIT sockets left by a listener whose SO_REUSEADDR portwatch never saw";
const std::string kCannotRead =
    "unknown: cannot read SO_REUSEADDR of a socket on the port (needs CAP_SYS_PTRACE)";
const std::string kNoProcess = "unknown: sockets on the port that no process holds";
const std::string kOldKernel =
    "unknown: this kernel (before 6.10) does not show bound-but-inactive TCP sockets";

// --- Only sockets whose address overlaps the service's count ---

TEST(BindPredictionTest, NothingOnThePortIsFree) { EXPECT_EQ(Scenario{}.Predict(), "free | free"); }

TEST(BindPredictionTest, AWildcardListenerBlocksASpecificAddress) {
  Scenario scenario{.service = Service("127.0.0.1"), .sockets = {Socket(kListen, "0.0.0.0", 1)}};
  scenario.flags = {{1, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, ASpecificListenerBlocksTheWildcard) {
  Scenario scenario{.service = Service("0.0.0.0"), .sockets = {Socket(kListen, "10.1.2.3", 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, AnotherSpecificAddressDoesNotCompete) {
  Scenario scenario{.service = Service("127.0.0.1"),
                    .sockets = {Socket(kListen, "127.0.0.2", 1), Socket(kTimeWait, "127.0.0.2"),
                                Socket(kListen, "::1", 2)}};
  EXPECT_EQ(scenario.Predict(), "free | free");
}

TEST(BindPredictionTest, ADualStackIpv6WildcardBlocksEveryIpv4Address) {
  Scenario scenario{.service = Service("127.0.0.1"), .sockets = {Socket(kListen, "::", 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
  scenario.service = Service("0.0.0.0");
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, AV6OnlyIpv6WildcardLeavesIpv4Alone) {
  Scenario scenario{.service = Service("127.0.0.1"), .sockets = {Socket(kListen, "::/v6only", 1)}};
  EXPECT_EQ(scenario.Predict(), "free | free");
  scenario.service = Service("0.0.0.0");
  EXPECT_EQ(scenario.Predict(), "free | free");
  // ... but not IPv6 addresses.
  scenario.service = Service("::1");
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, AnIpv6ServiceIsBlockedByIpv4UnlessV6Only) {
  Scenario scenario{.service = Service("::"), .sockets = {Socket(kListen, "0.0.0.0", 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
  scenario.service = Service("::/v6only");
  EXPECT_EQ(scenario.Predict(), "free | free");
  scenario.service = Service("::1");
  EXPECT_EQ(scenario.Predict(), "free | free");
}

TEST(BindPredictionTest, AV4MappedAddressIsItsIpv4Address) {
  Scenario scenario{.service = Service("127.0.0.1"),
                    .sockets = {Socket(kListen, "::ffff:127.0.0.1", 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
  scenario.service = Service("127.0.0.2");
  EXPECT_EQ(scenario.Predict(), "free | free");
  // A v4-mapped service against an IPv4 socket, and against a v6only wildcard.
  scenario.service = Service("::ffff:127.0.0.1");
  scenario.sockets = {Socket(kListen, "0.0.0.0", 1)};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
  scenario.sockets = {Socket(kListen, "::/v6only", 1)};
  EXPECT_EQ(scenario.Predict(), "free | free");
}

// --- Without SO_REUSEADDR any overlapping socket blocks ---

TEST(BindPredictionTest, WithoutReuseEveryStateBlocks) {
  Scenario scenario{.sockets = {Socket(kListen, "0.0.0.0", 1), Socket(kEstablished, "10.0.0.1", 2),
                                Socket(kEstablished, "10.0.0.1", 3), Socket(kTimeWait, "10.0.0.1"),
                                Socket(kTimeWait, "10.0.0.1"), Socket(kTimeWait, "10.0.0.1"),
                                Socket(netlink::kCloseWait, "10.0.0.1", 4),
                                Socket(kUnconn, "10.0.0.2", 5)}};
  scenario.flags = {{1, true}, {2, true}, {3, true}, {4, true}, {5, true}};
  scenario.time_wait_reuse = true;
  EXPECT_EQ(scenario.Predict(),
            "blocked by close_wait 1, established 2, listen 1, time_wait 3, unconn 1 | "
            "blocked by listen 1");
}

TEST(BindPredictionTest, ABoundInactiveTcpSocketBlocks) {
  // A TCP socket between bind() and listen(): Linux 6.10+ dumps it as unconn.
  Scenario scenario{.sockets = {Socket(kUnconn, "0.0.0.0", 7)}};
  scenario.flags = {{7, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | free");
  // Without the flag it blocks the reusing bind too. Its state is not kept per inode: a TCP
  // socket found by its flag is counted as established.
  scenario.flags = {{7, false}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | blocked by established 1");
}

TEST(BindPredictionTest, RequestSocketsHoldNoPort) {
  Scenario scenario{.sockets = {Socket(netlink::kSynRecv, "10.0.0.1")}};
  EXPECT_EQ(scenario.Predict(), "free | free");
  // A socket iterator shows them in the kernel's own state, with their listener's flag.
  scenario.sockets = {Flagged(Socket(netlink::kNewSynRecv, "10.0.0.1"), 0),
                      Socket(netlink::kNewSynRecv, "10.0.0.1")};
  EXPECT_EQ(scenario.Predict(), "free | free");
}

// --- With SO_REUSEADDR ---

TEST(BindPredictionTest, WithReuseATcpListenerStillBlocks) {
  Scenario scenario{.sockets = {Socket(kListen, "0.0.0.0", 1)}};
  scenario.flags = {{1, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, WithReuseASocketThatSetTheFlagDoesNotBlock) {
  Scenario scenario{.sockets = {Socket(kEstablished, "10.0.0.1", 2)}};
  scenario.flags = {{2, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 1 | free");
}

TEST(BindPredictionTest, WithReuseASocketThatDidNotSetTheFlagBlocks) {
  Scenario scenario{
      .sockets = {Socket(kEstablished, "10.0.0.1", 2), Socket(kEstablished, "10.0.0.1", 3)}};
  scenario.flags = {{2, false}, {3, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 2 | blocked by established 1");
}

// --- TIME_WAIT carries the flag of the listener that accepted it ---

TEST(BindPredictionTest, TimeWaitAfterAListenerWithReuseBlocksOnlyAPlainBind) {
  Scenario scenario{.sockets = {Socket(kTimeWait, "10.0.0.1"), Socket(kTimeWait, "10.0.0.1")}};
  scenario.time_wait_reuse = true;
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | free");
}

TEST(BindPredictionTest, TimeWaitAfterAListenerWithoutReuseBlocksEvenAReusingBind) {
  Scenario scenario{.sockets = {Socket(kTimeWait, "10.0.0.1"), Socket(kTimeWait, "10.0.0.1")}};
  scenario.time_wait_reuse = false;
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | blocked by time_wait 2");
}

TEST(BindPredictionTest, TimeWaitFromAListenerNeverSeenIsUnknown) {
  Scenario scenario{.sockets = {Socket(kTimeWait, "10.0.0.1")}};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 1 | " + kNeverSaw);
}

TEST(BindPredictionTest, TimeWaitOnAnotherAddressDoesNotCount) {
  Scenario scenario{.service = Service("127.0.0.1"), .sockets = {Socket(kTimeWait, "10.0.0.1")}};
  EXPECT_EQ(scenario.Predict(), "free | free");
}

// --- Flags the kernel reported in the records decide exactly ---

TEST(BindPredictionTest, TimeWaitWithItsOwnFlagUnsetBlocksThoughNoListenerWasSeen) {
  Scenario scenario{.sockets = {Flagged(Socket(kTimeWait, "10.0.0.1"), 0),
                                Flagged(Socket(kTimeWait, "10.0.0.1"), 0)}};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | blocked by time_wait 2");
}

TEST(BindPredictionTest, TimeWaitWithItsOwnFlagSetIsFreeWhateverTheListenerWasThoughtToHave) {
  Scenario scenario{.sockets = {Flagged(Socket(kTimeWait, "10.0.0.1"), 1),
                                Flagged(Socket(kTimeWait, "10.0.0.1"), 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | free");
  // A remembered listener without the flag was an older incarnation: the sockets' own copy wins.
  scenario.time_wait_reuse = false;
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | free");
}

TEST(BindPredictionTest, TimeWaitWithMixedFlagsIsBlockedByThoseWithoutIt) {
  Scenario scenario{.sockets = {Flagged(Socket(kTimeWait, "10.0.0.1"), 0),
                                Flagged(Socket(kTimeWait, "10.0.0.2"), 1),
                                Flagged(Socket(kTimeWait, "10.0.0.3"), 0),
                                Flagged(Socket(kTimeWait, "10.0.0.4"), 1),
                                Flagged(Socket(kTimeWait, "10.0.0.5"), 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 5 | blocked by time_wait 2");
}

TEST(BindPredictionTest, TimeWaitWithoutAFlagBesideFlaggedOnesFallsBackToTheListener) {
  Scenario scenario{
      .sockets = {Flagged(Socket(kTimeWait, "10.0.0.1"), 1), Socket(kTimeWait, "10.0.0.2")}};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | " + kNeverSaw);
  scenario.time_wait_reuse = true;
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | free");
  scenario.time_wait_reuse = false;  // only the socket without a flag takes the listener's
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | blocked by time_wait 1");
  // A known blocker outweighs the unknown one.
  scenario.time_wait_reuse = std::nullopt;
  scenario.sockets = {Flagged(Socket(kTimeWait, "10.0.0.1"), 0), Socket(kTimeWait, "10.0.0.2")};
  EXPECT_EQ(scenario.Predict(), "blocked by time_wait 2 | blocked by time_wait 1");
}

TEST(BindPredictionTest, AnOrphanWithAFlagDecidesInItsOwnState) {
  Scenario scenario{.sockets = {Flagged(Socket(netlink::kFinWait2, "10.0.0.1"), 0)}};
  EXPECT_EQ(scenario.Predict(), "blocked by fin_wait2 1 | blocked by fin_wait2 1");
  scenario.sockets = {Flagged(Socket(netlink::kFinWait2, "10.0.0.1"), 1)};
  EXPECT_EQ(scenario.Predict(), "blocked by fin_wait2 1 | free");
  // One orphan whose record did not carry its flag keeps the answer unknown...
  scenario.sockets.push_back(Socket(netlink::kLastAck, "10.0.0.2"));
  EXPECT_EQ(scenario.Predict(), "blocked by fin_wait2 1, last_ack 1 | " + kNoProcess);
  // ... unless another orphan blocks.
  scenario.sockets.push_back(Flagged(Socket(netlink::kClosing, "10.0.0.3"), 0));
  EXPECT_EQ(scenario.Predict(),
            "blocked by closing 1, fin_wait2 1, last_ack 1 | blocked by closing 1");
}

TEST(BindPredictionTest, ATcpListenerWithTheFlagInItsRecordStillBlocks) {
  Scenario scenario{.sockets = {Flagged(Socket(kListen, "0.0.0.0", 1), 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
}

TEST(BindPredictionTest, ASocketWithAnFdIsDecidedByTheFlagInItsRecord) {
  Scenario scenario{.sockets = {Flagged(Socket(kEstablished, "10.0.0.1", 2), 1),
                                Flagged(Socket(kEstablished, "10.0.0.1", 3), 0)}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 2 | blocked by established 1");
  // What the kernel reported outweighs what an fd read gave.
  scenario.flags = {{2, false}, {3, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 2 | blocked by established 1");
}

TEST(BindPredictionTest, AUdpBoundSocketIsDecidedByTheFlagInItsRecord) {
  Scenario scenario{.service = Service("0.0.0.0", ServiceProtocol::kUdp),
                    .sockets = {Flagged(Socket(kUnconn, "0.0.0.0", 9), 1)}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | free");
  scenario.sockets = {Flagged(Socket(kUnconn, "0.0.0.0", 9), 0)};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | blocked by unconn 1");
}

// --- Unknown is said, never guessed ---

TEST(BindPredictionTest, AFlagThatCannotBeReadIsUnknown) {
  Scenario scenario{.sockets = {Socket(kEstablished, "10.0.0.1", 2)}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 1 | " + kCannotRead);
}

TEST(BindPredictionTest, SocketsNoProcessHoldsAreUnknown) {
  // An orphaned FIN_WAIT2 socket: the process closed it, so there is no fd to read a flag from.
  Scenario scenario{.sockets = {Socket(netlink::kFinWait2, "10.0.0.1")}};
  EXPECT_EQ(scenario.Predict(), "blocked by fin_wait2 1 | " + kNoProcess);
}

TEST(BindPredictionTest, TheFirstReasonIsGiven) {
  Scenario scenario{.sockets = {Socket(kTimeWait, "10.0.0.1"), Socket(kEstablished, "10.0.0.1", 2),
                                Socket(netlink::kFinWait2, "10.0.0.1")}};
  EXPECT_EQ(scenario.Predict(),
            "blocked by established 1, fin_wait2 1, time_wait 1 | " + kNeverSaw);
}

TEST(BindPredictionTest, AKnownBlockerOutweighsAnUnknown) {
  Scenario scenario{.sockets = {Socket(kListen, "0.0.0.0", 1), Socket(kTimeWait, "10.0.0.1"),
                                Socket(kEstablished, "10.0.0.1", 2)}};
  EXPECT_EQ(scenario.Predict(),
            "blocked by established 1, listen 1, time_wait 1 | blocked by listen 1");
}

TEST(BindPredictionTest, BeforeLinux610FreeTcpIsUnknown) {
  Scenario scenario{.bound_inactive_visible = false};
  EXPECT_EQ(scenario.Predict(), kOldKernel + " | " + kOldKernel);
  scenario.sockets = {Socket(kListen, "0.0.0.0", 1)};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 1 | blocked by listen 1");
  // UDP sockets that are bound but unconnected were always dumped.
  scenario.service = Service("0.0.0.0", ServiceProtocol::kUdp);
  scenario.sockets = {};
  EXPECT_EQ(scenario.Predict(), "free | free");
}

// --- UDP ---

TEST(BindPredictionTest, UdpBoundSocketBlocksAPlainBind) {
  Scenario scenario{.service = Service("0.0.0.0", ServiceProtocol::kUdp),
                    .sockets = {Socket(kUnconn, "0.0.0.0", 9)}};
  scenario.flags = {{9, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | free");
}

TEST(BindPredictionTest, UdpBoundSocketWithoutTheFlagBlocksAReusingBind) {
  Scenario scenario{.service = Service("0.0.0.0", ServiceProtocol::kUdp),
                    .sockets = {Socket(kUnconn, "0.0.0.0", 9)}};
  scenario.flags = {{9, false}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | blocked by unconn 1");
  scenario.flags = {};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 1 | " + kCannotRead);
}

TEST(BindPredictionTest, UdpConnectedSocketIsEstablishedAndCountsAsUnconnWhenReused) {
  Scenario scenario{.service = Service("0.0.0.0", ServiceProtocol::kUdp),
                    .sockets = {Socket(kEstablished, "10.0.0.1", 9)}};
  scenario.flags = {{9, false}};
  EXPECT_EQ(scenario.Predict(), "blocked by established 1 | blocked by unconn 1");
}

TEST(BindPredictionTest, UdpSocketsDoNotBlockATcpService) {
  Scenario scenario;
  scenario.sockets = {Socket(kUnconn, "0.0.0.0", 9)};
  PortObservation observed;
  ObserveSocket(scenario.service, Protocol::kUdp, scenario.sockets[0], observed);
  EXPECT_FALSE(observed.AnythingOverlaps());
  EXPECT_EQ(observed.sockets_by_state, StateCounts{});
}

// --- SO_REUSEPORT: the prediction is for a bind without it ---

TEST(BindPredictionTest, AReusePortGroupBlocksAsManyListeners) {
  // Two SO_REUSEPORT listeners (duplicates or a deliberate group): each is its own socket.
  Scenario scenario{.sockets = {Socket(kListen, "0.0.0.0", 1), Socket(kListen, "0.0.0.0", 2)}};
  scenario.flags = {{1, true}, {2, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by listen 2 | blocked by listen 2");
}

TEST(BindPredictionTest, AUdpReusePortGroupWithReuseAddrLetsAReusingBindIn) {
  Scenario scenario{.service = Service("0.0.0.0", ServiceProtocol::kUdp),
                    .sockets = {Socket(kUnconn, "0.0.0.0", 1), Socket(kUnconn, "0.0.0.0", 2)}};
  scenario.flags = {{1, true}, {2, true}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 2 | free");
  scenario.flags = {{1, true}, {2, false}};
  EXPECT_EQ(scenario.Predict(), "blocked by unconn 2 | blocked by unconn 1");
}

// --- The listener's own flag ---

TEST(CurrentListenerReuseTest, FalseAsSoonAsOneListenerLacksIt) {
  const ServiceConfig service = Service("0.0.0.0");
  const PortObservation observed =
      Observe(service, {Socket(kListen, "0.0.0.0", 1), Socket(kListen, "::", 2),
                        Socket(kEstablished, "10.0.0.1", 3)});
  EXPECT_EQ(CurrentListenerReuse(observed, {}), std::nullopt);
  EXPECT_EQ(CurrentListenerReuse(observed, {{3, true}}), std::nullopt);  // not a listener
  EXPECT_EQ(CurrentListenerReuse(observed, {{1, true}}), true);
  EXPECT_EQ(CurrentListenerReuse(observed, {{1, true}, {2, true}}), true);
  EXPECT_EQ(CurrentListenerReuse(observed, {{1, true}, {2, false}}), false);
}

TEST(CurrentListenerReuseTest, ReadsTheFlagsTheRecordsCarried) {
  const ServiceConfig service = Service("0.0.0.0");
  PortObservation observed = Observe(service, {Flagged(Socket(kListen, "0.0.0.0", 1), 1)});
  EXPECT_EQ(CurrentListenerReuse(observed, observed.reuse_by_inode), true);
  observed = Observe(
      service, {Flagged(Socket(kListen, "0.0.0.0", 1), 1), Flagged(Socket(kListen, "::", 2), 0)});
  EXPECT_EQ(CurrentListenerReuse(observed, observed.reuse_by_inode), false);
}

TEST(VerdictNameTest, Names) {
  EXPECT_STREQ(VerdictName(Verdict::kFree), "free");
  EXPECT_STREQ(VerdictName(Verdict::kBlocked), "blocked");
  EXPECT_STREQ(VerdictName(Verdict::kUnknown), "unknown");
}

}  // namespace
}  // namespace portwatch
