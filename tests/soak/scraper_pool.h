#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/http.h"

namespace portwatch::testing {

/// Scrape latencies, in milliseconds.
struct LatencySummary {
  uint64_t count = 0;
  double p50_ms = 0;
  double p99_ms = 0;
  double max_ms = 0;
};
LatencySummary Summarize(std::vector<double> seconds);

/// Entries of /proc/PID/fd; -1 when the process is gone.
int OpenFds(pid_t pid);
/// VmRSS of `pid` in kB; 0 when the process is gone.
uint64_t RssKb(pid_t pid);
/// Polls /proc/PID/fd for up to `seconds` until it holds `expected` entries (CivetWeb closes a
/// finished connection's socket asynchronously); returns the last count seen.
int WaitForOpenFds(pid_t pid, int expected, double seconds);
/// Seconds on the monotonic clock.
double MonotonicSeconds();

/// `threads` threads, each sending GET `path` to 127.0.0.1:port in a loop, one request after the
/// other, until Stop() (or the destructor). Every answer goes through `check`, which returns an
/// error message (empty: a good scrape); a request that fails or answers another status than 200
/// is a failure too. Each request is bounded by HttpRequest's 10 s timeouts.
class ScraperPool {
 public:
  using Check = std::function<std::string(const HttpResponse& response)>;

  ScraperPool(uint16_t port, std::string path, int threads, Check check);
  ~ScraperPool();
  ScraperPool(const ScraperPool&) = delete;
  ScraperPool& operator=(const ScraperPool&) = delete;

  /// Ends every loop after its current request and joins the threads.
  void Stop();
  uint64_t Scrapes() const { return scrapes_.load(); }
  uint64_t Failures() const { return failures_.load(); }
  /// The first few failures, for the test's message.
  std::vector<std::string> FirstFailures() const;
  /// Latencies of every request (good or not); complete once Stop() returned.
  LatencySummary Latency() const;

 private:
  void Run(size_t index);

  uint16_t port_;
  std::string path_;
  Check check_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> scrapes_{0};
  std::atomic<uint64_t> failures_{0};
  mutable std::mutex mutex_;
  std::vector<std::string> first_failures_;
  std::vector<std::vector<double>> latencies_;  ///< one vector per thread, read after Stop()
  std::vector<std::thread> threads_;
};

}  // namespace portwatch::testing
