// End to end: the daemon's own behaviour (listening, restart, reload, endpoints, flags), each
// test in a fresh private network namespace with the real binary.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

constexpr uint16_t kPort = 9792;
const std::string kListen = "--web.listen-address=127.0.0.1:" + std::to_string(kPort);

class DaemonE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    config_path_ =
        ::testing::TempDir() + "/portwatch-daemon-" + std::to_string(::getpid()) + ".yaml";
  }
  void TearDown() override { ::unlink(config_path_.c_str()); }

  void WriteConfig(const std::string& text) { std::ofstream(config_path_) << text; }

  /// Polls the scrape until `name` has `value` (bounded, 5 s); returns the last value seen.
  std::optional<double> WaitForValue(const std::string& name, double value) {
    std::optional<double> seen;
    for (int attempt = 0; attempt < 50; ++attempt) {
      seen = Exposition(HttpRequest(kPort, "GET", "/metrics").body).Value(name);
      if (seen == value) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return seen;
  }

  std::string config_path_;
};

TEST_F(DaemonE2eTest, PortTakenExitsNonZeroNamingTheHolder) {
  UniqueFd squatter = Listen("127.0.0.1", kPort);
  ASSERT_TRUE(squatter.Valid());
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen});
  // Finding the holder reads every process's fds, like `ss -p`: slow on a host with many.
  EXPECT_EQ(exporter.WaitExit(60), 1);
  const std::string log = exporter.Log();
  EXPECT_NE(log.find("Address already in use: port 9792 is held by pid " +
                     std::to_string(::getpid()) + " (e2e_test"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("sockets on the port: 1 listen"), std::string::npos) << log;
}

TEST_F(DaemonE2eTest, PortTakenMessageLeavesOutCommandLinesWhenPrivacyAsks) {
  UniqueFd squatter = Listen("127.0.0.1", kPort);
  ASSERT_TRUE(squatter.Valid());
  WriteConfig("privacy:\n  command_lines: false\n");
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen, "--config.file=" + config_path_});
  EXPECT_EQ(exporter.WaitExit(60), 1);
  const std::string log = exporter.Log();
  // "(e2e_test)": the process name, closed at once, where it would go on ": /path/e2e_test ...".
  EXPECT_NE(log.find("port 9792 is held by pid " + std::to_string(::getpid()) + " (e2e_test)"),
            std::string::npos)
      << log;
  EXPECT_EQ(log.find("(e2e_test: "), std::string::npos) << log;
}

TEST_F(DaemonE2eTest, RestartsAtOnceDespiteItsOwnServerSideTimeWait) {
  {
    ExporterProcess first(PORTWATCH_EXPORTER_BINARY, {kListen});
    ASSERT_TRUE(first.WaitReady(kPort)) << first.Log();
    // HTTP/1.0: the server closes first, so every scrape leaves TIME_WAIT on the server port.
    for (int i = 0; i < 3; ++i) {
      ASSERT_EQ(HttpRequest(kPort, "GET", "/metrics").status, 200);
    }
    EXPECT_EQ(first.Stop(), 0) << "SIGTERM should shut down cleanly\n" << first.Log();
  }
  // Control: the TIME_WAIT left behind blocks a bind without SO_REUSEADDR...
  EXPECT_FALSE(Bind(SOCK_STREAM, "127.0.0.1", kPort, /*reuse_address=*/false).Valid());
  // ...but not the exporter, whose listener sets SO_REUSEADDR (and so did the old one, whose
  // flag the TIME_WAIT sockets inherited).
  ExporterProcess second(PORTWATCH_EXPORTER_BINARY, {kListen});
  ASSERT_TRUE(second.WaitReady(kPort)) << second.Log();
  Exposition metrics(HttpRequest(kPort, "GET", "/metrics").body);
  EXPECT_GE(
      metrics.Sum("portwatch_sockets", {{"port", std::to_string(kPort)}, {"state", "time_wait"}}),
      4);
}

TEST_F(DaemonE2eTest, BadReloadKeepsTheOldConfigAndSaysSo) {
  WriteConfig("collectors:\n  sockets:\n    protocols: [tcp, udp]\n");
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {kListen, "--config.file=" + config_path_, "--web.enable-lifecycle"});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  EXPECT_EQ(WaitForValue("portwatch_config_last_reload_successful", 1), 1);

  WriteConfig("collectors:\n  sockets:\n    protocols: [tcp, sctp]\n");
  ASSERT_TRUE(exporter.Signal(SIGHUP));
  EXPECT_EQ(WaitForValue("portwatch_config_last_reload_successful", 0), 0);
  Exposition metrics(HttpRequest(kPort, "GET", "/metrics").body);
  // Still the old config: UDP is still read.
  EXPECT_EQ(metrics.Value("portwatch_sock_diag_table_available",
                          {{"family", "ipv4"}, {"protocol", "udp"}}),
            1);
  HttpResponse rejected = HttpRequest(kPort, "POST", "/-/reload");
  EXPECT_EQ(rejected.status, 500);
  EXPECT_NE(rejected.body.find(config_path_ + ":3:22: collectors.sockets.protocols entries must "
                                              "be one of tcp, udp, got \"sctp\""),
            std::string::npos)
      << rejected.body;
  EXPECT_NE(exporter.Log().find("config reload failed, keeping the previous config"),
            std::string::npos);

  WriteConfig("collectors:\n  sockets:\n    protocols: [tcp]\n");
  EXPECT_EQ(HttpRequest(kPort, "POST", "/-/reload").status, 200);
  metrics = Exposition(HttpRequest(kPort, "GET", "/metrics").body);
  EXPECT_EQ(metrics.Value("portwatch_config_last_reload_successful"), 1);
  EXPECT_FALSE(metrics.Value("portwatch_sock_diag_table_available",
                             {{"family", "ipv4"}, {"protocol", "udp"}}));
  EXPECT_EQ(metrics.Value("portwatch_sock_diag_table_available",
                          {{"family", "ipv4"}, {"protocol", "tcp"}}),
            1);
}

TEST_F(DaemonE2eTest, RefusesToStartOnABadConfigNamingFileLineAndColumn) {
  WriteConfig("collectors:\n  sockets:\n    max_port_series: lots\n");
  std::string output;
  EXPECT_EQ(
      RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.check", "--config.file=" + config_path_},
                 output),
      1);
  EXPECT_NE(output.find(config_path_ +
                        ":3:22: collectors.sockets.max_port_series must be an integer, got "
                        "\"lots\""),
            std::string::npos)
      << output;
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen, "--config.file=" + config_path_});
  EXPECT_EQ(exporter.WaitExit(10), 1);

  WriteConfig("collectors:\n  sockets:\n    max_port_series: 50\n");
  EXPECT_EQ(
      RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.check", "--config.file=" + config_path_},
                 output),
      0);
  EXPECT_EQ(output, config_path_ + ": config OK\n");
}

TEST_F(DaemonE2eTest, ServesLandingHealthReadyAndACustomTelemetryPath) {
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen, "--web.telemetry-path=/m"});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  HttpResponse landing = HttpRequest(kPort, "GET", "/");
  EXPECT_EQ(landing.status, 200);
  EXPECT_NE(landing.body.find("<a href=\"/m\">"), std::string::npos) << landing.body;
  EXPECT_NE(landing.body.find(std::string("Version ") + PORTWATCH_VERSION + "."), std::string::npos)
      << landing.body;
  EXPECT_EQ(HttpRequest(kPort, "GET", "/-/healthy").body, "Healthy\n");
  EXPECT_EQ(HttpRequest(kPort, "GET", "/-/ready").body, "Ready\n");
  EXPECT_EQ(HttpRequest(kPort, "GET", "/-/reload").status, 405);
  EXPECT_EQ(HttpRequest(kPort, "GET", "/nothing-here").status, 404);
  EXPECT_EQ(HttpRequest(kPort, "GET", "/metrics").status, 404);
  HttpResponse metrics = HttpRequest(kPort, "GET", "/m");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_EQ(Exposition(metrics.body)
                .Value("portwatch_build_info", {{"compiler", "gcc " __VERSION__},
                                                {"revision", PORTWATCH_REVISION},
                                                {"version", PORTWATCH_VERSION}}),
            1);
}

TEST_F(DaemonE2eTest, LiveScrapePassesPromtoolCheckMetrics) {
  UniqueFd listener = Listen("::1", 5001);
  UniqueFd udp = Bind(SOCK_DGRAM, "127.0.0.1", 5353);
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  HttpResponse metrics = HttpRequest(kPort, "GET", "/metrics");
  ASSERT_EQ(metrics.status, 200);
  const std::string path = ::testing::TempDir() + "/portwatch-scrape.prom";
  std::ofstream(path) << metrics.body;
  std::string output;
  EXPECT_EQ(RunCommand({"sh", "-c", "promtool check metrics < " + path}, output), 0) << output;
  EXPECT_EQ(output, "");
  ::unlink(path.c_str());
}

TEST_F(DaemonE2eTest, ConcurrentScrapesAllAnswerWithTheSameCounts) {
  UniqueFd listener = Listen("127.0.0.1", 5000);
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  constexpr int kScrapers = 8;
  std::vector<HttpResponse> responses(kScrapers);
  std::vector<std::thread> scrapers;
  for (int i = 0; i < kScrapers; ++i) {
    scrapers.emplace_back(
        [&responses, i] { responses[i] = HttpRequest(kPort, "GET", "/metrics"); });
  }
  for (std::thread& scraper : scrapers) {
    scraper.join();
  }
  for (const HttpResponse& response : responses) {
    ASSERT_EQ(response.status, 200) << response.error;
    Exposition metrics(response.body);
    EXPECT_EQ(metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}), 1);
    EXPECT_EQ(metrics.Value(
                  "portwatch_sockets",
                  {{"family", "ipv4"}, {"port", "5000"}, {"protocol", "tcp"}, {"state", "listen"}}),
              1);
  }
}

TEST_F(DaemonE2eTest, VersionAndHelpFollowExporterConventions) {
  std::string output;
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, "--version"}, output), 0);
  EXPECT_EQ(output, std::string("portwatch_exporter ") + PORTWATCH_VERSION + "\n");
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, "--help"}, output), 0);
  for (const char* flag :
       {"--web.listen-address", "--web.telemetry-path", "--config.file", "--config.check",
        "--log.level", "--collector.sockets", "--no-collector.sockets", "--collector.netstat",
        "--collector.kernel_limits"}) {
    EXPECT_NE(output.find(flag), std::string::npos) << flag;
  }
  EXPECT_EQ(RunCommand({PORTWATCH_EXPORTER_BINARY, "--no-such-flag"}, output), 109);
}

/// Each thread's capability sets of `pid`, as /proc/<pid>/task/<tid>/status prints them
/// ("CapEff:\t00000000000800c4"), one string per thread.
std::vector<std::string> ThreadCapabilities(pid_t pid) {
  std::vector<std::string> threads;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::ifstream status(task.path() / "status");
    std::string sets;
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("Cap", 0) == 0) {
        sets += line + " ";
      }
    }
    threads.push_back(sets);
  }
  return threads;
}

TEST_F(DaemonE2eTest, EveryThreadKeepsOnlyTheCapabilitiesOfTheEnabledCollectors) {
  // Run as root: the exporter starts with every capability and must drop all but the services
  // collector's four (bind_events is off, sockets are read through sock_diag: CAP_BPF and
  // CAP_PERFMON stay for the socket-owner walk alone) from every set of every thread, bounding
  // set included.
  const std::string config =
      ::testing::TempDir() + "/portwatch-caps-" + std::to_string(::getpid()) + ".yaml";
  std::ofstream(config) << "collectors:\n  sockets:\n    backend: netlink\n"
                        << "services:\n  - name: self\n    port: " << kPort << "\n";
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {kListen, "--no-collector.bind_events", "--config.file=" + config});
  const bool ready = exporter.WaitReady(kPort);
  ::unlink(config.c_str());
  ASSERT_TRUE(ready) << exporter.Log();
  // CAP_DAC_READ_SEARCH bit 2, CAP_SYS_PTRACE bit 19, CAP_PERFMON bit 38, CAP_BPF bit 39.
  const std::string kept = "000000c000080004";
  const std::string expected = "CapInh:\t0000000000000000 CapPrm:\t" + kept + " CapEff:\t" + kept +
                               " CapBnd:\t" + kept + " CapAmb:\t0000000000000000 ";
  const std::vector<std::string> threads = ThreadCapabilities(exporter.Pid());
  ASSERT_GT(threads.size(), 1U);  // the web server's workers exist by now
  for (const std::string& thread : threads) {
    EXPECT_EQ(thread, expected);
  }
  const Exposition metrics(HttpRequest(kPort, "GET", "/metrics").body);
  EXPECT_EQ(metrics.Sum("portwatch_capability_effective"), 4);
  EXPECT_EQ(metrics.Value("portwatch_capability_effective", {{"capability", "CAP_SYS_PTRACE"}}), 1);
  EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                          {{"capability", "CAP_DAC_READ_SEARCH"}, {"collector", "services"}}),
            1);
  EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                          {{"capability", "CAP_BPF"}, {"collector", "services"}}),
            1);
  EXPECT_EQ(metrics.Sum("portwatch_collector_capability_held"), 4);
  // What CAP_BPF and CAP_PERFMON are kept for: the exporter's own listener found by the
  // task_file walk.
  EXPECT_EQ(metrics.Value("portwatch_process_scan_method", {{"method", "bpf_task_file"}}), 1)
      << metrics.Text();
  EXPECT_EQ(metrics.Value("portwatch_service_up", {{"service", "self"}}), 1);
  EXPECT_NE(exporter.Log().find("msg=\"dropped capabilities no enabled collector needs\" "
                                "kept=CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE,CAP_PERFMON,CAP_BPF "),
            std::string::npos)
      << exporter.Log();
}

TEST_F(DaemonE2eTest, TheSocketIteratorsKeepCapBpfAndCapPerfmonWithoutBindEvents) {
  // The default backend (auto) reads sockets through BPF iterators: the sockets and services
  // collectors keep what loading them needs, though bind_events is off.
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY, {kListen, "--no-collector.bind_events"});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  // CAP_DAC_READ_SEARCH bit 2, CAP_SYS_PTRACE bit 19, CAP_PERFMON bit 38, CAP_BPF bit 39.
  const std::string kept = "000000c000080004";
  for (const std::string& thread : ThreadCapabilities(exporter.Pid())) {
    EXPECT_EQ(thread, "CapInh:\t0000000000000000 CapPrm:\t" + kept + " CapEff:\t" + kept +
                          " CapBnd:\t" + kept + " CapAmb:\t0000000000000000 ");
  }
  const Exposition metrics(HttpRequest(kPort, "GET", "/metrics").body);
  EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                          {{"capability", "CAP_BPF"}, {"collector", "sockets"}}),
            1);
  EXPECT_EQ(
      metrics.Value("portwatch_socket_table_backend", {{"protocol", "tcp"}, {"backend", "bpf"}}), 1)
      << metrics.Text();
}

TEST_F(DaemonE2eTest, MissingCapabilitiesAreLoggedOncePerCollectorAndExposed) {
  // setpriv (util-linux) takes the services' two capabilities out of the bounding set, so the
  // exporter it executes as root never has them.
  ExporterProcess exporter("/usr/bin/setpriv", {"--bounding-set=-dac_read_search,-sys_ptrace", "--",
                                                PORTWATCH_EXPORTER_BINARY, kListen});
  ASSERT_TRUE(exporter.WaitReady(kPort)) << exporter.Log();
  const Exposition metrics(HttpRequest(kPort, "GET", "/metrics").body);
  for (const std::string capability : {"CAP_DAC_READ_SEARCH", "CAP_SYS_PTRACE"}) {
    EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                            {{"capability", capability}, {"collector", "services"}}),
              0)
        << capability;
  }
  EXPECT_EQ(metrics.Value("portwatch_collector_capability_held",
                          {{"capability", "CAP_BPF"}, {"collector", "bind_events"}}),
            1);
  const std::string log = exporter.Log();
  const std::string warning =
      "msg=\"collector lacks capabilities, running without what they give\" "
      "collector=services missing=CAP_DAC_READ_SEARCH,CAP_SYS_PTRACE";
  const size_t first = log.find(warning);
  EXPECT_NE(first, std::string::npos) << log;
  EXPECT_EQ(log.find(warning, first + 1), std::string::npos) << "logged more than once:\n" << log;
  EXPECT_EQ(log.find("collector=bind_events missing="), std::string::npos) << log;
}

}  // namespace
}  // namespace portwatch::testing
