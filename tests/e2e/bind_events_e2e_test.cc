// End to end: the bind_events collector's eBPF counters are exact. In a private network
// namespace, a child process with a known name fails bind(), listen() and connect() a known
// number of times each; the scraped counters for that namespace equal those numbers, and
// successful calls count nothing.
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/child.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kExporterPort = 9792;
constexpr uint16_t kBusyPort = 18080;     // EADDRINUSE, IPv4
constexpr uint16_t kBusyPort6 = 18081;    // EADDRINUSE, IPv6
constexpr uint16_t kFreePort = 18082;     // successful binds
constexpr uint16_t kListenPort = 18083;   // listen() EADDRINUSE
constexpr uint16_t kConnectPort = 18090;  // connect() EADDRNOTAVAIL toward it
constexpr uint16_t kPrivilegedPort = 80;  // EACCES once privileges are dropped
constexpr int kBindInUse = 5;
constexpr int kBindInUse6 = 2;
constexpr int kListenInUse = 2;
constexpr int kConnectNoPort = 3;
constexpr int kBindDenied = 4;
constexpr int kSuccessfulBinds = 3;
constexpr int kOtherNamespaceFailures = 3;
constexpr const char* kProcess = "pw-bindfail";

/// What the child saw, in memory shared with the test: the errno of each attempt.
struct Observed {
  int bind_in_use = 0;
  int bind_in_use6 = 0;
  int listen_in_use = 0;
  int connect_no_port = 0;
  int bind_denied = 0;
  int successful_binds = 0;
  int other_namespace = 0;
};

uint32_t NetnsInode() {
  struct stat info {};
  return ::stat("/proc/thread-self/ns/net", &info) == 0 ? static_cast<uint32_t>(info.st_ino) : 0;
}

int RawBind(int fd, int family, const char* address, uint16_t port) {
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    ::inet_pton(AF_INET, address, &in->sin_addr);
    length = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    ::inet_pton(AF_INET6, address, &in6->sin6_addr);
    length = sizeof(sockaddr_in6);
  }
  return ::bind(fd, reinterpret_cast<sockaddr*>(&storage), length) == 0 ? 0 : errno;
}

/// bind() of a fresh socket; returns 0 or the errno.
int TryBind(int family, const char* address, uint16_t port) {
  UniqueFd fd(::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  return RawBind(fd.Get(), family, address, port);
}

class BindEventsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(tracefs_.Error(), "");
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    netns_ = NetnsInode();
    ASSERT_NE(netns_, 0U);
    // Two ephemeral ports: the third connection toward one destination finds none.
    ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_port_range", "40000 40001"), "");
    observed_ = static_cast<Observed*>(::mmap(nullptr, sizeof(Observed), PROT_READ | PROT_WRITE,
                                              MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    ASSERT_NE(observed_, MAP_FAILED);
    *observed_ = Observed{};
    config_path_ =
        ::testing::TempDir() + "/portwatch-bind-events-" + std::to_string(::getpid()) + ".yaml";
  }
  void TearDown() override {
    ::unlink(config_path_.c_str());
    if (observed_ != MAP_FAILED && observed_ != nullptr) {
      ::munmap(observed_, sizeof(Observed));
    }
  }

  void StartExporter(const std::string& config, const std::string& launcher = "",
                     bool expect_available = true) {
    std::ofstream(config_path_) << config;
    std::vector<std::string> args = {
        "--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort),
        "--config.file=" + config_path_};
    std::string binary = PORTWATCH_EXPORTER_BINARY;
    if (!launcher.empty()) {
      // setpriv as nobody with no capability: BPF is out of reach.
      args.insert(args.begin(), {"--reuid=65534", "--regid=65534", "--clear-groups",
                                 "--inh-caps=-all", "--bounding-set=-all", binary});
      binary = launcher;
    }
    exporter_ = std::make_unique<ExporterProcess>(binary, args);
    ASSERT_TRUE(exporter_->WaitReady(kExporterPort)) << exporter_->Log();
    ASSERT_EQ(Scrape().Value("portwatch_bind_events_available"), expect_available ? 1 : 0)
        << exporter_->Log();
  }

  Exposition Scrape() {
    HttpResponse response = HttpRequest(kExporterPort, "GET", "/metrics");
    EXPECT_EQ(response.status, 200) << response.error;
    return Exposition(response.body);
  }

  /// The child: every kind of failure, a known number of times, then privileges dropped.
  ChildProcess::Setup Failures() {
    Observed* observed = observed_;
    return [observed](std::vector<UniqueFd>& keep) {
      keep.push_back(Listen("127.0.0.1", kBusyPort));
      keep.push_back(Listen("::1", kBusyPort6));
      for (int i = 0; i < kBindInUse; ++i) {
        observed->bind_in_use += TryBind(AF_INET, "127.0.0.1", kBusyPort) == EADDRINUSE;
      }
      for (int i = 0; i < kBindInUse6; ++i) {
        observed->bind_in_use6 += TryBind(AF_INET6, "::1", kBusyPort6) == EADDRINUSE;
      }
      for (int i = 0; i < kSuccessfulBinds; ++i) {
        observed->successful_binds += TryBind(AF_INET, "127.0.0.1", kFreePort) == 0;
      }
      // SO_REUSEADDR sockets may share a port until one listens; the others' listen() fails.
      keep.push_back(Bind(SOCK_STREAM, "127.0.0.1", kListenPort, /*reuse_address=*/true));
      std::vector<UniqueFd> others;
      others.reserve(kListenInUse);
      for (int i = 0; i < kListenInUse; ++i) {
        others.push_back(Bind(SOCK_STREAM, "127.0.0.1", kListenPort, /*reuse_address=*/true));
      }
      ::listen(keep.back().Get(), 8);
      for (const UniqueFd& other : others) {
        observed->listen_in_use +=
            other.Valid() && ::listen(other.Get(), 8) != 0 && errno == EADDRINUSE;
      }
      // Both ephemeral ports taken toward one destination, then M connects find none.
      keep.push_back(Listen("127.0.0.1", kConnectPort));
      for (int i = 0; i < 2; ++i) {
        keep.push_back(Connect(SOCK_STREAM, "127.0.0.1", kConnectPort));
      }
      for (int i = 0; i < kConnectNoPort; ++i) {
        UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in to{};
        to.sin_family = AF_INET;
        to.sin_port = htons(kConnectPort);
        ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
        observed->connect_no_port +=
            ::connect(fd.Get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0 &&
            errno == EADDRNOTAVAIL;
      }
      // As nobody, without capabilities: ports below 1024 are refused.
      if (::setgroups(0, nullptr) == 0 && ::setresgid(65534, 65534, 65534) == 0 &&
          ::setresuid(65534, 65534, 65534) == 0) {
        for (int i = 0; i < kBindDenied; ++i) {
          observed->bind_denied += TryBind(AF_INET, "0.0.0.0", kPrivilegedPort) == EACCES;
        }
      }
    };
  }

  /// A child in a network namespace of its own: EADDRINUSE there.
  ChildProcess::Setup OtherNamespaceFailures() {
    Observed* observed = observed_;
    return [observed](std::vector<UniqueFd>& keep) {
      if (::unshare(CLONE_NEWNET) != 0) {
        return;
      }
      keep.push_back(Listen("0.0.0.0", kBusyPort));
      for (int i = 0; i < kOtherNamespaceFailures; ++i) {
        observed->other_namespace += TryBind(AF_INET, "0.0.0.0", kBusyPort) == EADDRINUSE;
      }
    };
  }

  std::map<std::string, std::string> Labels(const std::string& syscall, const std::string& err,
                                            const std::string& family, uint16_t port,
                                            uint32_t netns) const {
    return {{"syscall", syscall},  {"errno", err},
            {"family", family},    {"port", std::to_string(port)},
            {"process", kProcess}, {"netns", std::to_string(netns)}};
  }

  /// The attach path in use: the info metric says it, and the start-up log line once.
  void ExpectAttach(const std::string& path) {
    Exposition metrics = Scrape();
    EXPECT_EQ(metrics.Value("portwatch_bind_events_attach_info", {{"attach", path}}), 1)
        << metrics.Text() << exporter_->Log();
    const std::string log = exporter_->Log();
    const std::string said =
        "msg=\"bind_events: counting failed bind/listen/connect calls\" "
        "attach=" +
        path;
    ASSERT_NE(log.find(said), std::string::npos) << log;
    EXPECT_EQ(log.find(said, log.find(said) + 1), std::string::npos) << log;
  }

  /// Every kind of failure, in this namespace and another: the counters equal them exactly.
  void ExpectExactCounts();

  uint32_t netns_ = 0;
  TracefsForTest tracefs_;
  Observed* observed_ = nullptr;
  std::string config_path_;
  std::unique_ptr<ExporterProcess> exporter_;
};

void BindEventsE2eTest::ExpectExactCounts() {
  ChildProcess child(kProcess, Failures());
  ASSERT_TRUE(child.Ready());
  ChildProcess elsewhere(kProcess, OtherNamespaceFailures());
  ASSERT_TRUE(elsewhere.Ready());
  // The failures really happened as planned (else the expectations below would prove nothing).
  ASSERT_EQ(observed_->bind_in_use, kBindInUse);
  ASSERT_EQ(observed_->bind_in_use6, kBindInUse6);
  ASSERT_EQ(observed_->successful_binds, kSuccessfulBinds);
  ASSERT_EQ(observed_->listen_in_use, kListenInUse);
  ASSERT_EQ(observed_->connect_no_port, kConnectNoPort);
  ASSERT_EQ(observed_->bind_denied, kBindDenied);
  ASSERT_EQ(observed_->other_namespace, kOtherNamespaceFailures);

  Exposition metrics = Scrape();
  const std::string name = "portwatch_bind_failures_total";
  EXPECT_EQ(metrics.Value(name, Labels("bind", "EADDRINUSE", "ipv4", kBusyPort, netns_)),
            kBindInUse)
      << metrics.Text();
  EXPECT_EQ(metrics.Value(name, Labels("bind", "EADDRINUSE", "ipv6", kBusyPort6, netns_)),
            kBindInUse6);
  EXPECT_EQ(metrics.Value(name, Labels("listen", "EADDRINUSE", "ipv4", kListenPort, netns_)),
            kListenInUse);
  EXPECT_EQ(metrics.Value(name, Labels("connect", "EADDRNOTAVAIL", "ipv4", kConnectPort, netns_)),
            kConnectNoPort);
  EXPECT_EQ(metrics.Value(name, Labels("bind", "EACCES", "ipv4", kPrivilegedPort, netns_)),
            kBindDenied);
  // Nothing else in this namespace: successful binds and the exporter's own calls count nothing.
  EXPECT_EQ(metrics.Sum(name, {{"netns", std::to_string(netns_)}}),
            kBindInUse + kBindInUse6 + kListenInUse + kConnectNoPort + kBindDenied)
      << metrics.Text();
  EXPECT_EQ(metrics.Sum(name, {{"port", std::to_string(kFreePort)}}), 0);
  // The default config counts every namespace: the child's own is there, under its inode.
  std::string other_netns;
  for (const auto& [key, value] : metrics.Samples()) {
    if (key.rfind(name + "{", 0) == 0 &&
        key.find("netns=\"" + std::to_string(netns_)) == std::string::npos &&
        key.find("process=\"" + std::string(kProcess)) != std::string::npos) {
      EXPECT_EQ(value, kOtherNamespaceFailures) << key;
      other_netns = key;
    }
  }
  EXPECT_NE(other_netns, "") << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "bind_events"}}), 1);

  // The log names who failed and who holds the port. It is written after the event reaches
  // user space and the holder is looked up: not necessarily before the scrape answered.
  // logfmt quotes a value only when it needs quotes: the process name is a plain token.
  const std::string failed =
      "msg=\"bind failed\" errno=EADDRINUSE process=" + std::string(kProcess) +
      " pid=" + std::to_string(child.Pid());
  const std::string held =
      "port=18080 holders=\"tcp listen by pid " + std::to_string(child.Pid()) + " (pw-bindfail";
  const std::string log = exporter_->WaitForLog(held);
  EXPECT_NE(log.find(failed), std::string::npos) << log;
  EXPECT_NE(log.find(held), std::string::npos) << log;
}

/// Whether this kernel accepts fexit programs. This project's kernels (6.18 Firecracker guests,
/// see docs/bind_events.md) refuse them, even to root; tests/vm runs this test on Debian's
/// kernel, which accepts them, with PORTWATCH_E2E_KERNEL_ALLOWS_FEXIT=1.
bool KernelAllowsFexit() {
  const char* value = std::getenv("PORTWATCH_E2E_KERNEL_ALLOWS_FEXIT");
  return value != nullptr && std::string(value) == "1";
}

/// Allows the syscall trace events too: counts on every kernel, at a cost to all processes.
constexpr const char* kAllowTracepoint =
    "collectors:\n  bind_events:\n    attach: [fexit, tracepoint]\n";

// The default attaches only where it costs nothing outside bind/listen/connect (fexit). On a
// kernel that refuses fexit it attaches nothing and says why, as a label an alert can tell from
// a missing privilege.
TEST_F(BindEventsE2eTest, DefaultAttachesOnlyWhereItCostsOthersNothing) {
  if (KernelAllowsFexit()) {
    StartExporter("");
    ExpectAttach("fexit");
    ExpectExactCounts();
    return;
  }
  StartExporter("", "", /*expect_available=*/false);
  Exposition metrics = Scrape();
  EXPECT_EQ(
      metrics.Value("portwatch_bind_events_unavailable_info", {{"cause", "fexit_unsupported"}}), 1)
      << metrics.Text() << exporter_->Log();
  const std::string log = exporter_->Log();
  EXPECT_NE(log.find("cause=fexit_unsupported"), std::string::npos) << log;
  EXPECT_NE(log.find("add tracepoint to count failures"), std::string::npos) << log;
  // Nothing attached: failures go uncounted.
  ChildProcess child(kProcess, Failures());
  ASSERT_TRUE(child.Ready());
  ASSERT_EQ(observed_->bind_in_use, kBindInUse);
  EXPECT_EQ(Scrape().Sum("portwatch_bind_failures_total"), 0);
}

// Allowing the trace events: fexit where the kernel takes it, else syscalls:sys_exit_*; the
// exporter mounts tracefs if it is missing.
TEST_F(BindEventsE2eTest, CountersEqualTheFailuresExactly) {
  StartExporter(kAllowTracepoint);
  ExpectAttach(KernelAllowsFexit() ? "fexit" : "tracepoint");
  ExpectExactCounts();
}

// The last resort (kernels without syscall trace events or tracefs) counts the same.
TEST_F(BindEventsE2eTest, RawTracepointFallbackCountsTheSame) {
  StartExporter("collectors:\n  bind_events:\n    attach: [raw_tracepoint]\n");
  ExpectAttach("raw_tracepoint");
  ExpectExactCounts();
}

TEST_F(BindEventsE2eTest, OwnNamespaceOnly) {
  StartExporter(std::string(kAllowTracepoint) + "    namespaces: own\n");
  ChildProcess elsewhere(kProcess, OtherNamespaceFailures());
  ASSERT_TRUE(elsewhere.Ready());
  ChildProcess child(kProcess, Failures());
  ASSERT_TRUE(child.Ready());
  ASSERT_EQ(observed_->other_namespace, kOtherNamespaceFailures);
  ASSERT_EQ(observed_->bind_in_use, kBindInUse);
  Exposition metrics = Scrape();
  const std::string name = "portwatch_bind_failures_total";
  EXPECT_EQ(metrics.Sum(name, {{"process", kProcess}}),
            kBindInUse + kBindInUse6 + kListenInUse + kConnectNoPort + kBindDenied)
      << metrics.Text();
  EXPECT_EQ(metrics.Sum(name, {{"netns", std::to_string(netns_)}}),
            kBindInUse + kBindInUse6 + kListenInUse + kConnectNoPort + kBindDenied);
}

TEST_F(BindEventsE2eTest, WithoutPrivilegeTheRestRuns) {
  StartExporter(kAllowTracepoint, "/usr/bin/setpriv", /*expect_available=*/false);
  ChildProcess child(kProcess, Failures());
  ASSERT_TRUE(child.Ready());
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Sum("portwatch_bind_failures_total"), 0);
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "bind_events"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_sockets", {{"family", "ipv4"},
                                                {"port", std::to_string(kBusyPort)},
                                                {"protocol", "tcp"},
                                                {"state", "listen"}}),
            1);
  // Said once, with the reason.
  const std::string log = exporter_->Log();
  const std::string said = "msg=\"bind_events: eBPF unavailable";
  ASSERT_NE(log.find(said), std::string::npos) << log;
  EXPECT_EQ(log.find(said, log.find(said) + 1), std::string::npos) << log;
  EXPECT_NE(log.find("Operation not permitted"), std::string::npos) << log;
  EXPECT_EQ(metrics.Value("portwatch_bind_events_unavailable_info", {{"cause", "no_permission"}}),
            1)
      << metrics.Text();
}

}  // namespace
}  // namespace portwatch::testing
