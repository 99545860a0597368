// Soak: for 60 s the real exporter, in a private network namespace, is reloaded by SIGHUP every
// 100 ms while its config file alternates between good and bad versions, scraped without pause,
// and watches processes that listen on ports appear and vanish, network namespaces come and go
// and a socket table that never stops changing. It must never die, answer every scrape, keep
// its fds and RSS flat, take the last config written, and count a known table exactly at the end.
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/bench/socket_farm.h"
#include "tests/soak/scraper_pool.h"
#include "tests/support/child.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

using bench::SocketFarm;

constexpr uint16_t kExporterPort = 9792;
constexpr int kSoakSeconds = 60;
constexpr int kWarmUpSeconds = 20;
constexpr double kRssTolerance = 0.10;
constexpr auto kReloadInterval = std::chrono::milliseconds(100);
constexpr int kScrapers = 8;
/// A standing table under the churn, so that every dump takes a while (ports 5000-5003).
constexpr uint64_t kBaseTable = 20000;
/// Ports of the churning processes, and the socket churner's listener.
constexpr uint16_t kChurnFirstPort = 20000;
constexpr int kChurnPorts = 10;
constexpr uint16_t kSocketChurnPort = 30000;
/// The table counted at the end: listeners on 7001-7003, server-side TIME_WAIT on 7001 and held
/// connections to 7002, all held by a process named pw-final.
constexpr uint16_t kFinalPorts[] = {7001, 7002, 7003};
constexpr int kFinalTimeWait = 5;
constexpr int kFinalHeld = 4;

const std::vector<std::string> kGoodConfigs = {
    "collectors:\n"
    "  sockets:\n"
    "    max_port_series: 200\n"
    "services:\n"
    "  - name: soak-a\n"
    "    port: 20000\n"
    "    owner:\n"
    "      process: pw-churn\n"
    "  - name: soak-udp\n"
    "    port: 20001\n"
    "    protocol: udp\n",
    "collectors:\n"
    "  sockets:\n"
    "    protocols: [tcp, udp]\n"
    "    max_port_series: 300\n"
    "  services:\n"
    "    pid_label: true\n"
    "services:\n"
    "  - name: soak-b\n"
    "    port: 20002\n"
    "    address: \"::\"\n"
    "    owner:\n"
    "      cmdline: \"soak_test|pw-.*\"\n"
    "    instances: 2\n",
};
const std::vector<std::string> kBadConfigs = {
    "collectors:\n  sockets:\n    max_port_series: lots\n",                       // wrong type
    "collectors: [\n",                                                            // not YAML
    "services:\n  - name: x\n    port: 70000\n",                                  // out of range
    "services:\n  - name: x\n    port: 20\n    owner:\n      cmdline: \"([\"\n",  // bad regex
    "collectors:\n  sockets:\n    protocols: [tcp, sctp]\n",                      // invalid value
    "no_such_key: 1\n",                                                           // unknown key
};
/// Checked at the end: a good config with a marker service, a bad one, then the final one.
const std::string kCheckConfig = "services:\n  - name: soak-check\n    port: 20003\n";
const std::string kFinalConfig =
    "services:\n"
    "  - name: final\n"
    "    port: 7001\n"
    "    address: 127.0.0.1\n"
    "    owner:\n"
    "      process: pw-final\n";

/// Replaces the config file at once (write + rename): a reload reads one version or the other,
/// never half of one.
void WriteConfig(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  std::ofstream(temporary) << text;
  ::rename(temporary.c_str(), path.c_str());
}

size_t Count(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    count++;
  }
  return count;
}

const std::string kReloaded = "msg=\"config reloaded\"";
const std::string kReloadFailed = "msg=\"config reload failed";

/// Keeps up to `alive` children, replacing the oldest every `period`, until `stop`: processes
/// (and, with `setup` entering a new network namespace, namespaces) appearing and vanishing.
/// Bounded by `stop` and by 10 000 rounds. Returns how many children it started.
int ChurnChildren(const std::atomic<bool>& stop, const std::string& name, size_t alive,
                  std::chrono::milliseconds period,
                  const std::function<ChildProcess::Setup(int round)>& setup) {
  std::deque<std::unique_ptr<ChildProcess>> children;
  int round = 0;
  for (; round < 10000 && !stop; ++round) {
    children.push_back(std::make_unique<ChildProcess>(name, setup(round)));
    if (children.size() > alive) {
      children.pop_front();  // SIGKILL and reap
    }
    std::this_thread::sleep_for(period);
  }
  return round;
}

/// A connection to `listener` (on `address`:`port`) from this process, both ends kept in `keep`.
void Loop(const std::string& address, uint16_t port, const UniqueFd& listener,
          std::vector<UniqueFd>& keep) {
  UniqueFd client = Connect(SOCK_STREAM, address, port);
  UniqueFd server = Accept(listener);
  keep.push_back(std::move(client));
  keep.push_back(std::move(server));
}

/// The socket churner's loop: connections to its own listener opened and closed in batches of
/// 128, most with a reset, one in four leaving TIME_WAIT, for at most 3 minutes.
void ChurnSockets(std::vector<UniqueFd>& keep) {
  if (!keep.front().Valid()) {
    return;
  }
  const linger abortive{1, 0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(3);
  for (int batch = 0; std::chrono::steady_clock::now() < deadline; ++batch) {
    std::vector<UniqueFd> open;
    for (int i = 0; i < 128; ++i) {
      UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", kSocketChurnPort);
      UniqueFd server = Accept(keep.front());
      if (!client.Valid() || !server.Valid()) {
        continue;
      }
      if (i % 4 != 0) {
        ::setsockopt(client.Get(), SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
      }
      open.push_back(std::move(client));
      open.push_back(std::move(server));
    }
    open.clear();
    std::this_thread::sleep_for(std::chrono::milliseconds(batch % 2 == 0 ? 1 : 5));
  }
}

/// What the soak saw, for its assertions and its report line.
struct SoakFigures {
  std::atomic<uint64_t> signals{0};
  std::atomic<int> processes{0};
  std::atomic<int> namespaces{0};
  std::atomic<uint64_t> sockets_failed{0};
  std::atomic<uint64_t> services_failed{0};
  uint64_t scrapes = 0;
  uint64_t failures = 0;
  std::string first_failures;
  LatencySummary latency;
  uint64_t rss_warm = 0;
  uint64_t rss_end = 0;
  uint64_t rss_max = 0;
  size_t reloads = 0;
  size_t reload_failures = 0;
  size_t collector_failures = 0;
  size_t dump_interrupted = 0;
  uint64_t connections = 0;  ///< TCP connections opened in the namespace during the soak
  double collections = 0;    ///< scrapes that read the kernel (the others shared one)
};

/// Tcp ActiveOpens of the calling thread's network namespace: connect() calls that sent a SYN.
uint64_t ActiveOpens() {
  std::ifstream in("/proc/thread-self/net/snmp");
  std::string names;
  std::string values;
  while (std::getline(in, names) && std::getline(in, values)) {
    if (names.rfind("Tcp:", 0) != 0) {
      continue;
    }
    std::istringstream name_fields(names);
    std::istringstream value_fields(values);
    std::string name;
    std::string value;
    while (name_fields >> name && value_fields >> value) {
      if (name == "ActiveOpens") {
        return std::stoull(value);
      }
    }
  }
  return 0;
}

/// A scrape during the soak: complete (the config metrics come last in the runner's output), and
/// which collectors failed, counted.
std::string CheckSoakScrape(const Exposition& metrics, SoakFigures& figures) {
  const std::optional<double> reload = metrics.Value("portwatch_config_last_reload_successful");
  if (!reload || (*reload != 0 && *reload != 1)) {
    return "incomplete exposition: no portwatch_config_last_reload_successful";
  }
  if (metrics.Sum("portwatch_build_info") != 1) {
    return "incomplete exposition: no portwatch_build_info";
  }
  if (metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}) != 1) {
    figures.sockets_failed++;
  }
  if (metrics.Value("portwatch_scrape_collector_success", {{"collector", "services"}}) != 1) {
    figures.services_failed++;
  }
  return "";
}

class SoakTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ::signal(SIGPIPE, SIG_IGN);
    ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
    ASSERT_EQ(WriteSysctl("net/core/somaxconn", "4096"), "");
    config_path_ = ::testing::TempDir() + "/portwatch-soak-" + std::to_string(::getpid()) + ".yaml";
  }
  void TearDown() override {
    ::unlink(config_path_.c_str());
    ::unlink((config_path_ + ".tmp").c_str());
  }

  /// Scrapes until `ready` holds for the scrape (bounded: `seconds`); returns the last one.
  Exposition ScrapeUntil(const std::function<bool(const Exposition&)>& ready, int seconds = 10) {
    std::string last;
    for (int attempt = 0; attempt < seconds * 10; ++attempt) {
      HttpResponse response = HttpRequest(kExporterPort, "GET", "/metrics");
      last = response.body;
      if (response.status == 200 && ready(Exposition(last))) {
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return Exposition(last);
  }

  std::string config_path_;
};

TEST_F(SoakTest, ReloadsChurnAndScrapesForAMinute) {
  // The good configs are good and the bad ones bad, or the reload checks below mean nothing.
  const std::vector<std::string> also_good = {kCheckConfig, kFinalConfig};
  for (const std::vector<std::string>* configs : {&kGoodConfigs, &also_good, &kBadConfigs}) {
    for (const std::string& config : *configs) {
      WriteConfig(config_path_, config);
      std::string output;
      EXPECT_EQ(
          RunCommand({PORTWATCH_EXPORTER_BINARY, "--config.check", "--config.file=" + config_path_},
                     output),
          configs == &kBadConfigs ? 1 : 0)
          << config << output;
    }
  }
  SocketFarm farm;
  const SocketFarm::Layout layout = SocketFarm::PlanLayout({kBaseTable, 0}, false);
  ASSERT_EQ(farm.Establish(layout, 60), "");

  WriteConfig(config_path_, kGoodConfigs[0]);
  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort),
                            "--config.file=" + config_path_});
  ASSERT_TRUE(exporter.WaitReady(kExporterPort)) << exporter.Log();
  const pid_t pid = exporter.Pid();
  ASSERT_EQ(HttpRequest(kExporterPort, "GET", "/metrics").status, 200);
  // CivetWeb closes its end of a connection just after the client saw the response end.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int fds_before = OpenFds(pid);
  const uint64_t rss_start = RssKb(pid);
  const uint64_t opens_before = ActiveOpens();

  // Phase 1, the soak. Everything it starts is stopped, joined and reaped when the block ends,
  // also when an assertion returns early.
  SoakFigures figures;
  {
    std::atomic<bool> stop{false};
    ScraperPool scrapers(kExporterPort, "/metrics", kScrapers, [&figures](const HttpResponse& r) {
      return CheckSoakScrape(Exposition(r.body), figures);
    });
    ScraperPool health(kExporterPort, "/-/healthy", 1, [](const HttpResponse& r) {
      return r.body == "Healthy\n" ? "" : "/-/healthy answered " + r.body;
    });
    ChildProcess socket_churn(
        "pw-sockchurn",
        [](std::vector<UniqueFd>& keep) { keep.push_back(Listen("127.0.0.1", kSocketChurnPort)); },
        ChurnSockets);
    ASSERT_TRUE(socket_churn.Ready());
    std::vector<std::thread> threads;
    struct Joiner {
      std::atomic<bool>& stop;
      std::vector<std::thread>& threads;
      ~Joiner() {
        stop = true;
        for (std::thread& thread : threads) {
          thread.join();
        }
      }
    } joiner{stop, threads};
    // Every 100 ms a new config and a SIGHUP: good, bad, good, bad...
    threads.emplace_back([&] {
      for (int round = 0; round < 10000 && !stop; ++round) {
        WriteConfig(config_path_, round % 2 == 0 ? kGoodConfigs[(round / 2) % kGoodConfigs.size()]
                                                 : kBadConfigs[(round / 2) % kBadConfigs.size()]);
        figures.signals += exporter.Signal(SIGHUP) ? 1 : 0;
        std::this_thread::sleep_for(kReloadInterval);
      }
    });
    // Processes listening on TCP and UDP ports of the exporter's namespace, four alive at once,
    // one replaced every 50 ms; some own soak-a's port, half hold a connection.
    threads.emplace_back([&] {
      figures.processes =
          ChurnChildren(stop, "pw-churn", 4, std::chrono::milliseconds(50), [](int round) {
            return [round](std::vector<UniqueFd>& keep) {
              const auto port = static_cast<uint16_t>(kChurnFirstPort + round % kChurnPorts);
              const bool ipv6 = round % 3 == 0;
              keep.push_back(Listen(ipv6 ? "::" : "0.0.0.0", port, true));
              keep.push_back(Bind(SOCK_DGRAM, "0.0.0.0", port, true));
              if (keep.front().Valid() && round % 2 == 0) {
                Loop(ipv6 ? "::1" : "127.0.0.1", port, keep.front(), keep);
              }
            };
          });
    });
    // Network namespaces: each child enters a new one, listens and connects there, and takes it
    // away when it dies; two alive at once, one replaced every 100 ms.
    threads.emplace_back([&] {
      figures.namespaces =
          ChurnChildren(stop, "pw-netns", 2, std::chrono::milliseconds(100), [](int /*round*/) {
            return [](std::vector<UniqueFd>& keep) {
              if (!EnterPrivateNetworkNamespace().empty()) {
                return;
              }
              keep.push_back(Listen("127.0.0.1", kSocketChurnPort));
              if (keep.front().Valid()) {
                Loop("127.0.0.1", kSocketChurnPort, keep.front(), keep);
              }
            };
          });
    });

    for (int second = 1; second <= kSoakSeconds; ++second) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      const uint64_t rss = RssKb(pid);
      ASSERT_NE(rss, 0U) << "the exporter died after " << second << " s\n" << exporter.Log();
      figures.rss_max = std::max(figures.rss_max, rss);
      if (second == kWarmUpSeconds) {
        figures.rss_warm = rss;
      }
      figures.rss_end = rss;
    }
    stop = true;
    scrapers.Stop();
    health.Stop();
    figures.connections = ActiveOpens() - opens_before;
    figures.scrapes = scrapers.Scrapes();
    figures.failures = scrapers.Failures() + health.Failures();
    figures.latency = scrapers.Latency();
    for (const ScraperPool* pool : {&scrapers, &health}) {
      for (const std::string& failure : pool->FirstFailures()) {
        figures.first_failures += "\n  " + failure;
      }
    }
  }
  ASSERT_EQ(exporter.Pid(), pid);
  ASSERT_EQ(HttpRequest(kExporterPort, "GET", "/-/healthy").status, 200) << exporter.Log();

  // Phase 2: the last config written wins, a good one and then a bad one.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a SIGHUP still in flight
  WriteConfig(config_path_, kCheckConfig);
  ASSERT_TRUE(exporter.Signal(SIGHUP));
  Exposition metrics = ScrapeUntil([](const Exposition& m) {
    return m.Value("portwatch_config_last_reload_successful") == 1 &&
           m.Value("portwatch_service_up", {{"service", "soak-check"}});
  });
  EXPECT_EQ(metrics.Value("portwatch_config_last_reload_successful"), 1);
  EXPECT_TRUE(metrics.Value("portwatch_service_up", {{"service", "soak-check"}}));
  WriteConfig(config_path_, kBadConfigs[0]);
  ASSERT_TRUE(exporter.Signal(SIGHUP));
  metrics = ScrapeUntil(
      [](const Exposition& m) { return m.Value("portwatch_config_last_reload_successful") == 0; });
  EXPECT_EQ(metrics.Value("portwatch_config_last_reload_successful"), 0);
  EXPECT_TRUE(metrics.Value("portwatch_service_up", {{"service", "soak-check"}}))
      << "a bad config must keep the previous one";

  // Phase 3: the final config and a known table, counted exactly.
  WriteConfig(config_path_, kFinalConfig);
  ASSERT_TRUE(exporter.Signal(SIGHUP));
  ChildProcess final_table("pw-final", [](std::vector<UniqueFd>& keep) {
    for (uint16_t port : kFinalPorts) {
      keep.push_back(Listen("127.0.0.1", port));
    }
    for (int i = 0; i < kFinalHeld; ++i) {
      Loop("127.0.0.1", kFinalPorts[1], keep[1], keep);
    }
    // Server-side TIME_WAIT on 7001: the server closes first, then the client.
    for (int i = 0; i < kFinalTimeWait; ++i) {
      UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", kFinalPorts[0]);
      UniqueFd server = Accept(keep[0]);
      server = UniqueFd();
      CloseAfterPeer(std::move(client));
    }
  });
  ASSERT_TRUE(final_table.Ready());
  const auto sockets = [](uint16_t port, const std::string& state) {
    return SeriesKey("portwatch_sockets", {{"family", "ipv4"},
                                           {"port", std::to_string(port)},
                                           {"protocol", "tcp"},
                                           {"state", state}});
  };
  std::map<std::string, double> expected = {
      {"portwatch_config_last_reload_successful", 1},
      {SeriesKey("portwatch_service_up", {{"service", "final"}}), 1},
      {SeriesKey("portwatch_service_owner_processes", {{"service", "final"}}), 1},
      {SeriesKey("portwatch_scrape_collector_success", {{"collector", "sockets"}}), 1},
      {SeriesKey("portwatch_scrape_collector_success", {{"collector", "services"}}), 1},
      {sockets(kFinalPorts[0], "listen"), 1},
      {sockets(kFinalPorts[1], "listen"), 1},
      {sockets(kFinalPorts[2], "listen"), 1},
      {sockets(kFinalPorts[0], "time_wait"), kFinalTimeWait},
      {sockets(kFinalPorts[1], "established"), kFinalHeld},
      {SeriesKey("portwatch_peer_sockets", {{"peer_port", std::to_string(kFinalPorts[1])},
                                            {"protocol", "tcp"},
                                            {"state", "established"}}),
       kFinalHeld},
  };
  for (int worker = 0; worker < layout.workers; ++worker) {
    const auto port = static_cast<uint16_t>(SocketFarm::kFirstListenerPort + worker);
    expected[sockets(port, "listen")] = 1;
  }
  metrics = ScrapeUntil([&expected](const Exposition& m) {
    for (const auto& [key, value] : expected) {
      if (m.Samples().count(key) == 0 || m.Samples().at(key) != value) {
        return false;
      }
    }
    return true;
  });
  for (const auto& [key, value] : expected) {
    const auto found = metrics.Samples().find(key);
    EXPECT_TRUE(found != metrics.Samples().end() && found->second == value)
        << key << " = "
        << (found == metrics.Samples().end() ? "absent" : std::to_string(found->second))
        << ", expected " << value;
  }
  EXPECT_FALSE(metrics.Value("portwatch_service_up", {{"service", "soak-check"}}));
  double farm_established = 0;
  for (int worker = 0; worker < layout.workers; ++worker) {
    farm_established += metrics.Sum(
        "portwatch_sockets", {{"port", std::to_string(SocketFarm::kFirstListenerPort + worker)},
                              {"state", "established"}});
  }
  EXPECT_EQ(farm_established, static_cast<double>(layout.established_connections));

  const int fds_after = WaitForOpenFds(pid, fds_before, 5);
  const std::string log = exporter.Log();
  figures.reloads = Count(log, kReloaded);
  figures.reload_failures = Count(log, kReloadFailed);
  figures.collector_failures = Count(log, "msg=\"collector failed\"");
  figures.dump_interrupted = Count(log, "NLM_F_DUMP_INTR");
  figures.collections = static_cast<double>(figures.scrapes) -
                        metrics.Value("portwatch_scrape_shared_total").value_or(0);
  char line[1024];
  std::snprintf(
      line, sizeof(line),
      "soak: %d s, %llu scrapes, %llu failed, latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
      "%llu SIGHUPs -> %zu reloads + %zu rejected; %d processes, %d namespaces, %llu TCP "
      "connections opened; about %.0f collections; scrapes with a "
      "failed collector: sockets %llu, services %llu; log: %zu collector failures, %zu dump "
      "interruptions; RSS %llu kB start, %llu kB after %d s, %llu kB end, %llu kB max; fds %d "
      "before, %d after",
      kSoakSeconds, static_cast<unsigned long long>(figures.scrapes),
      static_cast<unsigned long long>(figures.failures), figures.latency.p50_ms,
      figures.latency.p99_ms, figures.latency.max_ms,
      static_cast<unsigned long long>(figures.signals.load()), figures.reloads,
      figures.reload_failures, figures.processes.load(), figures.namespaces.load(),
      static_cast<unsigned long long>(figures.connections), figures.collections,
      static_cast<unsigned long long>(figures.sockets_failed.load()),
      static_cast<unsigned long long>(figures.services_failed.load()), figures.collector_failures,
      figures.dump_interrupted, static_cast<unsigned long long>(rss_start),
      static_cast<unsigned long long>(figures.rss_warm), kWarmUpSeconds,
      static_cast<unsigned long long>(figures.rss_end),
      static_cast<unsigned long long>(figures.rss_max), fds_before, fds_after);
  std::printf("%s\n", line);
  RecordProperty("scrapes", static_cast<int>(figures.scrapes));
  RecordProperty("failed_scrapes", static_cast<int>(figures.failures));
  RecordProperty("sighups", static_cast<int>(figures.signals.load()));
  RecordProperty("dump_interrupted", static_cast<int>(figures.dump_interrupted));
  RecordProperty("rss_warm_kb", static_cast<int>(figures.rss_warm));
  RecordProperty("rss_end_kb", static_cast<int>(figures.rss_end));
  RecordProperty("fds_before", fds_before);
  RecordProperty("fds_after", fds_after);

  EXPECT_EQ(figures.failures, 0U) << "first failures:" << figures.first_failures;
  EXPECT_GT(figures.scrapes, 0U);
  EXPECT_GE(figures.signals.load(), static_cast<uint64_t>(kSoakSeconds * 5)) << line;
  EXPECT_GT(figures.reloads, 0U) << line;
  EXPECT_GT(figures.reload_failures, 0U) << line;
  // A dump the kernel flags as interrupted fails the collector on purpose (no wrong counts);
  // nothing else may.
  EXPECT_EQ(figures.collector_failures, figures.dump_interrupted) << line << "\n" << log;
  EXPECT_EQ(fds_after, fds_before) << line;
  if (PORTWATCH_SANITIZED) {
    std::printf("soak: RSS not checked: under ASan it is the sanitizer's quarantine\n");
  } else {
    EXPECT_LE(static_cast<double>(figures.rss_end),
              static_cast<double>(figures.rss_warm) * (1 + kRssTolerance))
        << line;
    EXPECT_GE(static_cast<double>(figures.rss_end),
              static_cast<double>(figures.rss_warm) * (1 - kRssTolerance))
        << line;
  }
  EXPECT_EQ(exporter.Pid(), pid);
  EXPECT_EQ(exporter.Stop(), 0) << exporter.Log();
}

}  // namespace
}  // namespace portwatch::testing
