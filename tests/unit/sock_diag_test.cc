#include "collectors/netlink/sock_diag.h"

#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/netlink/transport.h"
#include "tests/unit/netlink_builder.h"

namespace portwatch::netlink {
namespace {

using unit::DatagramBuilder;
using unit::DiagSocket;
using unit::MakeExchange;

constexpr uint32_t kSequence = 1000;
constexpr uint32_t kPortId = 4242;
const DumpRequest kTcp4 = unit::Request(Protocol::kTcp, Family::kIpv4, kAllStates);

using Address = std::array<uint8_t, 16>;

struct DumpRun {
  DumpResult result;
  std::vector<SocketRecord> records;
};

DumpRun RunDump(std::vector<Exchange> exchanges, const DumpRequest& request = kTcp4) {
  ReplayTransport transport(std::move(exchanges));
  DumpRun run;
  run.result = Dump(transport, request,
                    [&run](const SocketRecord& record) { run.records.push_back(record); });
  return run;
}

DumpRun RunDump(std::vector<std::vector<std::byte>> datagrams, int receive_errno = 0) {
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(kTcp4, kSequence, kPortId, std::move(datagrams), receive_errno));
  return RunDump(std::move(exchanges));
}

DatagramBuilder Datagram() { return DatagramBuilder(kSequence, kPortId); }

DiagSocket Established(uint16_t local_port, uint16_t remote_port) {
  DiagSocket socket;
  socket.state = kEstablished;
  socket.local_port = local_port;
  socket.remote_port = remote_port;
  return socket;
}

TEST(StateNameTest, UsesSsNames) {
  EXPECT_EQ(StateName(kTimeWait), "time_wait");
  EXPECT_EQ(StateName(kClose), "unconn");
  EXPECT_EQ(StateName(kNewSynRecv), "syn_recv");
}

TEST(StateNameTest, NamesEveryState) {
  EXPECT_EQ(StateName(0), "unknown");
  EXPECT_EQ(StateName(kEstablished), "established");
  EXPECT_EQ(StateName(kSynSent), "syn_sent");
  EXPECT_EQ(StateName(kSynRecv), "syn_recv");
  EXPECT_EQ(StateName(kFinWait1), "fin_wait1");
  EXPECT_EQ(StateName(kFinWait2), "fin_wait2");
  EXPECT_EQ(StateName(kClose), "unconn");  // bound-inactive (Linux 6.10+)
  EXPECT_EQ(StateName(kCloseWait), "close_wait");
  EXPECT_EQ(StateName(kLastAck), "last_ack");
  EXPECT_EQ(StateName(kListen), "listen");
  EXPECT_EQ(StateName(kClosing), "closing");
  EXPECT_EQ(StateName(13), "unknown");
}

TEST(StateNameTest, ProtocolAndFamilyNames) {
  EXPECT_EQ(ProtocolName(Protocol::kTcp), "tcp");
  EXPECT_EQ(ProtocolName(Protocol::kUdp), "udp");
  EXPECT_EQ(FamilyName(Family::kIpv4), "ipv4");
  EXPECT_EQ(FamilyName(Family::kIpv6), "ipv6");
  EXPECT_EQ(StateBit(kListen), 0x400U);
  EXPECT_EQ(StateBit(kBoundInactive), 0x2000U);
  EXPECT_EQ(kAllStates, 0x1ffeU);  // states 1..12, what `ss -a` lists
  EXPECT_EQ(kBoundInactiveStates, 0x2000U);
}

TEST(BuildDumpRequestTest, EncodesHeaderAndInetDiagRequest) {
  const std::vector<std::byte> bytes =
      BuildDumpRequest(unit::Request(Protocol::kUdp, Family::kIpv6, StateBit(kClose)), 77);
  ASSERT_EQ(bytes.size(), 72U);  // nlmsghdr (16) + inet_diag_req_v2 (56)
  nlmsghdr header{};
  std::memcpy(&header, bytes.data(), sizeof(header));
  EXPECT_EQ(header.nlmsg_len, 72U);
  EXPECT_EQ(header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  EXPECT_EQ(header.nlmsg_type, 20);
  EXPECT_EQ(header.nlmsg_flags, NLM_F_REQUEST | NLM_F_DUMP);
  EXPECT_EQ(header.nlmsg_flags, 0x301);
  EXPECT_EQ(header.nlmsg_seq, 77U);
  EXPECT_EQ(header.nlmsg_pid, 0U);
  inet_diag_req_v2 body{};
  std::memcpy(&body, bytes.data() + sizeof(header), sizeof(body));
  EXPECT_EQ(body.sdiag_family, AF_INET6);
  EXPECT_EQ(body.sdiag_protocol, IPPROTO_UDP);
  EXPECT_EQ(body.idiag_ext, 0);
  EXPECT_EQ(body.pad, 0);
  EXPECT_EQ(body.idiag_states, 1U << 7);
  // No socket id filter: every byte of the id is zero.
  const std::vector<std::byte> zero_id(sizeof(body.id));
  EXPECT_EQ(std::memcmp(&body.id, zero_id.data(), zero_id.size()), 0);
}

TEST(BuildDumpRequestTest, TcpIpv4AllStates) {
  const std::vector<std::byte> bytes =
      BuildDumpRequest(unit::Request(Protocol::kTcp, Family::kIpv4, kAllStates), 0xfffffffe);
  ASSERT_EQ(bytes.size(), 72U);
  nlmsghdr header{};
  std::memcpy(&header, bytes.data(), sizeof(header));
  EXPECT_EQ(header.nlmsg_seq, 0xfffffffeU);
  inet_diag_req_v2 body{};
  std::memcpy(&body, bytes.data() + sizeof(header), sizeof(body));
  EXPECT_EQ(body.sdiag_family, AF_INET);
  EXPECT_EQ(body.sdiag_protocol, IPPROTO_TCP);
  EXPECT_EQ(body.idiag_states, 0x1ffeU);
}

TEST(BuildDumpRequestTest, BothFamiliesIsTheOlderTcpRequestWithItsPortFilter) {
  DumpRequest request = unit::Request(Protocol::kTcp, Family::kIpv6, kAllStates, {8080});
  request.both_families = true;
  const std::vector<std::byte> bytes = BuildDumpRequest(request, 5);
  // nlmsghdr (16) + inet_diag_req (60) + the bytecode attribute: rtattr (4) + 2 ops (8).
  ASSERT_EQ(bytes.size(), 88U);
  nlmsghdr header{};
  std::memcpy(&header, bytes.data(), sizeof(header));
  EXPECT_EQ(header.nlmsg_len, 88U);
  EXPECT_EQ(header.nlmsg_type, TCPDIAG_GETSOCK);
  EXPECT_EQ(header.nlmsg_type, 18);
  EXPECT_EQ(header.nlmsg_flags, 0x301);
  EXPECT_EQ(header.nlmsg_seq, 5U);
  inet_diag_req body{};
  std::memcpy(&body, bytes.data() + sizeof(header), sizeof(body));
  EXPECT_EQ(body.idiag_family, AF_UNSPEC);  // ignored: the kernel takes it as AF_UNSPEC
  EXPECT_EQ(body.idiag_states, 0x1ffeU);
  EXPECT_EQ(body.idiag_ext, 0);
  EXPECT_EQ(body.idiag_dbs, 0U);
  rtattr attribute{};
  std::memcpy(&attribute, bytes.data() + 76, sizeof(attribute));
  EXPECT_EQ(attribute.rta_type, INET_DIAG_REQ_BYTECODE);
  EXPECT_EQ(attribute.rta_len, 12);
  inet_diag_bc_op port{};
  std::memcpy(&port, bytes.data() + 84, sizeof(port));
  EXPECT_EQ(port.no, 8080);
  // UDP has no such request: the flag is ignored.
  DumpRequest udp = unit::Request(Protocol::kUdp, Family::kIpv6, kAllStates);
  udp.both_families = true;
  nlmsghdr udp_header{};
  std::memcpy(&udp_header, BuildDumpRequest(udp, 6).data(), sizeof(udp_header));
  EXPECT_EQ(udp_header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
}

TEST(DumpTest, BothFamiliesReadsTheOlderRequestsRepliesOfEitherFamily) {
  DumpRequest request = unit::Request(Protocol::kTcp, Family::kIpv4, kAllStates);
  request.both_families = true;
  DiagSocket ipv4 = Established(40001, 443);
  DiagSocket ipv6 = Established(40002, 443);
  ipv6.family = AF_INET6;
  ipv6.local_address = "::1";
  ipv6.remote_address = "::1";
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(
      request, kSequence, kPortId,
      {Datagram().OlderReplySocket(ipv4).OlderReplySocket(ipv6).Socket(ipv4).Done().Build()}));
  const DumpRun run = RunDump(std::move(exchanges), request);
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  ASSERT_EQ(run.records.size(), 2U);  // the SOCK_DIAG_BY_FAMILY message answers no such request
  EXPECT_EQ(run.records[0].family, AF_INET);
  EXPECT_EQ(FamilyOf(run.records[0]), Family::kIpv4);
  EXPECT_EQ(run.records[1].family, AF_INET6);
  EXPECT_EQ(FamilyOf(run.records[1]), Family::kIpv6);
  EXPECT_EQ(run.records[1].local_port, 40002);
  DumpResult failed;
  failed.error = "kernel error: Invalid argument";
  EXPECT_EQ(failed.TableError(request), "tcp/ipv4+ipv6: kernel error: Invalid argument");
}

TEST(DumpTest, DecodesEverySocketOfANormalDump) {
  DiagSocket listener;
  listener.state = kListen;
  listener.local_port = 5000;
  listener.remote_port = 0;
  listener.local_address = "127.0.0.1";
  listener.remote_address = "0.0.0.0";
  listener.inode = 31337;
  listener.uid = 0;

  DiagSocket client;
  client.state = kEstablished;
  client.timer = 2;            // keepalive
  client.local_port = 0xabcd;  // 43981: byte order shows
  client.remote_port = 443;
  client.local_address = "10.1.2.3";
  client.remote_address = "192.0.2.250";
  client.expires_ms = 7199000;
  client.uid = 1000;
  client.inode = 0xdeadbeef;

  DiagSocket time_wait;
  time_wait.state = kTimeWait;
  time_wait.timer = 3;
  time_wait.local_port = 40001;
  time_wait.remote_port = 5000;
  time_wait.local_address = "127.0.0.1";
  time_wait.remote_address = "127.0.0.2";
  time_wait.expires_ms = 59876;
  time_wait.uid = 0;
  time_wait.inode = 0;  // TIME_WAIT sockets have no inode

  DumpRun run = RunDump({Datagram().Socket(listener).Socket(client).Build(),
                         Datagram().Socket(time_wait).Done().Build()});

  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.error, "");
  EXPECT_EQ(run.result.sockets, 3U);
  EXPECT_EQ(run.result.stray_messages, 0U);
  ASSERT_EQ(run.records.size(), 3U);

  const SocketRecord& first = run.records[0];
  EXPECT_EQ(first.family, AF_INET);
  EXPECT_EQ(first.state, 10);
  EXPECT_EQ(first.timer, 0);
  EXPECT_EQ(first.local_port, 5000);
  EXPECT_EQ(first.remote_port, 0);
  EXPECT_EQ(first.local_address, (Address{127, 0, 0, 1}));
  EXPECT_EQ(first.remote_address, (Address{}));
  EXPECT_EQ(first.timer_expires_ms, 0U);
  EXPECT_EQ(first.uid, 0U);
  EXPECT_EQ(first.inode, 31337U);

  const SocketRecord& second = run.records[1];
  EXPECT_EQ(second.family, AF_INET);
  EXPECT_EQ(second.state, 1);
  EXPECT_EQ(second.timer, 2);
  EXPECT_EQ(second.local_port, 43981);
  EXPECT_EQ(second.remote_port, 443);
  EXPECT_EQ(second.local_address, (Address{10, 1, 2, 3}));
  EXPECT_EQ(second.remote_address, (Address{192, 0, 2, 250}));
  EXPECT_EQ(second.timer_expires_ms, 7199000U);
  EXPECT_EQ(second.uid, 1000U);
  EXPECT_EQ(second.inode, 3735928559U);

  const SocketRecord& third = run.records[2];
  EXPECT_EQ(third.family, AF_INET);
  EXPECT_EQ(third.state, 6);
  EXPECT_EQ(third.timer, 3);
  EXPECT_EQ(third.local_port, 40001);
  EXPECT_EQ(third.remote_port, 5000);
  EXPECT_EQ(third.local_address, (Address{127, 0, 0, 1}));
  EXPECT_EQ(third.remote_address, (Address{127, 0, 0, 2}));
  EXPECT_EQ(third.timer_expires_ms, 59876U);
  EXPECT_EQ(third.uid, 0U);
  EXPECT_EQ(third.inode, 0U);
}

TEST(DumpTest, DecodesIpv6Addresses) {
  DiagSocket socket;
  socket.family = AF_INET6;
  socket.state = kEstablished;
  socket.local_port = 5001;
  socket.remote_port = 40776;
  socket.local_address = "2001:db8::1";
  socket.remote_address = "::ffff:192.0.2.1";
  socket.inode = 7;
  std::vector<Exchange> exchanges;
  const DumpRequest tcp6 = unit::Request(Protocol::kTcp, Family::kIpv6, kAllStates);
  exchanges.push_back(
      MakeExchange(tcp6, kSequence, kPortId, {Datagram().Socket(socket).Done().Build()}));
  DumpRun run = RunDump(std::move(exchanges), tcp6);
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  ASSERT_EQ(run.records.size(), 1U);
  EXPECT_EQ(run.records[0].family, AF_INET6);
  EXPECT_EQ(run.records[0].local_port, 5001);
  EXPECT_EQ(run.records[0].remote_port, 40776);
  EXPECT_EQ(run.records[0].local_address,
            (Address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}));
  EXPECT_EQ(run.records[0].remote_address,
            (Address{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1}));
  EXPECT_EQ(run.records[0].inode, 7U);
}

TEST(DumpTest, EmptyTableIsComplete) {
  DumpRun run = RunDump({Datagram().Done().Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.error, "");
  EXPECT_EQ(run.result.sockets, 0U);
  EXPECT_TRUE(run.records.empty());
}

TEST(DumpTest, DoneWithoutErrorPayloadIsComplete) {
  // Kernels before 4.x send NLMSG_DONE with no payload at all.
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 40000)).Build(),
                         Datagram().Message(NLMSG_DONE, NLM_F_MULTI, {}).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.sockets, 1U);
}

TEST(DumpTest, SkipsAndCountsMessagesForAnotherRequest) {
  std::vector<std::byte> datagram = Datagram()
                                        .Addressed(kSequence + 1, kPortId)
                                        .Socket(Established(1111, 1))
                                        .Addressed(kSequence, kPortId + 1)
                                        .Socket(Established(2222, 2))
                                        .Addressed(kSequence - 1, kPortId)
                                        .Error(EPERM)
                                        .Addressed(kSequence, kPortId)
                                        .Socket(Established(3333, 3))
                                        .Addressed(kSequence + 7, kPortId)
                                        .Done()
                                        .Build();
  DumpRun run = RunDump({datagram, Datagram().Done().Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.error, "");
  EXPECT_EQ(run.result.sockets, 1U);
  EXPECT_EQ(run.result.stray_messages, 4U);
  ASSERT_EQ(run.records.size(), 1U);
  EXPECT_EQ(run.records[0].local_port, 3333);
}

// A failed dump still says how many replies to another request it skipped before failing: they
// are the clue that two dumps shared a socket.
TEST(DumpTest, FailureKeepsTheStrayMessagesCount) {
  const std::vector<std::byte> stray = Datagram()
                                           .Addressed(kSequence + 1, kPortId)
                                           .Socket(Established(1111, 1))
                                           .Addressed(kSequence, kPortId)
                                           .Socket(Established(3333, 3))
                                           .Build();
  DumpRun received = RunDump({stray}, ENOBUFS);
  EXPECT_EQ(received.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(received.result.error, "netlink receive: No buffer space available");
  EXPECT_EQ(received.result.sockets, 1U);
  EXPECT_EQ(received.result.stray_messages, 1U);

  DumpRun kernel = RunDump({stray, Datagram().Error(EPERM).Build()});
  EXPECT_EQ(kernel.result.error, "kernel error: Operation not permitted");
  EXPECT_EQ(kernel.result.stray_messages, 1U);

  DumpRun done = RunDump({stray, Datagram().Done(-EINVAL).Build()});
  EXPECT_EQ(done.result.error, "dump ended with error: Invalid argument");
  EXPECT_EQ(done.result.stray_messages, 1U);

  DumpRun truncated = RunDump({stray, Datagram().Raw(std::vector<std::byte>(7)).Build()});
  EXPECT_EQ(truncated.result.error, "truncated netlink message header");
  EXPECT_EQ(truncated.result.stray_messages, 1U);
}

TEST(DumpTest, TableErrorNamesTheTable) {
  EXPECT_EQ(TableName(Protocol::kUdp, Family::kIpv6), "udp/ipv6");
  DumpRun run = RunDump({Datagram().Error(EPERM).Build()});
  EXPECT_EQ(run.result.TableError(kTcp4), "tcp/ipv4: kernel error: Operation not permitted");
}

TEST(DumpTest, SkipsUnknownMessageTypes) {
  DumpRun run = RunDump({Datagram()
                             .Message(NLMSG_NOOP, 0, {})
                             .Socket(Established(5000, 40000))
                             .Message(0x42, NLM_F_MULTI, std::vector<std::byte>(12))
                             .Done()
                             .Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.sockets, 1U);
  EXPECT_EQ(run.result.stray_messages, 0U);
}

TEST(DumpTest, EnoentErrorMeansUnsupported) {
  DumpRun run = RunDump({Datagram().Error(ENOENT).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kUnsupported);
  EXPECT_EQ(run.result.error, "No such file or directory");
  EXPECT_EQ(run.result.sockets, 0U);
  EXPECT_TRUE(run.records.empty());
}

TEST(DumpTest, OtherUnsupportedErrnos) {
  for (int error : {EOPNOTSUPP, EPROTONOSUPPORT, EAFNOSUPPORT}) {
    DumpRun run = RunDump({Datagram().Error(error).Build()});
    EXPECT_EQ(run.result.outcome, DumpOutcome::kUnsupported) << error;
    EXPECT_EQ(run.result.error, std::strerror(error));
  }
}

TEST(DumpTest, EpermErrorFails) {
  DumpRun run = RunDump({Datagram().Error(EPERM).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "kernel error: Operation not permitted");
  EXPECT_EQ(run.result.sockets, 0U);
}

TEST(DumpTest, ErrorAfterSocketsKeepsTheirCount) {
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 1)).Build(),
                         Datagram().Socket(Established(5000, 2)).Error(ENOMEM).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "kernel error: Cannot allocate memory");
  EXPECT_EQ(run.result.sockets, 2U);
  EXPECT_EQ(run.records.size(), 2U);
}

TEST(DumpTest, ErrorShorterThanNlmsgerrFails) {
  // Only the int error, without the echoed request header nlmsgerr carries.
  DumpRun run = RunDump({Datagram().Message(NLMSG_ERROR, 0, unit::Bytes(-EPERM)).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "truncated NLMSG_ERROR");
}

TEST(DumpTest, DumpIntrMeansInterrupted) {
  DumpRun run = RunDump({Datagram()
                             .Socket(Established(5000, 1))
                             .Socket(Established(5000, 2), NLM_F_MULTI | NLM_F_DUMP_INTR)
                             .Build(),
                         Datagram().Socket(Established(5000, 3)).Done().Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kInterrupted);
  EXPECT_EQ(run.result.error, "dump interrupted (NLM_F_DUMP_INTR): the socket table changed");
  EXPECT_EQ(run.result.sockets, 3U);
  EXPECT_EQ(run.records.size(), 3U);
}

TEST(DumpTest, DumpIntrOnDoneAloneMeansInterrupted) {
  DumpRun run = RunDump({Datagram().Done(0, NLM_F_MULTI | NLM_F_DUMP_INTR).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kInterrupted);
}

TEST(DumpTest, DumpIntrOnAStrayMessageIsIgnored) {
  DumpRun run = RunDump({Datagram()
                             .Addressed(kSequence + 1, kPortId)
                             .Socket(Established(1, 1), NLM_F_MULTI | NLM_F_DUMP_INTR)
                             .Addressed(kSequence, kPortId)
                             .Done()
                             .Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.stray_messages, 1U);
}

TEST(DumpTest, TruncatedInetDiagMsgFails) {
  std::vector<std::byte> short_body = unit::Bytes(unit::ToMessage(Established(5000, 1)));
  short_body.resize(sizeof(inet_diag_msg) - 4);
  DumpRun run = RunDump({Datagram()
                             .Socket(Established(5000, 2))
                             .Message(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, short_body)
                             .Done()
                             .Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "truncated inet_diag_msg");
  EXPECT_EQ(run.result.sockets, 1U);
  ASSERT_EQ(run.records.size(), 1U);
  EXPECT_EQ(run.records[0].remote_port, 2);
}

TEST(DumpTest, CutLastHeaderFails) {
  // A whole socket, then the first 8 of a header's 16 bytes.
  std::vector<std::byte> partial_header = unit::Bytes(nlmsghdr{});
  partial_header.resize(8);
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 1)).Raw(partial_header).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "truncated netlink message header");
  EXPECT_EQ(run.result.sockets, 1U);
}

TEST(DumpTest, HeaderLongerThanTheDatagramFails) {
  std::vector<std::byte> datagram = Datagram()
                                        .Message(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI,
                                                 unit::Bytes(unit::ToMessage(Established(5000, 1))),
                                                 NLMSG_LENGTH(sizeof(inet_diag_msg)) + 64)
                                        .Build();
  DumpRun run = RunDump({datagram});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "truncated netlink message header");
  EXPECT_EQ(run.result.sockets, 0U);
  EXPECT_TRUE(run.records.empty());
}

TEST(DumpTest, HeaderShorterThanItselfFails) {
  // nlmsg_len 0 would loop forever if it were trusted.
  DumpRun run = RunDump({Datagram().Message(SOCK_DIAG_BY_FAMILY, NLM_F_MULTI, {}, 0).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "truncated netlink message header");
}

TEST(DumpTest, TruncatedDatagramFails) {
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(kTcp4, kSequence, kPortId,
                                   {Datagram().Socket(Established(5000, 1)).Build(),
                                    Datagram().Socket(Established(5000, 2)).Done().Build()}));
  exchanges[0].truncated[1] = true;
  DumpRun run = RunDump(std::move(exchanges));
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink datagram truncated");
  EXPECT_EQ(run.result.sockets, 1U);
  EXPECT_EQ(run.records.size(), 1U);  // nothing of the truncated datagram is used
}

TEST(DumpTest, DatagramLargerThanTheReceiveBufferIsTruncated) {
  DatagramBuilder builder = Datagram();
  // 64 KiB is Dump's buffer; the kernel never sends more than 32 KiB at once.
  while (builder.Build().size() <= 64 * 1024) {
    builder.Socket(Established(5000, 1));
  }
  DumpRun run = RunDump({builder.Done().Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink datagram truncated");
  EXPECT_EQ(run.result.sockets, 0U);
}

TEST(DumpTest, ReceiveErrorFails) {
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 1)).Build()}, ENOBUFS);
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink receive: No buffer space available");
  EXPECT_EQ(run.result.sockets, 1U);
}

TEST(DumpTest, DumpWithoutDoneFailsWhenTheSourceRunsDry) {
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 1)).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink receive: Resource temporarily unavailable");
  EXPECT_EQ(run.result.sockets, 1U);
}

TEST(DumpTest, DoneCarryingAnErrorFails) {
  DumpRun run = RunDump({Datagram().Socket(Established(5000, 1)).Done(-EINVAL).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "dump ended with error: Invalid argument");
  EXPECT_EQ(run.result.sockets, 1U);
}

TEST(DumpTest, DoneCarryingEnoentIsUnsupported) {
  DumpRun run = RunDump({Datagram().Done(-ENOENT).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kUnsupported);
  EXPECT_EQ(run.result.error, "No such file or directory");
}

TEST(DumpTest, ErrorCodeIntMinFailsWithoutOverflow) {
  // Found by tests/fuzz (regressions/sock_diag/done_error_int_min): negating the error code
  // INT_MIN overflowed (UBSan stopped the sanitizer build). No errno is that large.
  const int int_min = std::numeric_limits<int>::min();
  DumpRun run = RunDump({Datagram().Done(int_min).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "dump ended with error: Unknown error 2147483647");
  nlmsgerr error{};
  error.error = int_min;
  run = RunDump({Datagram().Message(NLMSG_ERROR, 0, unit::Bytes(error)).Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "kernel error: Unknown error 2147483647");
}

TEST(DumpTest, ReplayRejectsADifferentRequest) {
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(kTcp4, kSequence, kPortId, {Datagram().Done().Build()}));
  ReplayTransport transport(std::move(exchanges));
  int visited = 0;
  DumpResult result = Dump(transport, unit::Request(Protocol::kUdp, Family::kIpv4, kAllStates),
                           [&visited](const SocketRecord&) { visited++; });
  EXPECT_EQ(result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(result.error, "netlink send: Protocol error");
  EXPECT_EQ(result.sockets, 0U);
  EXPECT_EQ(visited, 0);
  EXPECT_EQ(transport.RequestsServed(), 0U);
}

TEST(DumpTest, ReplayRejectsDifferentStates) {
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(kTcp4, kSequence, kPortId, {Datagram().Done().Build()}));
  DumpRun run = RunDump(std::move(exchanges), unit::Request(Protocol::kTcp, Family::kIpv4,
                                                            kAllStates & ~StateBit(kListen)));
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink send: Protocol error");
}

TEST(DumpTest, ExhaustedReplayFails) {
  DumpRun run = RunDump(std::vector<Exchange>{});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(run.result.error, "netlink send: No data available");
}

TEST(DumpTest, ConsecutiveDumpsFollowTheRecordedSequences) {
  const DumpRequest tcp6 = unit::Request(Protocol::kTcp, Family::kIpv6, kAllStates);
  std::vector<Exchange> exchanges;
  exchanges.push_back(MakeExchange(
      kTcp4, 7, 100, {DatagramBuilder(7, 100).Socket(Established(1, 2)).Done().Build()}));
  exchanges.push_back(MakeExchange(tcp6, 8, 100, {DatagramBuilder(8, 100).Done().Build()}));
  ReplayTransport transport(std::move(exchanges));
  int visited = 0;
  auto count = [&visited](const SocketRecord&) { visited++; };
  EXPECT_EQ(transport.NextSequence(), 7U);
  EXPECT_EQ(Dump(transport, kTcp4, count).outcome, DumpOutcome::kComplete);
  EXPECT_EQ(transport.PortId(), 100U);
  EXPECT_EQ(transport.NextSequence(), 8U);
  EXPECT_EQ(Dump(transport, tcp6, count).outcome, DumpOutcome::kComplete);
  EXPECT_EQ(transport.RequestsServed(), 2U);
  EXPECT_EQ(transport.NextSequence(), 0U);
  EXPECT_EQ(visited, 1);
}

// --- IPV6_V6ONLY attribute ---------------------------------------------------------------------

DiagSocket Ipv6Listener(uint16_t port) {
  DiagSocket socket;
  socket.family = AF_INET6;
  socket.state = kListen;
  socket.local_port = port;
  socket.local_address = "::";
  socket.remote_address = "::";
  return socket;
}

unit::Attribute U8Attribute(uint16_t type, uint8_t value) {
  return unit::Attribute{type, {std::byte{value}}, std::nullopt};
}

int V6onlyOf(const std::vector<unit::Attribute>& attributes) {
  DumpRun run = RunDump({Datagram().Socket(Ipv6Listener(443), attributes).Done().Build()});
  EXPECT_EQ(run.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(run.result.sockets, 1U);
  if (run.records.size() != 1) {
    ADD_FAILURE() << "expected one socket, got " << run.records.size();
    return -2;
  }
  EXPECT_EQ(run.records[0].local_port, 443);  // the attributes do not disturb the message
  return run.records[0].v6only;
}

TEST(DumpTest, DecodesTheV6onlyAttribute) {
  EXPECT_EQ(V6onlyOf({U8Attribute(INET_DIAG_SKV6ONLY, 1)}), 1);
  EXPECT_EQ(V6onlyOf({U8Attribute(INET_DIAG_SKV6ONLY, 0)}), 0);
  EXPECT_EQ(V6onlyOf({U8Attribute(INET_DIAG_SKV6ONLY, 7)}), 1);
  // Among the attributes the kernel sends anyway, in its order.
  EXPECT_EQ(
      V6onlyOf({U8Attribute(INET_DIAG_SHUTDOWN, 0),
                unit::Attribute{INET_DIAG_MARK, unit::Bytes(uint32_t{7}), std::nullopt},
                U8Attribute(INET_DIAG_SKV6ONLY, 1),
                unit::Attribute{INET_DIAG_CGROUP_ID, unit::Bytes(uint64_t{1}), std::nullopt}}),
      1);
}

TEST(DumpTest, V6onlyIsUnknownWithoutTheAttribute) {
  EXPECT_EQ(V6onlyOf({}), -1);
  EXPECT_EQ(V6onlyOf({U8Attribute(INET_DIAG_SHUTDOWN, 1)}), -1);
  // An empty payload says nothing.
  EXPECT_EQ(V6onlyOf({unit::Attribute{INET_DIAG_SKV6ONLY, {}, std::nullopt}}), -1);
  EXPECT_EQ(SocketRecord{}.v6only, -1);
}

TEST(DumpTest, MalformedAttributesAreIgnored) {
  // rta_len beyond the message: neither it nor anything after it is read.
  EXPECT_EQ(V6onlyOf({unit::Attribute{INET_DIAG_SHUTDOWN, {std::byte{0}}, uint16_t{200}},
                      U8Attribute(INET_DIAG_SKV6ONLY, 1)}),
            -1);
  // rta_len shorter than the attribute header.
  EXPECT_EQ(V6onlyOf({unit::Attribute{INET_DIAG_SKV6ONLY, {std::byte{1}}, uint16_t{2}}}), -1);
}

// --- Local port filter bytecode ----------------------------------------------------------------

std::vector<inet_diag_bc_op> BytecodeOf(const std::vector<std::byte>& request) {
  constexpr size_t kHeaderBytes = sizeof(nlmsghdr) + sizeof(inet_diag_req_v2);
  std::vector<inet_diag_bc_op> ops;
  if (request.size() <= kHeaderBytes) {
    return ops;
  }
  rtattr attribute{};
  std::memcpy(&attribute, request.data() + kHeaderBytes, sizeof(attribute));
  EXPECT_EQ(attribute.rta_type, INET_DIAG_REQ_BYTECODE);
  EXPECT_EQ(kHeaderBytes + RTA_ALIGN(attribute.rta_len), request.size());
  ops.resize((attribute.rta_len - RTA_LENGTH(0)) / sizeof(inet_diag_bc_op));
  std::memcpy(ops.data(), request.data() + kHeaderBytes + RTA_LENGTH(0),
              ops.size() * sizeof(inet_diag_bc_op));
  return ops;
}

/// The kernel's inet_diag_bc_audit() for the ops portwatch emits: 0 or -EINVAL.
int AuditBytecode(const std::vector<inet_diag_bc_op>& ops) {
  const int total = static_cast<int>(ops.size() * sizeof(inet_diag_bc_op));
  int len = total;
  while (len > 0) {
    const inet_diag_bc_op& op = ops[(total - len) / sizeof(inet_diag_bc_op)];
    int min_len = sizeof(inet_diag_bc_op);
    if (op.code == INET_DIAG_BC_S_EQ) {
      if (len < 2 * static_cast<int>(sizeof(inet_diag_bc_op))) {
        return -EINVAL;
      }
      min_len += sizeof(inet_diag_bc_op);
    } else if (op.code != INET_DIAG_BC_JMP) {
      return -EINVAL;
    }
    if (op.no < min_len || op.no > len + 4 || (op.no & 3) != 0) {
      return -EINVAL;
    }
    if (op.yes < min_len || op.yes > len + 4 || (op.yes & 3) != 0) {
      return -EINVAL;
    }
    len -= op.yes;
  }
  return len == 0 ? 0 : -EINVAL;
}

/// The kernel's inet_diag_bc_run() on a socket with local port `port`.
bool RunBytecode(const std::vector<inet_diag_bc_op>& ops, uint16_t port) {
  const int total = static_cast<int>(ops.size() * sizeof(inet_diag_bc_op));
  int len = total;
  while (len > 0) {
    const size_t index = (total - len) / sizeof(inet_diag_bc_op);
    const inet_diag_bc_op& op = ops[index];
    bool yes = true;
    if (op.code == INET_DIAG_BC_JMP) {
      yes = false;
    } else if (op.code == INET_DIAG_BC_S_EQ) {
      yes = port == ops[index + 1].no;
    }
    len -= yes ? op.yes : op.no;
  }
  return len == 0;
}

TEST(BuildDumpRequestTest, NoPortFilterMeansNoBytecode) {
  const std::vector<std::byte> bytes = BuildDumpRequest(kTcp4, 1);
  EXPECT_EQ(bytes.size(), 72U);
  EXPECT_TRUE(BytecodeOf(bytes).empty());
}

TEST(BuildDumpRequestTest, PortFilterBytecodeMatchesSs) {
  const DumpRequest request =
      unit::Request(Protocol::kTcp, Family::kIpv4, StateBit(kListen), {80, 443, 8080});
  const std::vector<std::byte> bytes = BuildDumpRequest(request, 5);
  ASSERT_EQ(bytes.size(), 72U + 4 + 8 * 4);
  nlmsghdr header{};
  std::memcpy(&header, bytes.data(), sizeof(header));
  EXPECT_EQ(header.nlmsg_len, 108U);
  EXPECT_EQ(header.nlmsg_type, SOCK_DIAG_BY_FAMILY);
  inet_diag_req_v2 body{};
  std::memcpy(&body, bytes.data() + sizeof(header), sizeof(body));
  EXPECT_EQ(body.idiag_states, 1U << 10);
  rtattr attribute{};
  std::memcpy(&attribute, bytes.data() + 72, sizeof(attribute));
  EXPECT_EQ(attribute.rta_len, 36);
  EXPECT_EQ(attribute.rta_type, 1);  // INET_DIAG_REQ_BYTECODE

  const std::vector<inet_diag_bc_op> ops = BytecodeOf(bytes);
  ASSERT_EQ(ops.size(), 8U);
  auto expect_op = [&ops](size_t i, uint8_t code, uint8_t yes, uint16_t no) {
    EXPECT_EQ(ops[i].code, code) << "op " << i;
    EXPECT_EQ(ops[i].yes, yes) << "op " << i;
    EXPECT_EQ(ops[i].no, no) << "op " << i;
  };
  expect_op(0, 11, 8, 12);  // INET_DIAG_BC_S_EQ: hit -> the JMP, miss -> next test
  expect_op(1, 0, 0, 80);
  expect_op(2, 1, 4, 24);  // INET_DIAG_BC_JMP past the two remaining tests: accept
  expect_op(3, 11, 8, 12);
  expect_op(4, 0, 0, 443);
  expect_op(5, 1, 4, 12);
  expect_op(6, 11, 8, 12);  // last test: hit ends exactly at the end, miss jumps past it
  expect_op(7, 0, 0, 8080);
}

TEST(BuildDumpRequestTest, PortFilterPassesTheKernelAuditAndSelectsExactlyItsPorts) {
  for (const std::vector<uint16_t>& ports : std::vector<std::vector<uint16_t>>{
           {22}, {0, 65535}, {5000, 5001, 5002, 40500}, {443, 443}}) {
    const DumpRequest request = unit::Request(Protocol::kTcp, Family::kIpv6, kAllStates, ports);
    const std::vector<inet_diag_bc_op> ops = BytecodeOf(BuildDumpRequest(request, 9));
    ASSERT_FALSE(ops.empty());
    EXPECT_EQ(AuditBytecode(ops), 0) << ::testing::PrintToString(ports);
    for (uint32_t port = 0; port <= 65535; ++port) {
      const bool wanted = std::find(ports.begin(), ports.end(), port) != ports.end();
      ASSERT_EQ(RunBytecode(ops, static_cast<uint16_t>(port)), wanted)
          << "port " << port << " with filter " << ::testing::PrintToString(ports);
    }
  }
}

/// A TCP listener on 127.0.0.1 and a kernel-chosen port; closes itself.
class Listener {
 public:
  Listener() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (!fd_.Valid() || ::bind(fd_.Get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
        ::listen(fd_.Get(), 1) != 0 ||
        ::getsockname(fd_.Get(), reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      return;
    }
    port_ = ntohs(address.sin_port);
    struct stat status {};
    if (::fstat(fd_.Get(), &status) == 0) {
      inode_ = static_cast<uint32_t>(status.st_ino);
    }
  }
  uint16_t Port() const { return port_; }
  uint32_t Inode() const { return inode_; }

 private:
  UniqueFd fd_;
  uint16_t port_ = 0;
  uint32_t inode_ = 0;
};

TEST(KernelDumpTest, PortFilterIsAcceptedAndAppliedByTheKernel) {
  Result<std::unique_ptr<KernelTransport>> opened = KernelTransport::Open();
  if (!opened) {
    GTEST_SKIP() << "no netlink sock_diag here: " << opened.Error();
  }
  std::unique_ptr<KernelTransport>& kernel = *opened;
  Listener first;
  Listener second;
  Listener third;
  ASSERT_NE(first.Port(), 0);
  ASSERT_NE(second.Port(), 0);
  ASSERT_NE(third.Port(), 0);
  ASSERT_NE(first.Inode(), 0U);

  std::vector<SocketRecord> records;
  DumpResult result = Dump(
      *kernel,
      unit::Request(Protocol::kTcp, Family::kIpv4, StateBit(kListen), {first.Port(), third.Port()}),
      [&records](const SocketRecord& record) { records.push_back(record); });
  ASSERT_EQ(result.outcome, DumpOutcome::kComplete) << result.error;
  EXPECT_EQ(result.stray_messages, 0U);
  std::vector<uint32_t> inodes;
  for (const SocketRecord& record : records) {
    EXPECT_TRUE(record.local_port == first.Port() || record.local_port == third.Port())
        << "unfiltered port " << record.local_port;
    EXPECT_EQ(record.state, kListen);
    inodes.push_back(record.inode);
  }
  // Other hosts' sockets could share a port number; ours are the ones that must be there.
  EXPECT_NE(std::find(inodes.begin(), inodes.end(), first.Inode()), inodes.end());
  EXPECT_NE(std::find(inodes.begin(), inodes.end(), third.Inode()), inodes.end());
  EXPECT_EQ(std::find(inodes.begin(), inodes.end(), second.Inode()), inodes.end());
}

// Any process may send a datagram to the transport's port id. One forged to look like the end of
// the dump (the right sequence and port id) must not end it: only the kernel's replies count.
TEST(KernelDumpTest, DatagramsNotFromTheKernelAreDroppedAndCounted) {
  Result<std::unique_ptr<KernelTransport>> opened = KernelTransport::Open();
  if (!opened) {
    GTEST_SKIP() << "no netlink sock_diag here: " << opened.Error();
  }
  KernelTransport& kernel = **opened;
  UniqueFd forger(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  ASSERT_TRUE(forger.Valid());
  sockaddr_nl local{};
  local.nl_family = AF_NETLINK;
  ASSERT_EQ(::bind(forger.Get(), reinterpret_cast<sockaddr*>(&local), sizeof(local)), 0);
  Listener listener;
  ASSERT_NE(listener.Port(), 0);

  const DumpRequest request =
      unit::Request(Protocol::kTcp, Family::kIpv4, StateBit(kListen), {listener.Port()});
  // The kernel transport counts sequences up: the dump's request carries the one after this.
  const uint32_t next = kernel.NextSequence() + 1;
  const std::vector<std::byte> forged = DatagramBuilder(next, kernel.PortId()).Done().Build();
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  to.nl_pid = kernel.PortId();
  ASSERT_EQ(::sendto(forger.Get(), forged.data(), forged.size(), 0,
                     reinterpret_cast<sockaddr*>(&to), sizeof(to)),
            static_cast<ssize_t>(forged.size()))
      << std::strerror(errno);

  std::vector<uint32_t> inodes;
  const DumpResult result = Dump(
      kernel, request, [&inodes](const SocketRecord& record) { inodes.push_back(record.inode); });
  ASSERT_EQ(result.outcome, DumpOutcome::kComplete) << result.error;
  EXPECT_EQ(kernel.ForeignDatagrams(), 1U);
  // Had the forged NLMSG_DONE been read, the dump would have ended without the listener.
  EXPECT_NE(std::find(inodes.begin(), inodes.end(), listener.Inode()), inodes.end());
}

}  // namespace
}  // namespace portwatch::netlink
