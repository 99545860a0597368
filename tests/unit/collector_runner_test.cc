#include "exporter/collector_runner.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/common/family_builder.h"
#include "exporter/config.h"
#include "exporter/config_store.h"
#include "tests/unit/metric_samples.h"

namespace portwatch {
namespace {

using unit::FamilyNames;
using unit::Samples;
using unit::Serialize;
using Counts = std::map<std::string, double>;

const BuildInfo kBuild{"1.2.3", "0123456789ab", "gcc 12.2.0"};

/// Emits one gauge named after itself, and fails or throws on request.
class FakeCollector : public Collector {
 public:
  enum class Behaviour { kSucceed, kFail, kThrowStd, kThrowOther };

  FakeCollector(std::string name, Behaviour behaviour, std::atomic<int>* runs = nullptr)
      : name_(std::move(name)), behaviour_(behaviour), runs_(runs) {}

  std::string_view Name() const override { return name_; }

  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override {
    if (runs_ != nullptr) {
      (*runs_)++;
    }
    FamilyBuilder("fake_" + name_, "A fake collector's metric.", prometheus::MetricType::Gauge)
        .Add(static_cast<double>(config.sockets.max_port_series))
        .MoveTo(out);
    switch (behaviour_) {
      case Behaviour::kSucceed:
        return {};
      case Behaviour::kFail:
        return Failure{"could not read"};
      case Behaviour::kThrowStd:
        throw std::runtime_error("boom");
      case Behaviour::kThrowOther:
        throw 42;
    }
    return {};
  }

 private:
  std::string name_;
  Behaviour behaviour_;
  std::atomic<int>* runs_;
};

/// Blocks in Collect() until released, counting its runs.
class BlockingCollector : public Collector {
 public:
  BlockingCollector(std::shared_future<void> release, std::atomic<int>& runs)
      : release_(std::move(release)), runs_(runs) {}

  std::string_view Name() const override { return "blocking"; }

  Status Collect(const Config& /*config*/, std::vector<prometheus::MetricFamily>& out) override {
    const int run = ++runs_;
    release_.wait();
    FamilyBuilder("blocking_run", "Which run of the collector produced this scrape.",
                  prometheus::MetricType::Gauge)
        .Add(run)
        .MoveTo(out);
    return {};
  }

 private:
  std::shared_future<void> release_;
  std::atomic<int>& runs_;
};

Config WithMaxPortSeries(size_t value) {
  Config config;
  config.sockets.max_port_series = value;
  return config;
}

TEST(CollectorRunnerTest, ExposesPerCollectorFamiliesAndBuildInfo) {
  ConfigStore store(WithMaxPortSeries(77), "");
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(
      std::make_unique<FakeCollector>("alpha", FakeCollector::Behaviour::kSucceed));
  collectors.push_back(std::make_unique<FakeCollector>("beta", FakeCollector::Behaviour::kFail));
  CollectorRunner runner(std::move(collectors), store, kBuild);

  std::vector<prometheus::MetricFamily> families = runner.Collect();
  EXPECT_EQ(FamilyNames(families),
            (std::vector<std::string>{
                "fake_alpha", "fake_beta", "portwatch_scrape_collector_duration_seconds",
                "portwatch_scrape_collector_success", "portwatch_build_info",
                "portwatch_scrape_shared_total", "portwatch_config_last_reload_successful",
                "portwatch_config_last_reload_success_timestamp_seconds"}));
  // Collectors see the store's current config.
  EXPECT_EQ(Samples(families, "fake_alpha"), (Counts{{"", 77}}));
  EXPECT_EQ(Samples(families, "fake_beta"), (Counts{{"", 77}}));
  EXPECT_EQ(Samples(families, "portwatch_scrape_collector_success"),
            (Counts{{R"({collector="alpha"})", 1}, {R"({collector="beta"})", 0}}));
  const Counts durations = Samples(families, "portwatch_scrape_collector_duration_seconds");
  ASSERT_EQ(durations.size(), 2U);
  EXPECT_EQ(durations.count(R"({collector="alpha"})"), 1U);
  EXPECT_EQ(durations.count(R"({collector="beta"})"), 1U);
  for (const auto& [labels, seconds] : durations) {
    EXPECT_GE(seconds, 0) << labels;
    EXPECT_LT(seconds, 60) << labels;
  }
  EXPECT_EQ(Samples(families, "portwatch_build_info"),
            (Counts{{R"({compiler="gcc 12.2.0",revision="0123456789ab",version="1.2.3"})", 1}}));
  EXPECT_EQ(Samples(families, "portwatch_scrape_shared_total"), (Counts{{"", 0}}));
  EXPECT_EQ(Samples(families, "portwatch_config_last_reload_successful"), (Counts{{"", 1}}));
  EXPECT_EQ(families[2].type, prometheus::MetricType::Gauge);
  EXPECT_EQ(families[3].type, prometheus::MetricType::Gauge);
  EXPECT_EQ(families[5].type, prometheus::MetricType::Counter);
}

TEST(CollectorRunnerTest, NoCollectorsStillExposesTheExportersOwnMetrics) {
  ConfigStore store(Config{}, "");
  CollectorRunner runner({}, store, kBuild);
  std::vector<prometheus::MetricFamily> families = runner.Collect();
  EXPECT_EQ(FamilyNames(families),
            (std::vector<std::string>{"portwatch_scrape_collector_duration_seconds",
                                      "portwatch_scrape_collector_success", "portwatch_build_info",
                                      "portwatch_scrape_shared_total",
                                      "portwatch_config_last_reload_successful",
                                      "portwatch_config_last_reload_success_timestamp_seconds"}));
  EXPECT_EQ(Samples(families, "portwatch_scrape_collector_success"), Counts{});
}

TEST(CollectorRunnerTest, ThrowingCollectorFailsAloneAndTheScrapeGoesOn) {
  ConfigStore store(Config{}, "");
  std::atomic<int> after_runs = 0;
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(
      std::make_unique<FakeCollector>("thrower", FakeCollector::Behaviour::kThrowStd));
  collectors.push_back(
      std::make_unique<FakeCollector>("after", FakeCollector::Behaviour::kSucceed, &after_runs));
  CollectorRunner runner(std::move(collectors), store, kBuild);

  std::vector<prometheus::MetricFamily> families;
  ASSERT_NO_THROW(families = runner.Collect());
  EXPECT_EQ(after_runs, 1);
  EXPECT_EQ(Samples(families, "portwatch_scrape_collector_success"),
            (Counts{{R"({collector="after"})", 1}, {R"({collector="thrower"})", 0}}));
  EXPECT_EQ(Samples(families, "portwatch_scrape_collector_duration_seconds").size(), 2U);
  // What the thrower added before throwing is kept, like any failed collector's partial data.
  EXPECT_EQ(Samples(families, "fake_thrower"), (Counts{{"", 1000}}));
  EXPECT_EQ(Samples(families, "fake_after"), (Counts{{"", 1000}}));

  // The runner is not left in flight: the next scrape collects again.
  ASSERT_NO_THROW(families = runner.Collect());
  EXPECT_EQ(after_runs, 2);
  EXPECT_EQ(Samples(families, "portwatch_scrape_shared_total"), (Counts{{"", 0}}));
}

TEST(CollectorRunnerTest, CollectorThrowingANonStdExceptionFailsAlone) {
  ConfigStore store(Config{}, "");
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(
      std::make_unique<FakeCollector>("thrower", FakeCollector::Behaviour::kThrowOther));
  collectors.push_back(
      std::make_unique<FakeCollector>("after", FakeCollector::Behaviour::kSucceed));
  CollectorRunner runner(std::move(collectors), store, kBuild);
  std::vector<prometheus::MetricFamily> families;
  ASSERT_NO_THROW(families = runner.Collect());
  EXPECT_EQ(Samples(families, "portwatch_scrape_collector_success"),
            (Counts{{R"({collector="after"})", 1}, {R"({collector="thrower"})", 0}}));
}

TEST(CollectorRunnerTest, SeesAReloadedConfigOnTheNextScrape) {
  const std::string path = ::testing::TempDir() + "/portwatch-runner-config.yaml";
  std::ofstream(path) << "collectors:\n  sockets:\n    max_port_series: 5\n";
  Result<Config> loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.Ok()) << loaded.Error();
  ConfigStore store(std::move(loaded).Value(), path);
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(
      std::make_unique<FakeCollector>("alpha", FakeCollector::Behaviour::kSucceed));
  CollectorRunner runner(std::move(collectors), store, kBuild);
  EXPECT_EQ(Samples(runner.Collect(), "fake_alpha"), (Counts{{"", 5}}));

  std::ofstream(path) << "collectors:\n  sockets:\n    max_port_series: 6\n";
  ASSERT_TRUE(store.Reload().Ok());
  EXPECT_EQ(Samples(runner.Collect(), "fake_alpha"), (Counts{{"", 6}}));

  std::ofstream(path) << "collectors:\n  sockets:\n    max_port_series: 0\n";
  EXPECT_EQ(store.Reload().Error(),
            path + ":3:22: collectors.sockets.max_port_series must be at least 1, got 0");
  std::vector<prometheus::MetricFamily> families = runner.Collect();
  EXPECT_EQ(Samples(families, "fake_alpha"), (Counts{{"", 6}}));
  EXPECT_EQ(Samples(families, "portwatch_config_last_reload_successful"), (Counts{{"", 0}}));
  std::remove(path.c_str());
}

TEST(CollectorRunnerTest, ConcurrentScrapesShareOneCollection) {
  std::promise<void> release;
  std::atomic<int> runs = 0;
  ConfigStore store(Config{}, "");
  std::vector<std::unique_ptr<Collector>> collectors;
  collectors.push_back(std::make_unique<BlockingCollector>(release.get_future().share(), runs));
  CollectorRunner runner(std::move(collectors), store, kBuild);

  constexpr int kScrapes = 4;
  std::vector<std::string> results(kScrapes);
  std::vector<std::thread> threads;
  for (int i = 0; i < kScrapes; ++i) {
    threads.emplace_back([&runner, &results, i] { results[i] = Serialize(runner.Collect()); });
  }
  // One scrape collects (and blocks); the other three must queue behind it. The collecting
  // scrape may reach its collector after the others queued: wait for both (a CI run read the
  // run count between the two).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((runner.Waiting() < kScrapes - 1 || runs < 1) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  const size_t waiting = runner.Waiting();
  const int runs_while_blocked = runs;
  release.set_value();
  for (std::thread& thread : threads) {
    thread.join();
  }
  ASSERT_EQ(waiting, 3U);
  EXPECT_EQ(runs_while_blocked, 1);
  EXPECT_EQ(runs, 1);
  EXPECT_EQ(runner.Waiting(), 0U);
  ASSERT_NE(results[0], "");
  EXPECT_NE(results[0].find("blocking_run 1\n"), std::string::npos) << results[0];
  for (int i = 1; i < kScrapes; ++i) {
    EXPECT_EQ(results[i], results[0]) << "scrape " << i;
  }

  // The next scrape collects afresh and counts the three shared ones.
  std::vector<prometheus::MetricFamily> next = runner.Collect();
  EXPECT_EQ(runs, 2);
  EXPECT_EQ(Samples(next, "blocking_run"), (Counts{{"", 2}}));
  EXPECT_EQ(Samples(next, "portwatch_scrape_shared_total"), (Counts{{"", 3}}));
}

}  // namespace
}  // namespace portwatch
