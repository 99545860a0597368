#include "collectors/netlink/transport.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/netlink/sock_diag.h"
#include "tests/unit/netlink_builder.h"

namespace portwatch::netlink {
namespace {

using unit::DatagramBuilder;
using unit::DiagSocket;

constexpr uint32_t kKernelPortId = 100;
constexpr uint32_t kFirstSequence = 10;
const DumpRequest kTcp4 = unit::Request(Protocol::kTcp, Family::kIpv4, kAllStates);
const DumpRequest kUdp6 = unit::Request(Protocol::kUdp, Family::kIpv6, StateBit(kClose));

/// Stands in for the kernel: a fixed port id, increasing sequences, one scripted answer per
/// request.
class FakeKernel : public Transport {
 public:
  struct Answer {
    std::vector<std::vector<std::byte>> datagrams;
    std::vector<bool> truncated;
    int receive_errno = EAGAIN;  ///< positive
  };

  void Script(Answer answer) { answers_.push_back(std::move(answer)); }

  uint32_t NextSequence() override { return sequence_++; }
  Status Send(std::span<const std::byte> request) override {
    requests_.emplace_back(request.begin(), request.end());
    if (answers_.empty()) {
      return Failure{ErrnoText("netlink send", ECONNREFUSED)};
    }
    current_ = std::move(answers_.front());
    answers_.pop_front();
    next_ = 0;
    return {};
  }
  Result<Received> Receive(std::span<std::byte> buffer) override {
    if (next_ >= current_.datagrams.size()) {
      return Failure{ReceiveErrorText(current_.receive_errno)};
    }
    const std::vector<std::byte>& datagram = current_.datagrams[next_];
    const bool truncated = next_ < current_.truncated.size() && current_.truncated[next_];
    next_++;
    std::memcpy(buffer.data(), datagram.data(), datagram.size());
    return Received{datagram.size(), truncated};
  }
  uint32_t PortId() const override { return kKernelPortId; }

  const std::vector<std::vector<std::byte>>& Requests() const { return requests_; }

 private:
  uint32_t sequence_ = kFirstSequence;
  std::deque<Answer> answers_;
  Answer current_;
  size_t next_ = 0;
  std::vector<std::vector<std::byte>> requests_;
};

DiagSocket Socket(uint16_t local_port, uint16_t remote_port) {
  DiagSocket socket;
  socket.local_port = local_port;
  socket.remote_port = remote_port;
  socket.inode = 1000U + local_port;
  return socket;
}

struct DumpRun {
  DumpResult result;
  std::vector<uint16_t> local_ports;
};

DumpRun RunDump(Transport& transport, const DumpRequest& request) {
  DumpRun run;
  run.result = Dump(transport, request, [&run](const SocketRecord& record) {
    run.local_ports.push_back(record.local_port);
  });
  return run;
}

class TransportFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = ::testing::TempDir() + "/portwatch-transport-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".nlrec";
  }
  void TearDown() override { std::remove(path_.c_str()); }

  void WriteFile(const std::string& bytes) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
  }
  std::string ReadFile() const {
    std::ifstream in(path_, std::ios::binary);
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return bytes.str();
  }

  std::string path_;
};

/// A record header of the recording format: {u32 kind, u32 value, u32 length}.
std::string RecordHeader(uint32_t kind, uint32_t value, uint32_t length) {
  const uint32_t words[3] = {kind, value, length};
  return std::string(reinterpret_cast<const char*>(words), sizeof(words));
}

std::string AsString(const std::vector<std::byte>& bytes) {
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

TEST_F(TransportFileTest, RecordingReplaysExactly) {
  FakeKernel kernel;
  kernel.Script({{DatagramBuilder(kFirstSequence, kKernelPortId)
                      .Socket(Socket(5000, 0))
                      .Socket(Socket(40001, 5000))
                      .Build(),
                  DatagramBuilder(kFirstSequence, kKernelPortId).Done().Build()},
                 {},
                 EAGAIN});
  kernel.Script({{DatagramBuilder(kFirstSequence + 1, kKernelPortId).Socket(Socket(53, 0)).Build()},
                 {},
                 ENOBUFS});
  kernel.Script(
      {{DatagramBuilder(kFirstSequence + 2, kKernelPortId).Done().Build()}, {true}, EAGAIN});

  DumpRun recorded_tcp;
  DumpRun recorded_udp;
  DumpRun recorded_truncated;
  {
    RecordingTransport recorder(kernel, path_);
    ASSERT_TRUE(recorder.Ok());
    EXPECT_EQ(recorder.PortId(), kKernelPortId);
    recorded_tcp = RunDump(recorder, kTcp4);
    recorded_udp = RunDump(recorder, kUdp6);
    recorded_truncated = RunDump(recorder, kTcp4);
  }
  EXPECT_EQ(recorded_tcp.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(recorded_tcp.local_ports, (std::vector<uint16_t>{5000, 40001}));
  EXPECT_EQ(recorded_udp.result.error, "netlink receive: No buffer space available");
  EXPECT_EQ(recorded_udp.local_ports, (std::vector<uint16_t>{53}));
  EXPECT_EQ(recorded_truncated.result.error, "netlink datagram truncated");

  // The file, record by record.
  ASSERT_EQ(kernel.Requests().size(), 3U);
  const std::vector<std::byte> tcp_request = BuildDumpRequest(kTcp4, kFirstSequence);
  EXPECT_EQ(AsString(kernel.Requests()[0]), AsString(tcp_request));
  const std::string first_datagram = AsString(DatagramBuilder(kFirstSequence, kKernelPortId)
                                                  .Socket(Socket(5000, 0))
                                                  .Socket(Socket(40001, 5000))
                                                  .Build());
  const std::string done = AsString(DatagramBuilder(kFirstSequence, kKernelPortId).Done().Build());
  const std::string expected_start =
      "PWNL" + RecordHeader(1, kKernelPortId, 72) + AsString(tcp_request) +
      RecordHeader(2, 0, static_cast<uint32_t>(first_datagram.size())) + first_datagram +
      RecordHeader(2, 0, 20) + done;
  const std::string file = ReadFile();
  EXPECT_EQ(file.substr(0, expected_start.size()), expected_start);
  // udp: request, one datagram, then the receive failure (kind 4, its text).
  const std::string receive_failure = "netlink receive: No buffer space available";
  const std::string udp_tail =
      RecordHeader(4, 0, static_cast<uint32_t>(receive_failure.size())) + receive_failure;
  EXPECT_NE(file.find(udp_tail), std::string::npos);
  // The truncated datagram is recorded with value 1.
  const std::string truncated_done =
      AsString(DatagramBuilder(kFirstSequence + 2, kKernelPortId).Done().Build());
  EXPECT_EQ(file.substr(file.size() - 12 - 20), RecordHeader(2, 1, 20) + truncated_done);

  // Replayed, every dump ends exactly as it did against the kernel.
  Result<std::unique_ptr<ReplayTransport>> replay = ReplayTransport::Load(path_);
  ASSERT_TRUE(replay) << replay.Error();
  EXPECT_EQ(replay.Error(), "");
  DumpRun replayed_tcp = RunDump(**replay, kTcp4);
  EXPECT_EQ((*replay)->PortId(), kKernelPortId);
  DumpRun replayed_udp = RunDump(**replay, kUdp6);
  DumpRun replayed_truncated = RunDump(**replay, kTcp4);
  EXPECT_EQ(replayed_tcp.result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(replayed_tcp.result.sockets, 2U);
  EXPECT_EQ(replayed_tcp.local_ports, recorded_tcp.local_ports);
  EXPECT_EQ(replayed_udp.result.outcome, DumpOutcome::kFailed);
  EXPECT_EQ(replayed_udp.result.error, "netlink receive: No buffer space available");
  EXPECT_EQ(replayed_udp.local_ports, recorded_udp.local_ports);
  EXPECT_EQ(replayed_truncated.result.error, "netlink datagram truncated");
  EXPECT_EQ((*replay)->RequestsServed(), 3U);
  // A fourth dump finds nothing recorded.
  EXPECT_EQ(RunDump(**replay, kTcp4).result.error, "netlink send: No data available");
}

TEST_F(TransportFileTest, RecordingAReplayKeepsEachExchangesPortId) {
  // A replay source learns an exchange's port id from the request sent to it, so the recorder
  // must ask for the port id after forwarding the request, not before.
  constexpr uint32_t kFirstPortId = 101;
  constexpr uint32_t kSecondPortId = 102;
  const std::vector<std::byte> tcp_request = BuildDumpRequest(kTcp4, kFirstSequence);
  const std::vector<std::byte> udp_request = BuildDumpRequest(kUdp6, kFirstSequence + 1);
  const std::vector<std::byte> tcp_answer =
      DatagramBuilder(kFirstSequence, kFirstPortId).Socket(Socket(5000, 0)).Done().Build();
  const std::vector<std::byte> udp_answer =
      DatagramBuilder(kFirstSequence + 1, kSecondPortId).Socket(Socket(53, 0)).Done().Build();
  ReplayTransport source(
      {unit::MakeExchange(kTcp4, kFirstSequence, kFirstPortId, {tcp_answer}),
       unit::MakeExchange(kUdp6, kFirstSequence + 1, kSecondPortId, {udp_answer})});
  {
    RecordingTransport recorder(source, path_);
    ASSERT_TRUE(recorder.Ok());
    EXPECT_EQ(RunDump(recorder, kTcp4).local_ports, (std::vector<uint16_t>{5000}));
    EXPECT_EQ(RunDump(recorder, kUdp6).local_ports, (std::vector<uint16_t>{53}));
  }
  EXPECT_EQ(ReadFile(), "PWNL" + RecordHeader(1, kFirstPortId, 72) + AsString(tcp_request) +
                            RecordHeader(2, 0, static_cast<uint32_t>(tcp_answer.size())) +
                            AsString(tcp_answer) + RecordHeader(1, kSecondPortId, 72) +
                            AsString(udp_request) +
                            RecordHeader(2, 0, static_cast<uint32_t>(udp_answer.size())) +
                            AsString(udp_answer));

  // The re-recording replays like the original.
  Result<std::unique_ptr<ReplayTransport>> replay = ReplayTransport::Load(path_);
  ASSERT_TRUE(replay) << replay.Error();
  DumpRun tcp = RunDump(**replay, kTcp4);
  DumpRun udp = RunDump(**replay, kUdp6);
  EXPECT_EQ(tcp.result.outcome, DumpOutcome::kComplete) << tcp.result.error;
  EXPECT_EQ(tcp.local_ports, (std::vector<uint16_t>{5000}));
  EXPECT_EQ(udp.result.outcome, DumpOutcome::kComplete) << udp.result.error;
  EXPECT_EQ(udp.local_ports, (std::vector<uint16_t>{53}));
}

TEST_F(TransportFileTest, ReceiveBeforeSendIsNotConnected) {
  ReplayTransport replay({});
  std::byte buffer[16];
  EXPECT_EQ(replay.Receive(buffer).Error(), "netlink receive: Transport endpoint is not connected");
  EXPECT_EQ(replay.NextSequence(), 0U);
}

TEST_F(TransportFileTest, ReplaysAnEmptyDatagram) {
  // Found by tests/fuzz (regressions/sock_diag/empty_datagram): an empty datagram's data() is
  // null, and memcpy from null is undefined even for 0 bytes (UBSan stopped the sanitizer build).
  Exchange exchange;
  exchange.request = BuildDumpRequest(kTcp4, 1);
  exchange.datagrams.emplace_back();
  exchange.truncated.push_back(false);
  ReplayTransport replay({exchange});
  ASSERT_TRUE(replay.Send(exchange.request));
  std::byte buffer[16];
  Result<Received> received = replay.Receive(buffer);
  ASSERT_TRUE(received) << received.Error();
  EXPECT_EQ(received->length, 0U);
  EXPECT_FALSE(received->truncated);
}

TEST_F(TransportFileTest, LoadRejectsAMissingFile) {
  EXPECT_EQ(ReplayTransport::Load(path_ + ".absent").Error(),
            path_ + ".absent: not a portwatch netlink recording");
}

TEST_F(TransportFileTest, LoadRejectsABadMagic) {
  WriteFile("PWNX" + RecordHeader(1, 0, 0));
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": not a portwatch netlink recording");
  WriteFile("PW");
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": not a portwatch netlink recording");
}

TEST_F(TransportFileTest, LoadRejectsATruncatedRecord) {
  WriteFile("PWNL" + RecordHeader(1, 0, 72) + std::string(10, 'x'));
  EXPECT_EQ(ReplayTransport::Load(path_).Error(),
            path_ + ": truncated record (its header claims 72 bytes, the file has 10 left)");
}

TEST_F(TransportFileTest, LoadChecksAClaimedLengthBeforeAllocatingIt) {
  // A header claiming 4 GiB in a 31-byte file, after a complete record: refused from the file's
  // size, without allocating what the header claims.
  WriteFile("PWNL" + RecordHeader(1, 0, 0) + RecordHeader(2, 0, 0xffffffffU) + "abc");
  EXPECT_EQ(ReplayTransport::Load(path_).Error(),
            path_ + ": truncated record (its header claims 4294967295 bytes, the file has 3 left)");
}

TEST_F(TransportFileTest, LoadRejectsAReplyBeforeAnyRequest) {
  WriteFile("PWNL" + RecordHeader(2, 0, 4) + "abcd");
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": reply recorded before any request");
}

TEST_F(TransportFileTest, LoadRejectsAnUnknownRecordKind) {
  WriteFile("PWNL" + RecordHeader(1, 0, 0) + RecordHeader(9, 0, 0));
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": unknown record kind 9");
}

TEST_F(TransportFileTest, LoadRejectsAReceiveErrorThatIsNoErrno) {
  // Receive() once returned -errno: errno 0x80000000 overflowed there, and a negative one read as
  // a datagram length (tests/fuzz/regressions/netlink_replay/receive_errno_int_min). Older
  // recordings still carry a receive error as an errno: it must be one strerror() can name.
  for (uint32_t bad : {0U, 4096U, 0x80000000U, 0xfffffffbU}) {
    WriteFile("PWNL" + RecordHeader(1, 0, 0) + RecordHeader(3, bad, 0));
    EXPECT_EQ(ReplayTransport::Load(path_).Error(),
              path_ + ": bad errno " + std::to_string(bad) + " in a receive error record")
        << bad;
  }
  const std::string request = AsString(BuildDumpRequest(kTcp4, 7));
  WriteFile("PWNL" + RecordHeader(1, kKernelPortId, static_cast<uint32_t>(request.size())) +
            request + RecordHeader(3, ENOBUFS, 0));
  Result<std::unique_ptr<ReplayTransport>> replay = ReplayTransport::Load(path_);
  ASSERT_TRUE(replay) << replay.Error();
  EXPECT_EQ(RunDump(**replay, kTcp4).result.error, "netlink receive: No buffer space available");
}

TEST_F(TransportFileTest, ReceiveFailuresReplayAsRecordedText) {
  const std::string request = AsString(BuildDumpRequest(kTcp4, 7));
  const std::string failure = "netlink receive: No buffer space available";
  WriteFile("PWNL" + RecordHeader(1, kKernelPortId, static_cast<uint32_t>(request.size())) +
            request + RecordHeader(4, 0, static_cast<uint32_t>(failure.size())) + failure);
  Result<std::unique_ptr<ReplayTransport>> replay = ReplayTransport::Load(path_);
  ASSERT_TRUE(replay) << replay.Error();
  EXPECT_EQ(RunDump(**replay, kTcp4).result.error, failure);
  // A failure without text is no failure a log line could show.
  WriteFile("PWNL" + RecordHeader(1, 0, 0) + RecordHeader(4, 0, 0));
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": empty receive failure record");
}

TEST_F(TransportFileTest, LoadRejectsARecordHeaderCutShort) {
  WriteFile("PWNL" + RecordHeader(1, 0, 0) + RecordHeader(2, 0, 0).substr(0, 6));
  EXPECT_EQ(ReplayTransport::Load(path_).Error(), path_ + ": truncated record");
}

TEST_F(TransportFileTest, EmptyRecordingLoadsAndServesNothing) {
  WriteFile("PWNL");
  Result<std::unique_ptr<ReplayTransport>> replay = ReplayTransport::Load(path_);
  ASSERT_TRUE(replay) << replay.Error();
  EXPECT_EQ(RunDump(**replay, kTcp4).result.error, "netlink send: No data available");
}

TEST_F(TransportFileTest, CommittedFixtureLoads) {
  Result<std::unique_ptr<ReplayTransport>> replay =
      ReplayTransport::Load(std::string(PORTWATCH_FIXTURES) + "/sockdiag/table.nlrec");
  ASSERT_TRUE(replay) << replay.Error();
  // Its first request is the sockets collector's first: every TCP/IPv4 socket, bound-inactive
  // ones included (tests/fixtures/config/golden_sockets.yaml).
  std::vector<uint16_t> listening;
  DumpResult result = Dump(
      **replay, unit::Request(Protocol::kTcp, Family::kIpv4, kAllStates | kBoundInactiveStates),
      [&listening](const SocketRecord& record) {
        if (record.state == kListen) {
          listening.push_back(record.local_port);
        }
      });
  EXPECT_EQ(result.outcome, DumpOutcome::kComplete);
  EXPECT_EQ(result.sockets, 17U);  // 6001 bound-only included
  EXPECT_EQ(result.stray_messages, 0U);
  std::sort(listening.begin(), listening.end());
  EXPECT_EQ(listening, (std::vector<uint16_t>{5000, 40500}));
}

TEST(UniqueFdTest, ClosesExactlyOnce) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  {
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd moved(std::move(read_end));
    EXPECT_FALSE(read_end.Valid());
    EXPECT_EQ(moved.Get(), pipe_fds[0]);
    UniqueFd assigned;
    assigned = std::move(moved);
    EXPECT_EQ(assigned.Get(), pipe_fds[0]);
    EXPECT_EQ(moved.Get(), -1);
  }
  // The read end was closed by the last owner.
  EXPECT_EQ(::fcntl(pipe_fds[0], F_GETFD), -1);
  EXPECT_EQ(errno, EBADF);
  UniqueFd write_end(pipe_fds[1]);
  EXPECT_EQ(write_end.Release(), pipe_fds[1]);
  EXPECT_FALSE(write_end.Valid());
  EXPECT_EQ(::close(pipe_fds[1]), 0);  // Release() handed the fd back unclosed
}

}  // namespace
}  // namespace portwatch::netlink
