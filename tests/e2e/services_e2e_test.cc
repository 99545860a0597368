// End to end: prediction must equal reality. Each case builds a situation in a private network
// namespace, scrapes the real exporter, then really attempts bind() with and without
// SO_REUSEADDR and checks that portwatch predicted the outcome.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
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
constexpr uint16_t kServicePort = 8080;

/// One bind attempt's real outcome, as "free" or "blocked".
std::string Outcome(bool bound) { return bound ? "free" : "blocked"; }

/// A listener that accepts and at once closes every connection (the server closes first, so
/// TIME_WAIT lands on the service port), up to `connections` of them.
ChildProcess::Setup ClosingListener(bool reuse_address) {
  return [=](std::vector<UniqueFd>& keep) {
    keep.push_back(Bind(SOCK_STREAM, "0.0.0.0", kServicePort, reuse_address));
    ::listen(keep.back().Get(), 16);
  };
}

ChildProcess::Setup CloseEachConnection(int connections) {
  return [=](std::vector<UniqueFd>& keep) {
    for (int i = 0; i < connections; ++i) {
      UniqueFd connection = Accept(keep.front());
    }
  };
}

void MakeServerCloseFirst(int connections) {
  for (int i = 0; i < connections; ++i) {
    UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", kServicePort);
    ASSERT_TRUE(client.Valid());
    ASSERT_TRUE(CloseAfterPeer(std::move(client))) << std::strerror(errno);
  }
}

class ServicesE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    config_path_ =
        ::testing::TempDir() + "/portwatch-services-" + std::to_string(::getpid()) + ".yaml";
  }
  void TearDown() override { ::unlink(config_path_.c_str()); }

  /// Starts the exporter with one service "svc" (owner: processes named "svc-instance", unless
  /// `owner_fields` names another).
  void StartExporter(const std::string& service_fields = "",
                     const std::string& owner_fields = "      process: svc-instance\n") {
    std::ofstream(config_path_) << "collectors:\n  sockets:\n    backend: " << backend_ << "\n"
                                << "services:\n"
                                   "  - name: svc\n"
                                   "    port: "
                                << kServicePort << "\n"
                                << service_fields << "    owner:\n"
                                << owner_fields;
    exporter_ = std::make_unique<ExporterProcess>(
        PORTWATCH_EXPORTER_BINARY,
        std::vector<std::string>{"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort),
                                 "--config.file=" + config_path_});
    ASSERT_TRUE(exporter_->WaitReady(kExporterPort)) << exporter_->Log();
  }

  Exposition Scrape() {
    HttpResponse response = HttpRequest(kExporterPort, "GET", "/metrics");
    EXPECT_EQ(response.status, 200) << response.error << "\nexporter log:\n" << exporter_->Log();
    return Exposition(response.body);
  }

  /// Whether the BPF socket iterators read the sockets (their records carry every socket's
  /// SO_REUSEADDR), rather than sock_diag.
  static bool IteratorsRead(const Exposition& metrics) {
    return metrics.Value("portwatch_socket_table_backend",
                         {{"backend", "bpf"}, {"protocol", "tcp"}}) == 1;
  }

  /// The predicted result for one SO_REUSEADDR setting: the label whose sample is 1.
  static std::string Predicted(const Exposition& metrics, bool reuse_address) {
    std::string predicted;
    for (const char* result : {"free", "blocked", "unknown"}) {
      if (metrics.Value("portwatch_service_bind_prediction",
                        {{"result", result},
                         {"service", "svc"},
                         {"so_reuseaddr", reuse_address ? "true" : "false"}}) == 1) {
        predicted += result;
      }
    }
    return predicted;
  }

  /// Scrapes, runs `diagnose`, then binds for real, and checks that both predictions came true
  /// in the metrics and in the one-shot report. Through sock_diag the one-shot run remembers no
  /// earlier listener, so where only memory knows the answer it says `diagnose_reuse`
  /// ("unknown"); through the iterators (the same config, so the same backend) it is exact.
  void ExpectPredictionsComeTrue(int type, const std::string& address,
                                 const std::string& expected_plain,
                                 const std::string& expected_reuse, bool v6only = true,
                                 const std::string& diagnose_reuse = "") {
    Exposition metrics = Scrape();
    std::string report;
    const int status =
        RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.file=" + config_path_, "diagnose",
                    std::to_string(kServicePort), "--output=json",
                    std::string("--protocol=") + (type == SOCK_DGRAM ? "udp" : "tcp")},
                   report);
    const nlohmann::json diagnosis = nlohmann::json::parse(report, nullptr, false);
    ASSERT_FALSE(diagnosis.is_discarded()) << report;
    const std::string predicted_plain = Predicted(metrics, false);
    const std::string predicted_reuse = Predicted(metrics, true);
    const std::string actual_plain =
        Outcome(Bind(type, address, kServicePort, /*reuse_address=*/false, v6only).Valid());
    const std::string actual_reuse =
        Outcome(Bind(type, address, kServicePort, /*reuse_address=*/true, v6only).Valid());
    EXPECT_EQ(predicted_plain, actual_plain) << "without SO_REUSEADDR\n" << metrics.Text();
    EXPECT_EQ(predicted_reuse, actual_reuse) << "with SO_REUSEADDR\n" << metrics.Text();
    // The cases are built so the outcome is known; a wrong build must not pass silently.
    EXPECT_EQ(actual_plain, expected_plain);
    EXPECT_EQ(actual_reuse, expected_reuse);
    EXPECT_EQ(diagnosis["bind"]["without_so_reuseaddr"]["result"], actual_plain) << report;
    EXPECT_EQ(diagnosis["bind"]["with_so_reuseaddr"]["result"],
              diagnose_reuse.empty() || IteratorsRead(metrics) ? actual_reuse : diagnose_reuse)
        << report;
    EXPECT_EQ(status, actual_plain == "free" ? 0 : 1) << report;
  }

  static ChildProcess::Setup Listening(const std::string& address, bool reuse_address,
                                       bool v6only = true) {
    return [=](std::vector<UniqueFd>& keep) {
      keep.push_back(Bind(SOCK_STREAM, address, kServicePort, reuse_address, v6only));
      ::listen(keep.back().Get(), 16);
    };
  }

  /// A restart while `connections` TIME_WAIT sockets left by a listener with or without
  /// SO_REUSEADDR remain, the exporter having seen that listener alive.
  void RestartDuringTimeWait(bool listener_reuse, int connections) {
    {
      ChildProcess old_instance("svc-instance", ClosingListener(listener_reuse),
                                CloseEachConnection(connections));
      ASSERT_TRUE(old_instance.Ready());
      StartExporter();
      MakeServerCloseFirst(connections);
      // portwatch sees the old listener (through sock_diag it learns its SO_REUSEADDR so).
      EXPECT_EQ(Scrape().Value("portwatch_service_up", {{"service", "svc"}}), 1);
    }
    Exposition metrics = Scrape();
    EXPECT_EQ(IteratorsRead(metrics), backend_ != "netlink") << metrics.Text();
    EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 0);
    EXPECT_EQ(
        metrics.Value("portwatch_service_sockets", {{"service", "svc"}, {"state", "time_wait"}}),
        connections)
        << metrics.Text();
    if (!listener_reuse) {
      EXPECT_EQ(
          metrics.Value("portwatch_service_bind_blockers",
                        {{"service", "svc"}, {"so_reuseaddr", "true"}, {"state", "time_wait"}}),
          connections);
    }
    const std::optional<double> remaining =
        metrics.Value("portwatch_service_time_wait_remaining_seconds", {{"service", "svc"}});
    ASSERT_TRUE(remaining.has_value());
    EXPECT_GT(*remaining, 50);
    EXPECT_LE(*remaining, 60);
    // Without SO_REUSEADDR on the old listener, the classic trap: SO_REUSEADDR on the restart
    // does not help.
    ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked",
                              listener_reuse ? "free" : "blocked", true, "unknown");
  }

  /// A restart after the listener died before the exporter started: only the TIME_WAIT sockets'
  /// own flags can tell.
  void RestartAfterAListenerPortwatchNeverSaw(bool listener_reuse) {
    {
      ChildProcess old_instance("svc-instance", ClosingListener(listener_reuse),
                                CloseEachConnection(2));
      ASSERT_TRUE(old_instance.Ready());
      MakeServerCloseFirst(2);
    }
    StartExporter();
    ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked",
                              listener_reuse ? "free" : "blocked", true, "unknown");
  }

  std::string backend_ = "auto";
  std::string config_path_;
  std::unique_ptr<ExporterProcess> exporter_;
};

TEST_F(ServicesE2eTest, ExpectedListenerDownMeansFree) {
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 0);
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 0);
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", {{"service", "svc"}}), 0);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "free", "free");
}

TEST_F(ServicesE2eTest, ForeignProcessHoldsThePort) {
  ChildProcess squatter("squatter", Listening("0.0.0.0", true));
  ASSERT_TRUE(squatter.Ready());
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 0);
  EXPECT_EQ(
      metrics.Value("portwatch_service_conflict", {{"holder", "squatter"}, {"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "0.0.0.0"},
                                                      {"family", "ipv4"},
                                                      {"port", "8080"},
                                                      {"process", "squatter"},
                                                      {"protocol", "tcp"}}),
            1);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

/// One listening SO_REUSEPORT socket on the service port, kept in `keep` (none when bind fails).
void ReusePortListener(std::vector<UniqueFd>& keep) {
  if (UniqueFd fd = ReusePortListen("0.0.0.0", kServicePort); fd.Valid()) {
    keep.push_back(std::move(fd));
  }
}

/// A master that forks `workers` workers, each opening its own SO_REUSEPORT listener (the
/// master holds none: a Node.js cluster with reusePort), and returns once all listen. Workers
/// die with the master.
ChildProcess::Setup ForkReusePortWorkers(int workers) {
  return [workers](std::vector<UniqueFd>& /*keep*/) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) {
      return;
    }
    for (int i = 0; i < workers; ++i) {
      if (::fork() == 0) {
        ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
        std::vector<UniqueFd> worker_keep;
        ReusePortListener(worker_keep);
        const char byte = worker_keep.empty() ? 0 : 1;
        (void)::write(ready[1], &byte, 1);
        while (true) {
          ::pause();
        }
      }
    }
    for (int i = 0; i < workers; ++i) {
      pollfd wanted{ready[0], POLLIN, 0};
      char byte = 0;
      if (::poll(&wanted, 1, 10000) != 1 || ::read(ready[0], &byte, 1) != 1) {
        break;
      }
    }
  };
}

TEST_F(ServicesE2eTest, TwoReusePortInstancesAreDuplicates) {
  // The kernel puts both in one SO_REUSEPORT group (same user, address, port): still two copies.
  ChildProcess first("svc-instance", ReusePortListener);
  ChildProcess second("svc-instance", ReusePortListener);
  ASSERT_TRUE(first.Ready() && second.Ready());
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 2);
  EXPECT_EQ(metrics.Value("portwatch_service_listening_sockets", {{"service", "svc"}}), 2);
  EXPECT_EQ(metrics.Value("portwatch_service_expected_instances", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Sum("portwatch_service_conflict"), 0);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, AnSoReusePortGroupOfOneProcessIsOneInstance) {
  ChildProcess server("svc-instance", [](std::vector<UniqueFd>& keep) {
    for (int thread = 0; thread < 3; ++thread) {
      ReusePortListener(keep);
    }
  });
  ASSERT_TRUE(server.Ready());
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_listening_sockets", {{"service", "svc"}}), 3);
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", {{"service", "svc"}}), 1);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, SoReusePortWorkersForkedByOneMasterAreOneInstance) {
  ChildProcess master("svc-instance", ForkReusePortWorkers(3));
  ASSERT_TRUE(master.Ready());
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_listening_sockets", {{"service", "svc"}}), 3);
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", {{"service", "svc"}}), 4);
  EXPECT_EQ(metrics.Sum("portwatch_service_conflict"), 0);
  // `diagnose` sees one instance too: no duplicate to stop, nothing that failed to bind.
  std::string report;
  RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.file=" + config_path_, "diagnose",
              std::to_string(kServicePort), "--output=json"},
             report);
  EXPECT_EQ(report.find("duplicate"), std::string::npos) << report;
  EXPECT_NE(report.find("the service is running"), std::string::npos) << report;
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, SecondInstanceThatFailedToBindShowsAsMatchingButNotOwning) {
  ChildProcess running("svc-instance", Listening("0.0.0.0", false));
  ASSERT_TRUE(running.Ready());
  ChildProcess failed("svc-instance", [](std::vector<UniqueFd>& keep) {
    keep.push_back(Bind(SOCK_STREAM, "0.0.0.0", kServicePort));  // fails: EADDRINUSE
  });
  ASSERT_TRUE(failed.Ready());
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_service_matching_processes", {{"service", "svc"}}), 2);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, RestartDuringTimeWaitAfterAListenerWithSoReuseaddr) {
  RestartDuringTimeWait(/*listener_reuse=*/true, 3);
}

TEST_F(ServicesE2eTest, RestartDuringTimeWaitAfterAListenerWithoutSoReuseaddr) {
  RestartDuringTimeWait(/*listener_reuse=*/false, 2);
}

TEST_F(ServicesE2eTest, RestartDuringTimeWaitThroughSockDiagRemembersTheListener) {
  backend_ = "netlink";
  RestartDuringTimeWait(/*listener_reuse=*/false, 2);
}

TEST_F(ServicesE2eTest, TimeWaitFromAListenerPortwatchNeverSawIsUnknownThroughSockDiag) {
  backend_ = "netlink";
  {
    ChildProcess old_instance("svc-instance", ClosingListener(/*reuse_address=*/false),
                              CloseEachConnection(1));
    ASSERT_TRUE(old_instance.Ready());
    MakeServerCloseFirst(1);
  }
  StartExporter();
  Exposition metrics = Scrape();
  EXPECT_EQ(Predicted(metrics, false), "blocked");
  EXPECT_EQ(Predicted(metrics, true), "unknown");
}

// The question the product grew from, answered without having seen the old listener: the
// TIME_WAIT sockets carry its SO_REUSEADDR, and the iterators read it.
TEST_F(ServicesE2eTest, TimeWaitFromAListenerWithoutSoReuseaddrPortwatchNeverSawIsBlocked) {
  backend_ = "bpf";
  RestartAfterAListenerPortwatchNeverSaw(/*listener_reuse=*/false);
}

TEST_F(ServicesE2eTest, TimeWaitFromAListenerWithSoReuseaddrPortwatchNeverSawIsFree) {
  backend_ = "bpf";
  RestartAfterAListenerPortwatchNeverSaw(/*listener_reuse=*/true);
}

TEST_F(ServicesE2eTest, PortInsideTheEphemeralRangeThenReserved) {
  ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_port_range", "8000 8999"), "");
  StartExporter();
  EXPECT_EQ(Scrape().Value("portwatch_service_port_in_ephemeral_range", {{"service", "svc"}}), 1);
  ASSERT_EQ(WriteSysctl("net/ipv4/ip_local_reserved_ports", "8080"), "");
  EXPECT_EQ(Scrape().Value("portwatch_service_port_in_ephemeral_range", {{"service", "svc"}}), 0);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "free", "free");
}

TEST_F(ServicesE2eTest, BoundButNotListeningSocketBlocksUnlessBothSetSoReuseaddr) {
  ChildProcess bound_only("svc-instance", [](std::vector<UniqueFd>& keep) {
    keep.push_back(Bind(SOCK_STREAM, "0.0.0.0", kServicePort, /*reuse_address=*/true));
  });
  ASSERT_TRUE(bound_only.Ready());
  StartExporter();
  EXPECT_EQ(Scrape().Value("portwatch_service_sockets", {{"service", "svc"}, {"state", "unconn"}}),
            1);
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "free");
}

TEST_F(ServicesE2eTest, BoundButNotListeningWithoutSoReuseaddrBlocksBoth) {
  ChildProcess bound_only("svc-instance", [](std::vector<UniqueFd>& keep) {
    keep.push_back(Bind(SOCK_STREAM, "0.0.0.0", kServicePort, /*reuse_address=*/false));
  });
  ASSERT_TRUE(bound_only.Ready());
  StartExporter();
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, Ipv6OnlyWildcardLeavesIpv4Free) {
  ChildProcess v6("svc-instance", Listening("::", false, /*v6only=*/true));
  ASSERT_TRUE(v6.Ready());
  StartExporter();
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "free", "free");
}

TEST_F(ServicesE2eTest, DualStackWildcardBlocksIpv4) {
  ChildProcess v6("svc-instance", Listening("::", false, /*v6only=*/false));
  ASSERT_TRUE(v6.Ready());
  StartExporter();
  ExpectPredictionsComeTrue(SOCK_STREAM, "0.0.0.0", "blocked", "blocked");
}

TEST_F(ServicesE2eTest, Ipv6ServiceAgainstAnIpv4Holder) {
  ChildProcess v4("squatter", Listening("0.0.0.0", false));
  ASSERT_TRUE(v4.Ready());
  StartExporter("    address: \"::\"\n");
  // A dual-stack [::] bind collides with 0.0.0.0; a V6ONLY one would not (not configured here).
  ExpectPredictionsComeTrue(SOCK_STREAM, "::", "blocked", "blocked", /*v6only=*/false);
}

TEST_F(ServicesE2eTest, UdpHolderWithAndWithoutSoReuseaddr) {
  {
    ChildProcess holder("svc-instance", [](std::vector<UniqueFd>& keep) {
      keep.push_back(Bind(SOCK_DGRAM, "0.0.0.0", kServicePort, /*reuse_address=*/true));
    });
    ASSERT_TRUE(holder.Ready());
    StartExporter("    protocol: udp\n");
    EXPECT_EQ(Scrape().Value("portwatch_service_up", {{"service", "svc"}}), 1);
    ExpectPredictionsComeTrue(SOCK_DGRAM, "0.0.0.0", "blocked", "free");
    exporter_.reset();
  }
  ChildProcess holder("svc-instance", [](std::vector<UniqueFd>& keep) {
    keep.push_back(Bind(SOCK_DGRAM, "0.0.0.0", kServicePort, /*reuse_address=*/false));
  });
  ASSERT_TRUE(holder.Ready());
  StartExporter("    protocol: udp\n");
  ExpectPredictionsComeTrue(SOCK_DGRAM, "0.0.0.0", "blocked", "blocked");
}

/// A Java classpath of 2,000 jars: 112 KB in one argument (the kernel allows 128 KiB per
/// argument), without "openhab" in it.
std::string LongClasspath() {
  std::string classpath;
  for (int jar = 0; jar < 2000; ++jar) {
    classpath += (jar == 0 ? "" : ":") + std::string("/usr/share/java/app-libs/library-module-") +
                 std::to_string(10000 + jar) + "-1.0.0.jar";
  }
  return classpath;
}

/// For ChildProcess's `serve`: once ready, the child becomes /bin/sh with `argv` (argv[0]
/// included), the sockets it opened inherited from fd 3 on, waiting forever in `read` on a pipe
/// whose write end it holds itself. A stand-in for a Java service with a long command line.
ChildProcess::Setup ExecShell(const std::vector<std::string>& argv) {
  // Built before fork(): the child only juggles fds and execs.
  auto strings = std::make_shared<std::vector<std::string>>(argv);
  auto pointers = std::make_shared<std::vector<char*>>();
  for (std::string& arg : *strings) {
    pointers->push_back(arg.data());
  }
  pointers->push_back(nullptr);
  return [strings, pointers](std::vector<UniqueFd>& keep) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
      return;
    }
    // Sources first moved above every target, so no dup2() clobbers another's source; dup2()
    // clears FD_CLOEXEC on the target only.
    std::vector<int> sources = {pipe_fds[0], pipe_fds[1]};
    for (const UniqueFd& fd : keep) {
      sources.push_back(fd.Get());
    }
    std::vector<int> high;
    for (int fd : sources) {
      high.push_back(::fcntl(fd, F_DUPFD_CLOEXEC, 100));
    }
    ::dup2(high[0], 0);  // stdin: the read end
    for (size_t i = 2; i < high.size(); ++i) {
      ::dup2(high[i], static_cast<int>(i + 1));  // sockets: 3, 4, ...
    }
    ::dup2(high[1], static_cast<int>(high.size() + 1));  // the write end, after them
    ::execv("/bin/sh", pointers->data());
  };
}

/// Waits (up to 10 s) until /proc/<pid>/cmdline is longer than `size` bytes, i.e. the child
/// has exec'd; returns the length last seen.
size_t WaitForCmdlineLongerThan(pid_t pid, size_t size) {
  size_t length = 0;
  for (int attempt = 0; attempt < 1000 && length <= size; ++attempt) {
    if (attempt > 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    length = text.str().size();
  }
  return length;
}

TEST_F(ServicesE2eTest, OwnerCmdlineMatchesAtTheEndOfA100KbCommandLine) {
  // Found on real nodes: `cmdline: "openhab.*"` against a Java command line of 80 KB overflowed
  // std::regex's stack (SIGSEGV on the first scrape). The holder of the port says "openhab"
  // only in its last argument, after 112 KB; another process says it first, so that `.*` runs
  // over the whole classpath (the crash), and holds nothing on the port.
  const std::string classpath = LongClasspath();
  ChildProcess holder(
      "openhab-holder", Listening("0.0.0.0", false),
      ExecShell({"java", "-c", "read -r _", "-Xmx2g", "-cp", classpath, "openhab"}));
  ChildProcess other(
      "openhab-other", [](std::vector<UniqueFd>&) {},
      ExecShell({"java", "-c", "read -r _", "-Dopenhab.home=/srv/openhab", "-cp", classpath,
                 "org.example.Main"}));
  ASSERT_TRUE(holder.Ready() && other.Ready());
  ASSERT_GT(WaitForCmdlineLongerThan(holder.Pid(), 100 * 1024), 100U * 1024);
  ASSERT_GT(WaitForCmdlineLongerThan(other.Pid(), 100 * 1024), 100U * 1024);

  StartExporter("", "      cmdline: \"openhab.*\"\n");
  for (int scrape = 0; scrape < 2; ++scrape) {  // a full /proc pass, then the cached holder
    Exposition metrics = Scrape();
    EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "svc"}}), 1) << metrics.Text();
    EXPECT_EQ(metrics.Value("portwatch_service_owner_processes", {{"service", "svc"}}), 1);
    // At least both children: the /proc pass sees every process of the machine.
    EXPECT_GE(metrics.Value("portwatch_service_matching_processes", {{"service", "svc"}}), 2);
    EXPECT_EQ(metrics.Sum("portwatch_service_conflict"), 0);
    // The label names the comm (after exec, "sh"), never the command line.
    EXPECT_EQ(metrics.Value("portwatch_listener_info", {{"address", "0.0.0.0"},
                                                        {"family", "ipv4"},
                                                        {"port", "8080"},
                                                        {"process", "sh"},
                                                        {"protocol", "tcp"}}),
              1);
  }
  EXPECT_TRUE(exporter_->Signal(0)) << "the exporter died:\n" << exporter_->Log();

  // The one-shot report names the holder by its first 256 bytes of command line.
  std::string report;
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.file=" + config_path_, "diagnose",
                        std::to_string(kServicePort)},
                       report),
            1)
      << report;
  const std::string shown = "java -c read -r _ -Xmx2g -cp " + classpath.substr(0, 256 - 29) + "...";
  EXPECT_NE(report.find(": " + shown + "  [owner]\n"), std::string::npos) << report;
  EXPECT_LT(report.size(), 4096U) << report;
}

}  // namespace
}  // namespace portwatch::testing
