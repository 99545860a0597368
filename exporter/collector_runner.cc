#include "exporter/collector_runner.h"

#include <chrono>
#include <exception>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"

namespace portwatch {

CollectorRunner::CollectorRunner(std::vector<std::unique_ptr<Collector>> collectors,
                                 const ConfigStore& config, BuildInfo build,
                                 std::vector<prometheus::MetricFamily> fixed_metrics)
    : collectors_(std::move(collectors)),
      config_(config),
      build_(std::move(build)),
      fixed_metrics_(std::move(fixed_metrics)) {}

size_t CollectorRunner::Waiting() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return waiting_;
}

std::vector<prometheus::MetricFamily> CollectorRunner::Collect() const {
  std::unique_lock<std::mutex> lock(mutex_);
  if (in_flight_) {
    const uint64_t awaited = generation_;
    waiting_++;
    collection_done_.wait(lock, [&] { return generation_ != awaited; });
    waiting_--;
    shared_scrapes_++;
    return *last_;
  }
  in_flight_ = true;
  lock.unlock();

  using Shared = std::shared_ptr<const std::vector<prometheus::MetricFamily>>;
  auto publish = [&](Shared result) {
    lock.lock();
    last_ = std::move(result);
    in_flight_ = false;
    generation_++;
    collection_done_.notify_all();
  };
  Shared result;
  try {
    result = std::make_shared<const std::vector<prometheus::MetricFamily>>(CollectNow());
  } catch (...) {
    // Never leave waiters blocked on a collection that will not finish.
    publish(std::make_shared<const std::vector<prometheus::MetricFamily>>());
    throw;
  }
  publish(result);
  return *result;
}

std::vector<prometheus::MetricFamily> CollectorRunner::CollectNow() const {
  std::shared_ptr<const Config> config = config_.Current();
  std::vector<prometheus::MetricFamily> out;
  FamilyBuilder duration("portwatch_scrape_collector_duration_seconds",
                         "Time a collector took during this scrape.",
                         prometheus::MetricType::Gauge);
  FamilyBuilder success("portwatch_scrape_collector_success",
                        "Whether a collector succeeded during this scrape.",
                        prometheus::MetricType::Gauge);
  for (const std::unique_ptr<Collector>& collector : collectors_) {
    const std::string name(collector->Name());
    const auto start = std::chrono::steady_clock::now();
    Status status;
    try {
      status = collector->Collect(*config, out);
    } catch (const std::exception& error) {
      status = Failure{error.what()};
    } catch (...) {
      status = Failure{"unknown exception"};
    }
    const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
    if (!status) {
      spdlog::warn(
          "{}",
          LogLine("collector failed").Add("collector", name).Add("err", status.Error()).Text());
    }
    duration.Add({{"collector", name}}, elapsed.count());
    success.Add({{"collector", name}}, status ? 1 : 0);
  }
  duration.MoveTo(out);
  success.MoveTo(out);

  FamilyBuilder("portwatch_build_info",
                "A metric with a constant '1' value labelled by version, revision and compiler "
                "from which portwatch_exporter was built.",
                prometheus::MetricType::Gauge)
      .Add({{"compiler", build_.compiler},
            {"revision", build_.revision},
            {"version", build_.version}},
           1)
      .MoveTo(out);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    FamilyBuilder("portwatch_scrape_shared_total",
                  "Scrapes answered with the result of a concurrent scrape's collection instead "
                  "of reading the kernel again.",
                  prometheus::MetricType::Counter)
        .Add(static_cast<double>(shared_scrapes_))
        .MoveTo(out);
  }
  config_.AppendMetrics(out);
  out.insert(out.end(), fixed_metrics_.begin(), fixed_metrics_.end());
  return out;
}

}  // namespace portwatch
