// Load: 50 concurrent scrapers for 60 s against the real exporter in a private network namespace
// holding a 100k-socket table. Every scrape answers 200 with a complete exposition whose counts
// match the table exactly; the exporter's RSS stays flat after a warm-up and it holds as many
// fds after the load as before.
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "tests/bench/socket_farm.h"
#include "tests/soak/scraper_pool.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

using bench::SocketFarm;

constexpr uint16_t kExporterPort = 9792;
constexpr uint64_t kTableSize = 100000;
constexpr int kScrapers = 50;
constexpr int kLoadSeconds = 60;
// RSS grows while the load starts (worker threads' stacks, the heap reaching its working size):
// the first 20 s are the warm-up, the end is compared with RSS after it.
constexpr int kWarmUpSeconds = 20;
constexpr double kRssTolerance = 0.10;

bool Ipv6Loopback() { return Bind(SOCK_STREAM, "::1", 0).Valid(); }

std::string Port(int worker) { return std::to_string(SocketFarm::kFirstListenerPort + worker); }

/// The scrape's view of the farm: an error message, empty when every count is exact.
std::string CheckFarmCounts(const Exposition& metrics, const SocketFarm::Layout& layout) {
  if (metrics.Value("portwatch_scrape_collector_success", {{"collector", "sockets"}}) != 1) {
    return "sockets collector failed";
  }
  if (!metrics.Value("portwatch_config_last_reload_successful")) {
    return "incomplete exposition: no portwatch_config_last_reload_successful";
  }
  double server_ends = 0;
  double client_ends = 0;
  for (int worker = 0; worker < layout.workers; ++worker) {
    const std::string port = Port(worker);
    const double listeners = metrics.Sum(
        "portwatch_sockets", {{"port", port}, {"protocol", "tcp"}, {"state", "listen"}});
    if (listeners != 1) {
      return "port " + port + ": " + std::to_string(listeners) + " listeners, expected 1";
    }
    server_ends += metrics.Sum("portwatch_sockets",
                               {{"port", port}, {"protocol", "tcp"}, {"state", "established"}});
    client_ends +=
        metrics.Sum("portwatch_peer_sockets",
                    {{"peer_port", port}, {"protocol", "tcp"}, {"state", "established"}});
  }
  const auto expected = static_cast<double>(layout.established_connections);
  if (server_ends != expected || client_ends != expected) {
    return "established: " + std::to_string(server_ends) + " server ends and " +
           std::to_string(client_ends) + " client ends, expected " + std::to_string(expected);
  }
  const double read = metrics.Sum("portwatch_scrape_sockets_read", {{"protocol", "tcp"}});
  if (read < static_cast<double>(kTableSize)) {
    return "read " + std::to_string(read) + " TCP sockets, expected at least " +
           std::to_string(kTableSize);
  }
  return "";
}

TEST(LoadTest, FiftyScrapersForAMinuteOnA100kSocketTable) {
  ::signal(SIGPIPE, SIG_IGN);
  ASSERT_EQ(EnterPrivateNetworkNamespace(), "");
  ASSERT_EQ(WriteSysctl("net/core/somaxconn", "4096"), "");

  SocketFarm farm;
  const SocketFarm::Layout layout =
      SocketFarm::PlanLayout({kTableSize, /*time_wait_share=*/0}, Ipv6Loopback());
  const double build_start = MonotonicSeconds();
  ASSERT_EQ(farm.Establish(layout, 60), "");
  const double build_seconds = MonotonicSeconds() - build_start;

  ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                           {"--web.listen-address=127.0.0.1:" + std::to_string(kExporterPort)});
  ASSERT_TRUE(exporter.WaitReady(kExporterPort)) << exporter.Log();
  const pid_t pid = exporter.Pid();
  // One scrape first: whatever the exporter sets up lazily is in the baseline.
  HttpResponse first = HttpRequest(kExporterPort, "GET", "/metrics");
  ASSERT_EQ(first.status, 200) << first.error;
  ASSERT_EQ(CheckFarmCounts(Exposition(first.body), layout), "");
  // CivetWeb closes its end of a connection just after the client saw the response end.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  const int fds_before = OpenFds(pid);
  const uint64_t rss_start = RssKb(pid);

  ScraperPool scrapers(kExporterPort, "/metrics", kScrapers, [&layout](const HttpResponse& r) {
    return CheckFarmCounts(Exposition(r.body), layout);
  });
  uint64_t rss_warm = 0;
  uint64_t rss_max = 0;
  uint64_t rss_end = 0;
  for (int second = 1; second <= kLoadSeconds; ++second) {
    std::this_thread::sleep_for(std::chrono::seconds(1));
    const uint64_t rss = RssKb(pid);
    ASSERT_NE(rss, 0U) << "the exporter died after " << second << " s\n" << exporter.Log();
    rss_max = std::max(rss_max, rss);
    if (second == kWarmUpSeconds) {
      rss_warm = rss;
    }
    rss_end = rss;
  }
  scrapers.Stop();
  const LatencySummary latency = scrapers.Latency();
  const int fds_after = WaitForOpenFds(pid, fds_before, 5);
  const double shared = Exposition(HttpRequest(kExporterPort, "GET", "/metrics").body)
                            .Value("portwatch_scrape_shared_total")
                            .value_or(-1);

  char figures[768];
  std::snprintf(
      figures, sizeof(figures),
      "load: %d scrapers, %d s, %llu-socket table (built in %.1f s, %d workers): %llu "
      "scrapes (%.0f/s), %llu failed; latency p50 %.1f ms, p99 %.1f ms, max %.1f ms; "
      "RSS %llu kB at start, %llu kB after %d s warm-up, %llu kB at end, %llu kB max; "
      "fds %d before, %d after; %.0f scrapes answered by a concurrent scrape's collection",
      kScrapers, kLoadSeconds, static_cast<unsigned long long>(kTableSize), build_seconds,
      layout.workers, static_cast<unsigned long long>(latency.count),
      static_cast<double>(latency.count) / kLoadSeconds,
      static_cast<unsigned long long>(scrapers.Failures()), latency.p50_ms, latency.p99_ms,
      latency.max_ms, static_cast<unsigned long long>(rss_start),
      static_cast<unsigned long long>(rss_warm), kWarmUpSeconds,
      static_cast<unsigned long long>(rss_end), static_cast<unsigned long long>(rss_max),
      fds_before, fds_after, shared);
  std::printf("%s\n", figures);
  ::testing::Test::RecordProperty("scrapes", static_cast<int>(latency.count));
  ::testing::Test::RecordProperty("failed_scrapes", static_cast<int>(scrapers.Failures()));
  ::testing::Test::RecordProperty("latency_p50_ms", std::to_string(latency.p50_ms));
  ::testing::Test::RecordProperty("latency_p99_ms", std::to_string(latency.p99_ms));
  ::testing::Test::RecordProperty("latency_max_ms", std::to_string(latency.max_ms));
  ::testing::Test::RecordProperty("rss_warm_kb", static_cast<int>(rss_warm));
  ::testing::Test::RecordProperty("rss_end_kb", static_cast<int>(rss_end));
  ::testing::Test::RecordProperty("fds_before", fds_before);
  ::testing::Test::RecordProperty("fds_after", fds_after);

  std::string failures;
  for (const std::string& failure : scrapers.FirstFailures()) {
    failures += "\n  " + failure;
  }
  EXPECT_EQ(scrapers.Failures(), 0U) << "first failures:" << failures;
  EXPECT_GT(latency.count, static_cast<uint64_t>(kScrapers));
  EXPECT_LE(static_cast<double>(rss_end), static_cast<double>(rss_warm) * (1 + kRssTolerance))
      << figures;
  EXPECT_GE(static_cast<double>(rss_end), static_cast<double>(rss_warm) * (1 - kRssTolerance))
      << figures;
  EXPECT_EQ(fds_after, fds_before) << figures;
  EXPECT_EQ(exporter.Pid(), pid);
  EXPECT_EQ(HttpRequest(kExporterPort, "GET", "/-/healthy").status, 200);
  EXPECT_EQ(exporter.Stop(), 0) << exporter.Log();
}

}  // namespace
}  // namespace portwatch::testing
