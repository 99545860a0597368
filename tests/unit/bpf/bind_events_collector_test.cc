#include "collectors/bind_events/bind_events_collector.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "exporter/config.h"
#include "tests/unit/metric_samples.h"
#include "tests/unit/netlink_builder.h"

namespace portwatch {
namespace {

using unit::Samples;

constexpr uint32_t kOwnNetns = 4026531840;
constexpr uint32_t kOtherNetns = 4026532999;

/// A source whose counts the test sets; remembers the filter it was given.
struct FakeState {
  bool available = true;
  std::vector<std::pair<BindFailureKey, uint64_t>> counts;
  uint32_t filter = 12345;  // anything but 0 or a real inode: "never set"
  BindEventHandler handler;
  std::vector<std::vector<BindEventsAttach>> opened;  ///< the allowed paths of each open
};

class FakeSource : public BindEventSource {
 public:
  explicit FakeSource(FakeState& state) : state_(state) {}
  bool Available() const override { return state_.available; }
  std::string UnavailableReason() const override { return "fake: no BPF"; }
  void SetNetnsFilter(uint32_t netns) override { state_.filter = netns; }
  std::vector<std::pair<BindFailureKey, uint64_t>> ReadCounts() override { return state_.counts; }
  uint64_t UncountedFailures() const override { return 3; }
  uint64_t LostEvents() const override { return 4; }
  std::string AttachPath() const override { return "fexit"; }
  std::string UnavailableCause() const override { return "no_permission"; }

 private:
  FakeState& state_;
};

BindFailureKey Key(uint16_t port, uint32_t netns, uint8_t syscall = PORTWATCH_SYSCALL_BIND,
                   uint8_t err = EADDRINUSE) {
  BindFailureKey key;
  key.netns = netns;
  key.port = port;
  key.syscall = syscall;
  key.err = err;
  key.family = AF_INET;
  key.comm = "app";
  return key;
}

/// An EADDRINUSE bind() of port 8080 by pid 7 in `netns`.
BindFailureEvent InUse(uint32_t netns) {
  BindFailureEvent event;
  event.key = Key(8080, netns);
  event.pid = 7;
  return event;
}

/// A TCP listener on 0.0.0.0:8080 with inode 1001, which the fixture /proc's nginx (pid
/// 4194401) holds.
unit::DiagSocket NginxListener() {
  unit::DiagSocket listener;
  listener.state = netlink::kListen;
  listener.local_port = 8080;
  listener.local_address = "0.0.0.0";
  listener.remote_address = "0.0.0.0";
  listener.inode = 1001;
  return listener;
}

class BindEventsCollectorTest : public ::testing::Test {
 protected:
  /// No socket table by default: no listening ports (the e2e test covers them).
  std::unique_ptr<BindEventsCollector> Make(
      const BindEventsConfig& options = {},
      netlink::TransportFactory open_transport =
          []() -> Result<std::unique_ptr<netlink::Transport>> {
        return Failure{"no netlink in unit tests"};
      }) {
    return std::make_unique<BindEventsCollector>(
        ProcFs(PORTWATCH_FIXTURES "/proc"), std::move(open_transport),
        [this](const std::vector<BindEventsAttach>& allowed, BindEventHandler handler) {
          state_.opened.push_back(allowed);
          state_.handler = std::move(handler);
          return std::make_unique<FakeSource>(state_);
        },
        options, kOwnNetns, [this](const std::string& line) { lines_.push_back(line); },
        pods_factory_, pod_tables_);
  }

  static Config ParsedConfig(const std::string& yaml) {
    Result<Config> result = ParseConfig(yaml, "test.yaml");
    EXPECT_TRUE(result.Ok()) << result.Error();
    return result.Ok() ? *result : Config{};
  }

  FakeState state_;
  std::vector<std::string> lines_;
  BindEventsCollector::PodLookupFactory pods_factory_;  ///< none unless a test sets one
  BindEventsCollector::PodTableOpener pod_tables_;      ///< none unless a test sets one
};

TEST_F(BindEventsCollectorTest, UnavailableSaysSoAndSucceeds) {
  state_.available = false;
  auto collector = Make();
  std::vector<prometheus::MetricFamily> out;
  Status status = collector->Collect(Config{}, out);
  EXPECT_TRUE(status.Ok());
  ASSERT_EQ(out.size(), 2U);
  EXPECT_EQ(Samples(out, "portwatch_bind_events_available"),
            (std::map<std::string, double>{{"", 0}}));
  EXPECT_EQ(Samples(out, "portwatch_bind_events_unavailable_info"),
            (std::map<std::string, double>{{"{cause=\"no_permission\"}", 1}}));
}

TEST_F(BindEventsCollectorTest, OpensWithTheConfiguredPathsAndReattachesWhenTheyChange) {
  auto collector = Make();
  using Paths = std::vector<BindEventsAttach>;
  // The default allows only the path that costs nothing outside bind/listen/connect.
  ASSERT_EQ(state_.opened, (std::vector<Paths>{{BindEventsAttach::kFexit}}));
  state_.counts = {{Key(8080, kOwnNetns), 2}};
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector->Collect(Config{}, out).Ok());
  EXPECT_EQ(state_.opened.size(), 1U);  // same paths: no re-attach

  // A reload allowing the trace events re-attaches; the new kernel map starts from zero and
  // the exposed counter carries on (2, then 2 + 3).
  Config reloaded = ParsedConfig("collectors:\n  bind_events:\n    attach: [tracepoint, fexit]\n");
  state_.counts = {{Key(8080, kOwnNetns), 3}};
  out.clear();
  ASSERT_TRUE(collector->Collect(reloaded, out).Ok());
  EXPECT_EQ(state_.opened,
            (std::vector<Paths>{{BindEventsAttach::kFexit},
                                {BindEventsAttach::kFexit, BindEventsAttach::kTracepoint}}));
  const std::string own = std::to_string(kOwnNetns);
  EXPECT_EQ(
      Samples(out, "portwatch_bind_failures_total"),
      (std::map<std::string, double>{{"{errno=\"EADDRINUSE\",family=\"ipv4\",netns=\"" + own +
                                          "\",port=\"8080\",process=\"app\",syscall=\"bind\"}",
                                      5}}));
}

TEST_F(BindEventsCollectorTest, CountsWithServicePortsKeptAndNamespaceFilter) {
  auto collector = Make();
  state_.counts = {
      {Key(8080, kOwnNetns), 2}, {Key(9000, kOwnNetns), 1}, {Key(8080, kOtherNetns), 5}};
  Config config = ParsedConfig(
      "collectors:\n  bind_events:\n    namespaces: own\n    max_port_series: 1\n"
      "services:\n  - name: web\n    port: 9000\n");
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector->Collect(config, out).Ok());
  EXPECT_EQ(state_.filter, kOwnNetns);
  const std::string own = std::to_string(kOwnNetns);
  // 9000 is a service port: kept beyond the cap of 1, which 8080 takes.
  EXPECT_EQ(
      Samples(out, "portwatch_bind_failures_total"),
      (std::map<std::string, double>{{"{errno=\"EADDRINUSE\",family=\"ipv4\",netns=\"" + own +
                                          "\",port=\"8080\",process=\"app\",syscall=\"bind\"}",
                                      2},
                                     {"{errno=\"EADDRINUSE\",family=\"ipv4\",netns=\"" + own +
                                          "\",port=\"9000\",process=\"app\",syscall=\"bind\"}",
                                      1}}));
  EXPECT_EQ(Samples(out, "portwatch_bind_events_available"),
            (std::map<std::string, double>{{"", 1}}));
  EXPECT_EQ(Samples(out, "portwatch_bind_events_attach_info"),
            (std::map<std::string, double>{{"{attach=\"fexit\"}", 1}}));
  EXPECT_EQ(Samples(out, "portwatch_bind_failures_uncounted_total"),
            (std::map<std::string, double>{{"", 3}}));
  EXPECT_EQ(Samples(out, "portwatch_bind_events_log_lost_total"),
            (std::map<std::string, double>{{"", 4}}));

  // The default config counts every namespace.
  out.clear();
  ASSERT_TRUE(collector->Collect(ParsedConfig(""), out).Ok());
  EXPECT_EQ(state_.filter, 0U);
}

TEST_F(BindEventsCollectorTest, LogLinesAreRateLimited) {
  auto collector = Make();
  BindFailureEvent event;
  event.key = Key(8080, kOtherNetns);
  event.pid = 77;
  event.address = "127.0.0.1";
  // A burst far beyond the limit, delivered faster than one token refills (0.5 s).
  for (int i = 0; i < 25; ++i) {
    state_.handler(event);
  }
  ASSERT_EQ(lines_.size(), static_cast<size_t>(BindEventsCollector::kLogBurst));
  EXPECT_EQ(lines_.front(),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=77 uid=0 "
            "netns=4026532999 family=ipv4 address=127.0.0.1 port=8080 "
            "holders=\"unknown: another network namespace\"");
}

TEST_F(BindEventsCollectorTest, LogLineExplainsEachKind) {
  auto collector = Make();
  BindFailureEvent connect;
  connect.key = Key(5432, kOwnNetns, PORTWATCH_SYSCALL_CONNECT, EADDRNOTAVAIL);
  connect.pid = 5;
  connect.address = "10.0.0.9";
  EXPECT_EQ(collector->DescribeFailure(connect),
            "msg=\"connect failed\" errno=EADDRNOTAVAIL process=app pid=5 uid=0 "
            "netns=4026531840 family=ipv4 address=10.0.0.9 port=5432 why=\"no free local "
            "port toward this destination (ephemeral ports in use)\"");
  BindFailureEvent denied;
  denied.key = Key(80, kOwnNetns, PORTWATCH_SYSCALL_BIND, EACCES);
  denied.pid = 6;
  denied.uid = 65534;
  EXPECT_EQ(collector->DescribeFailure(denied),
            "msg=\"bind failed\" errno=EACCES process=app pid=6 uid=65534 netns=4026531840 "
            "family=ipv4 port=80 why=\"port below net.ipv4.ip_unprivileged_port_start needs "
            "CAP_NET_BIND_SERVICE\"");
  // Own namespace, but no socket table to ask: says why.
  BindFailureEvent in_use = InUse(kOwnNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026531840 "
            "family=ipv4 port=8080 holders=\"unknown: no netlink in unit tests\"");
}

/// A socket table whose every dump request fails to be sent.
class RefusingTransport : public netlink::Transport {
 public:
  uint32_t NextSequence() override { return 1; }
  Status Send(std::span<const std::byte> /*request*/) override {
    return Failure{ErrnoText("netlink send", EIO)};
  }
  Result<netlink::Received> Receive(std::span<std::byte> /*buffer*/) override {
    return Failure{netlink::ReceiveErrorText(EIO)};
  }
  uint32_t PortId() const override { return 0; }
};

/// The kernel's answer to each of the four dumps DescribeFailure() asks for port `port`:
/// `answer` built with that dump's sequence and port id.
std::vector<netlink::Exchange> PortDumps(
    uint16_t port, const std::function<std::vector<std::byte>(unit::DatagramBuilder)>& answer) {
  std::vector<netlink::Exchange> exchanges;
  uint32_t sequence = 900;
  for (netlink::Protocol protocol : {netlink::Protocol::kTcp, netlink::Protocol::kUdp}) {
    for (netlink::Family family : {netlink::Family::kIpv4, netlink::Family::kIpv6}) {
      exchanges.push_back(
          unit::MakeExchange(unit::Request(protocol, family, netlink::kAllStates, {port}), sequence,
                             55, {answer(unit::DatagramBuilder(sequence, 55))}));
      sequence++;
    }
  }
  return exchanges;
}

netlink::TransportFactory Replaying(const std::vector<netlink::Exchange>& exchanges) {
  return [exchanges]() -> Result<std::unique_ptr<netlink::Transport>> {
    return std::unique_ptr<netlink::Transport>(
        std::make_unique<netlink::ReplayTransport>(exchanges));
  };
}

// No holder found because the tables could not be read is not "none visible".
TEST_F(BindEventsCollectorTest, UnreadableSocketTablesMakeTheHolderUnknown) {
  BindFailureEvent in_use = InUse(kOwnNetns);
  const std::string who =
      "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026531840 "
      "family=ipv4 port=8080 ";
  auto failing = Make({}, []() -> Result<std::unique_ptr<netlink::Transport>> {
    return std::unique_ptr<netlink::Transport>(std::make_unique<RefusingTransport>());
  });
  EXPECT_EQ(failing->DescribeFailure(in_use),
            who +
                "holders=\"unknown: cannot read tcp/ipv4 (netlink send: Input/output error), "
                "tcp/ipv6 (netlink send: Input/output error), udp/ipv4 (netlink send: "
                "Input/output error), udp/ipv6 (netlink send: Input/output error)\"");
  // No tcp_diag/udp_diag module: the kernel cannot say either.
  auto unsupported = Make({}, Replaying(PortDumps(8080, [](unit::DatagramBuilder datagram) {
                            return datagram.Error(ENOENT).Build();
                          })));
  EXPECT_EQ(unsupported->DescribeFailure(in_use),
            who +
                "holders=\"unknown: cannot read tcp/ipv4 (No such file or directory), tcp/ipv6 "
                "(No such file or directory), udp/ipv4 (No such file or directory), udp/ipv6 (No "
                "such file or directory)\"");
}

// The holders come from one kernel-filtered dump per table (the request carries the port) and
// the fixture /proc: nginx (pid 4194401) holds inode 1001.
TEST_F(BindEventsCollectorTest, LogLineNamesTheHoldersOfThePort) {
  const unit::DiagSocket listener = NginxListener();
  unit::DiagSocket waiting = listener;
  waiting.state = netlink::kTimeWait;
  waiting.inode = 0;
  unit::DiagSocket hidden = listener;
  hidden.family = AF_INET6;
  hidden.local_address = "::";
  hidden.remote_address = "::";
  hidden.inode = 4242;  // no process of the fixture holds it
  std::vector<netlink::Exchange> kernel =
      PortDumps(8080, [](unit::DatagramBuilder datagram) { return datagram.Done().Build(); });
  kernel[0].datagrams = {unit::DatagramBuilder(900, 55).Socket(listener).Socket(waiting).Build(),
                         unit::DatagramBuilder(900, 55).Done().Build()};
  kernel[0].truncated = {false, false};
  kernel[1].datagrams = {unit::DatagramBuilder(901, 55).Socket(hidden).Done().Build()};
  auto collector = Make({}, Replaying(kernel));
  BindFailureEvent in_use = InUse(kOwnNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026531840 "
            "family=ipv4 port=8080 holders=\"tcp listen by pid 4194401 (nginx: nginx: master "
            "process /usr/sbin/nginx -g daemon off;); tcp time_wait (no process); tcp listen by "
            "an invisible process\"");
  // privacy.command_lines: false names the holder by pid and process name only.
  collector->ShowCommandLines(false);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026531840 "
            "family=ipv4 port=8080 holders=\"tcp listen by pid 4194401 (nginx); tcp time_wait (no "
            "process); tcp listen by an invisible process\"");
}

constexpr uint32_t kPodNetns = 4026533001;

/// A fake of the shared PodNamespaces: pods by netns the test changes; remembers what it was asked.
struct FakePods {
  std::map<uint32_t, PodLabels> pods;
  std::vector<uint32_t> looked_up;
  std::vector<std::pair<std::string, std::chrono::steady_clock::duration>> made;  ///< dir, age

  BindEventsCollector::PodLookupFactory Factory() {
    return [this](const SocketsConfig& sockets,
                  std::chrono::steady_clock::duration max_age) -> PodLookup {
      if (!sockets.pods) {
        return nullptr;
      }
      made.emplace_back(sockets.pod_logs_dir, max_age);
      return [this](uint32_t netns) -> std::optional<PodLabels> {
        looked_up.push_back(netns);
        const auto found = pods.find(netns);
        return found != pods.end() ? std::optional(found->second) : std::nullopt;
      };
    };
  }
};

/// The series of `Key(8080, netns)`, with the labels of pod `ns`/`pod` when given.
std::string Labels(uint32_t netns, const std::string& ns = "", const std::string& pod = "") {
  const bool in_pod = !pod.empty();
  return "{errno=\"EADDRINUSE\",family=\"ipv4\"," +
         (in_pod ? "namespace=\"" + ns + "\"," : std::string()) + "netns=\"" +
         std::to_string(netns) + "\"," + (in_pod ? "pod=\"" + pod + "\"," : std::string()) +
         "port=\"8080\",process=\"app\",syscall=\"bind\"}";
}

TEST_F(BindEventsCollectorTest, PodsFailuresCarryThePodAndTheLogLineNamesIt) {
  FakePods fake;
  fake.pods = {{kPodNetns, {"shop", "web-0"}}};
  pods_factory_ = fake.Factory();
  auto collector = Make();
  state_.counts = {
      {Key(8080, kPodNetns), 3}, {Key(8080, kOwnNetns), 1}, {Key(8080, kOtherNetns), 2}};
  const Config config = ParsedConfig(
      "collectors:\n  sockets:\n    pod_logs_dir: /srv/pods\n  bind_events:\n    attach: "
      "[fexit]\n");
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector->Collect(config, out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_bind_failures_total"),
            (std::map<std::string, double>{
                {Labels(kPodNetns, "shop", "web-0"), 3},
                {Labels(kOwnNetns), 1},
                {Labels(kOtherNetns), 2},
            }));
  // The scrape looks the pods up in the configured directory, in the list this scrape made; the
  // log lines in one at most kLogPodListAge old. The exporter's own namespace is never looked up.
  EXPECT_EQ(fake.made, (std::vector<std::pair<std::string, std::chrono::steady_clock::duration>>{
                           {"/srv/pods", BindEventsCollector::kLogPodListAge},
                           {"/srv/pods", PodNamespaces::kSameScrape}}));
  EXPECT_EQ(std::count(fake.looked_up.begin(), fake.looked_up.end(), kOwnNetns), 0);

  BindFailureEvent in_use = InUse(kPodNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026533001 "
            "pod=shop/web-0 family=ipv4 port=8080 holders=\"unknown: another network "
            "namespace\"");
  // A pod the kubelet's directory does not name: its uid alone.
  fake.pods[kPodNetns] = {"", "0b5c4a52-1111-2222-3333-444455556666"};
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026533001 "
            "pod=0b5c4a52-1111-2222-3333-444455556666 family=ipv4 port=8080 "
            "holders=\"unknown: another network namespace\"");
  // The node's namespace and namespaces of no pod: no pod in the line.
  in_use.key = Key(8080, kOtherNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026532999 "
            "family=ipv4 port=8080 holders=\"unknown: another network namespace\"");
}

// In a pod, the holders come from the pod's own table (its kept sock_diag socket) and the node's
// /proc (hostPID): nginx (pid 4194401) holds inode 1001 there.
TEST_F(BindEventsCollectorTest, APodsLogLineNamesTheHoldersInThePod) {
  FakePods fake;
  fake.pods = {{kPodNetns, {"shop", "web-0"}}};
  pods_factory_ = fake.Factory();
  std::vector<uint32_t> tables_opened;
  pod_tables_ = [&tables_opened](uint32_t netns) -> Result<std::unique_ptr<netlink::Transport>> {
    tables_opened.push_back(netns);
    if (netns != kPodNetns) {
      return Failure{"namespace not entered"};
    }
    std::vector<netlink::Exchange> kernel =
        PortDumps(8080, [](unit::DatagramBuilder datagram) { return datagram.Done().Build(); });
    kernel[0].datagrams = {unit::DatagramBuilder(900, 55).Socket(NginxListener()).Done().Build()};
    return Replaying(kernel)();
  };
  auto collector = Make();
  collector->LookForPods(
      ParsedConfig("collectors:\n  sockets:\n    pod_logs_dir: /srv/pods\n").sockets);
  BindFailureEvent in_use = InUse(kPodNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026533001 "
            "pod=shop/web-0 family=ipv4 port=8080 holders=\"tcp listen by pid 4194401 (nginx: "
            "nginx: master process /usr/sbin/nginx -g daemon off;)\"");
  // A pod whose table cannot be read says why.
  fake.pods[kOtherNetns] = {"shop", "web-1"};
  in_use.key = Key(8080, kOtherNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026532999 "
            "pod=shop/web-1 family=ipv4 port=8080 holders=\"unknown: namespace not entered\"");
  // A namespace of no pod is not read.
  fake.pods.erase(kOtherNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use),
            "msg=\"bind failed\" errno=EADDRINUSE process=app pid=7 uid=0 netns=4026532999 "
            "family=ipv4 port=8080 holders=\"unknown: another network namespace\"");
  EXPECT_EQ(tables_opened, (std::vector<uint32_t>{kPodNetns, kOtherNetns}));
}

// A pod whose failure was logged and that went away before the scrape still gets the failure.
TEST_F(BindEventsCollectorTest, APodGoneBeforeTheScrapeKeepsTheFailuresItLogged) {
  FakePods fake;
  fake.pods = {{kPodNetns, {"batch", "job-1"}}};
  pods_factory_ = fake.Factory();
  auto collector = Make();
  collector->LookForPods(SocketsConfig{});  // as the registry does, before the first scrape
  BindFailureEvent event;
  event.key = Key(8080, kPodNetns);
  event.pid = 9;
  state_.handler(event);
  ASSERT_EQ(lines_.size(), 1U);
  EXPECT_NE(lines_[0].find(" pod=batch/job-1 "), std::string::npos) << lines_[0];
  fake.pods.clear();
  state_.counts = {{Key(8080, kPodNetns), 1}};
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(collector->Collect(Config{}, out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_bind_failures_total"),
            (std::map<std::string, double>{{Labels(kPodNetns, "batch", "job-1"), 1}}));
}

// collectors.sockets.pods off: no pod labels and no pod in log lines, and the pods are never
// looked for.
TEST_F(BindEventsCollectorTest, PodsOffLabelsNothing) {
  FakePods fake;
  fake.pods = {{kPodNetns, {"shop", "web-0"}}};
  pods_factory_ = fake.Factory();
  auto collector = Make();
  state_.counts = {{Key(8080, kPodNetns), 3}};
  std::vector<prometheus::MetricFamily> out;
  ASSERT_TRUE(
      collector->Collect(ParsedConfig("collectors:\n  sockets:\n    pods: false\n"), out).Ok());
  EXPECT_EQ(Samples(out, "portwatch_bind_failures_total"),
            (std::map<std::string, double>{{Labels(kPodNetns), 3}}));
  BindFailureEvent in_use;
  in_use.key = Key(8080, kPodNetns);
  EXPECT_EQ(collector->DescribeFailure(in_use).find("pod="), std::string::npos);
  EXPECT_TRUE(fake.looked_up.empty());
}

TEST(BindEventsConfig, ParsesAndRejects) {
  Result<Config> defaults = ParseConfig("", "t.yaml");
  ASSERT_TRUE(defaults.Ok());
  EXPECT_TRUE(defaults->bind_events.all_namespaces);
  EXPECT_EQ(defaults->bind_events.max_port_series, 100U);
  EXPECT_EQ(defaults->bind_events.attach, std::vector<BindEventsAttach>{BindEventsAttach::kFexit});

  // Any order written; tried cheapest first. A single name is not a list.
  Result<Config> costly = ParseConfig(
      "collectors:\n  bind_events:\n    attach: [raw_tracepoint, fexit, tracepoint]\n", "t.yaml");
  ASSERT_TRUE(costly.Ok()) << costly.Error();
  EXPECT_EQ(costly->bind_events.attach,
            (std::vector<BindEventsAttach>{BindEventsAttach::kFexit, BindEventsAttach::kTracepoint,
                                           BindEventsAttach::kRawTracepoint}));
  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    attach: tracepoint\n", "t.yaml").Error(),
            "t.yaml:3:13: collectors.bind_events.attach must be a list, got \"tracepoint\"");
  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    attach: [kprobe]\n", "t.yaml").Error(),
            "t.yaml:3:14: collectors.bind_events.attach entries must be one of fexit, "
            "raw_tracepoint, tracepoint, got \"kprobe\"");
  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    attach: []\n", "t.yaml").Error(),
            "t.yaml:3:13: collectors.bind_events.attach must list at least one of fexit, "
            "raw_tracepoint, tracepoint (--no-collector.bind_events turns the collector off)");

  Result<Config> own = ParseConfig(
      "collectors:\n  bind_events:\n    namespaces: own\n    max_port_series: 7\n", "t.yaml");
  ASSERT_TRUE(own.Ok()) << own.Error();
  EXPECT_FALSE(own->bind_events.all_namespaces);
  EXPECT_EQ(own->bind_events.max_port_series, 7U);

  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    namespaces: some\n", "t.yaml").Error(),
            "t.yaml:3:17: collectors.bind_events.namespaces must be all or own, got \"some\"");
  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    pods: true\n", "t.yaml").Error(),
            "t.yaml:3:5: unknown key \"pods\" in collectors.bind_events (known: attach, "
            "max_port_series, namespaces)");
  EXPECT_EQ(ParseConfig("collectors:\n  bind_events:\n    max_port_series: 0\n", "t.yaml").Error(),
            "t.yaml:3:22: collectors.bind_events.max_port_series must be at least 1, got 0");
}

}  // namespace
}  // namespace portwatch
