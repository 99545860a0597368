// portwatch_web_bench: what hostile HTTP clients cost a scrape, measured against a baseline taken
// in the same run. The real exporter (default flags) runs in a private network namespace; the
// benchmark times sequential scrapes alone (the baseline), then beside 64 clients that connect and
// send nothing plus 64 that send half a request head, then fires 1000 scrapes at once and counts
// the answers. Needs root (the namespace). Run by the bench target after portwatch_bench.
//
//   portwatch_web_bench [--scrapes=N]   (default 50 sequential scrapes per phase)
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/bench/probes.h"
#include "tests/support/exporter_process.h"
#include "tests/support/http.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::bench {
namespace {

using testing::HttpRequest;
using testing::UniqueFd;

constexpr uint16_t kPort = 9792;
constexpr int kStalledPerKind = 64;
constexpr int kConcurrentScrapes = 1000;

double Seconds(std::chrono::steady_clock::duration duration) {
  return std::chrono::duration<double>(duration).count();
}

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values.empty() ? 0 : values[values.size() / 2];
}

/// Median wall time of `count` sequential scrapes; -1 if one failed.
double MedianScrape(int count) {
  std::vector<double> times;
  for (int i = 0; i < count; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const testing::HttpResponse response = HttpRequest(kPort, "GET", "/metrics");
    if (response.status != 200) {
      std::fprintf(stderr, "scrape failed: status %d %s\n", response.status,
                   response.error.c_str());
      return -1;
    }
    times.push_back(Seconds(std::chrono::steady_clock::now() - start));
  }
  return Median(times);
}

struct FloodResult {
  std::map<int, int> statuses;  ///< 0: the request failed
  double max_seconds = 0;
  double wall_seconds = 0;
};

FloodResult Flood(int count) {
  FloodResult result;
  std::mutex mutex;
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) {
    threads.emplace_back([&] {
      while (!go.load()) {
        std::this_thread::yield();
      }
      const auto start = std::chrono::steady_clock::now();
      const int status = HttpRequest(kPort, "GET", "/metrics").status;
      const double took = Seconds(std::chrono::steady_clock::now() - start);
      const std::lock_guard<std::mutex> lock(mutex);
      result.statuses[status]++;
      result.max_seconds = std::max(result.max_seconds, took);
    });
  }
  const auto start = std::chrono::steady_clock::now();
  go = true;
  for (std::thread& thread : threads) {
    thread.join();
  }
  result.wall_seconds = Seconds(std::chrono::steady_clock::now() - start);
  return result;
}

int Run(int scrapes) {
  if (std::string error = testing::EnterPrivateNetworkNamespace(); !error.empty()) {
    std::fprintf(stderr, "portwatch_web_bench: %s\n", error.c_str());
    return 1;
  }
  testing::ExporterProcess exporter(PORTWATCH_EXPORTER_BINARY,
                                    {"--web.listen-address=127.0.0.1:" + std::to_string(kPort)});
  if (!exporter.WaitReady(kPort)) {
    std::fprintf(stderr, "portwatch_web_bench: exporter not ready\n%s", exporter.Log().c_str());
    return 1;
  }
  MedianScrape(5);  // warm-up
  const uint64_t rss_start = ProcStatusKb(exporter.Pid(), "VmRSS");
  const double baseline = MedianScrape(scrapes);

  std::vector<UniqueFd> stalled;
  std::string error;
  for (int i = 0; i < kStalledPerKind; ++i) {
    stalled.push_back(testing::Connect(SOCK_STREAM, "127.0.0.1", kPort));
    UniqueFd half = testing::ConnectLoopback(kPort, error);
    if (!half.Valid() || !testing::SendAll(half, "GET /metrics HTTP/1.1\r\nHost: x\r\n", error)) {
      std::fprintf(stderr, "portwatch_web_bench: %s\n", error.c_str());
      return 1;
    }
    stalled.push_back(std::move(half));
  }
  const double with_stalled = MedianScrape(scrapes);
  const uint64_t threads_stalled = ProcStatusKb(exporter.Pid(), "Threads");
  stalled.clear();

  const FloodResult flood = Flood(kConcurrentScrapes);
  const uint64_t rss_end = ProcStatusKb(exporter.Pid(), "VmRSS");
  const uint64_t hwm = ProcStatusKb(exporter.Pid(), "VmHWM");
  const bool alive = HttpRequest(kPort, "GET", "/-/healthy").status == 200;

  std::printf(
      "web: median scrape alone %.2f ms; beside %d silent + %d half-request clients "
      "%.2f ms (%.2fx); exporter threads %llu\n",
      baseline * 1e3, kStalledPerKind, kStalledPerKind, with_stalled * 1e3,
      baseline > 0 ? with_stalled / baseline : 0, static_cast<unsigned long long>(threads_stalled));
  std::printf("web: %d concurrent scrapes in %.2f s, slowest %.2f s:", kConcurrentScrapes,
              flood.wall_seconds, flood.max_seconds);
  for (const auto& [status, count] : flood.statuses) {
    std::printf(" %d x %s", count, status == 0 ? "failed" : std::to_string(status).c_str());
  }
  std::printf("; exporter VmRSS %.1f -> %.1f MiB (VmHWM %.1f MiB), %s afterwards\n",
              static_cast<double>(rss_start) / 1024, static_cast<double>(rss_end) / 1024,
              static_cast<double>(hwm) / 1024, alive ? "healthy" : "NOT HEALTHY");
  return baseline > 0 && with_stalled > 0 && alive && flood.statuses.count(0) == 0 ? 0 : 1;
}

}  // namespace
}  // namespace portwatch::bench

int main(int argc, char** argv) {
  int scrapes = 50;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--scrapes=", 10) == 0) {
      scrapes = std::max(1, std::atoi(argv[i] + 10));
    } else {
      std::fprintf(stderr, "usage: portwatch_web_bench [--scrapes=N]\n");
      return 2;
    }
  }
  return portwatch::bench::Run(scrapes);
}
