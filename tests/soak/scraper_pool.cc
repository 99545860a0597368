#include "tests/soak/scraper_pool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <utility>

namespace portwatch::testing {

namespace {

constexpr size_t kKeptFailures = 5;

}  // namespace

double MonotonicSeconds() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

LatencySummary Summarize(std::vector<double> seconds) {
  LatencySummary summary;
  summary.count = seconds.size();
  if (seconds.empty()) {
    return summary;
  }
  std::sort(seconds.begin(), seconds.end());
  const auto at = [&seconds](double quantile) {
    const auto rank =
        static_cast<size_t>(std::ceil(quantile * static_cast<double>(seconds.size())));
    return seconds[std::min(seconds.size() - 1, rank > 0 ? rank - 1 : 0)] * 1000;
  };
  summary.p50_ms = at(0.5);
  summary.p99_ms = at(0.99);
  summary.max_ms = seconds.back() * 1000;
  return summary;
}

int OpenFds(pid_t pid) {
  std::error_code error;
  int count = 0;
  for (std::filesystem::directory_iterator entry("/proc/" + std::to_string(pid) + "/fd", error);
       !error && entry != std::filesystem::directory_iterator(); entry.increment(error)) {
    count++;
  }
  return error ? -1 : count;
}

uint64_t RssKb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      return std::stoull(line.substr(6));
    }
  }
  return 0;
}

int WaitForOpenFds(pid_t pid, int expected, double seconds) {
  const double deadline = MonotonicSeconds() + seconds;
  int count = OpenFds(pid);
  while (count != expected && MonotonicSeconds() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    count = OpenFds(pid);
  }
  return count;
}

ScraperPool::ScraperPool(uint16_t port, std::string path, int threads, Check check)
    : port_(port), path_(std::move(path)), check_(std::move(check)), latencies_(threads) {
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] { Run(static_cast<size_t>(i)); });
  }
}

ScraperPool::~ScraperPool() { Stop(); }

void ScraperPool::Stop() {
  stop_ = true;
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

void ScraperPool::Run(size_t index) {
  std::vector<double>& latencies = latencies_[index];
  while (!stop_) {
    const double start = MonotonicSeconds();
    const HttpResponse response = HttpRequest(port_, "GET", path_);
    latencies.push_back(MonotonicSeconds() - start);
    std::string error;
    if (response.status != 200) {
      error = "status " + std::to_string(response.status) + " " + response.error + " " +
              response.body.substr(0, 200);
    } else {
      error = check_(response);
    }
    scrapes_++;
    if (!error.empty()) {
      failures_++;
      std::lock_guard<std::mutex> lock(mutex_);
      if (first_failures_.size() < kKeptFailures) {
        first_failures_.push_back(error);
      }
    }
  }
}

std::vector<std::string> ScraperPool::FirstFailures() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return first_failures_;
}

LatencySummary ScraperPool::Latency() const {
  std::vector<double> all;
  for (const std::vector<double>& latencies : latencies_) {
    all.insert(all.end(), latencies.begin(), latencies.end());
  }
  return Summarize(std::move(all));
}

}  // namespace portwatch::testing
