#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

#include "collectors/collector.h"
#include "exporter/config_store.h"

namespace portwatch {

struct BuildInfo {
  std::string version;
  std::string revision;
  std::string compiler;
};

/// Runs the enabled collectors for each scrape and adds the exporter's own metrics.
///
/// prometheus-cpp calls Collect() from several web threads. Scrapes that arrive while a
/// collection is running wait for it and share its result, so concurrent scrapes never multiply
/// the kernel work.
class CollectorRunner : public prometheus::Collectable {
 public:
  /// `fixed_metrics` are settled at start and exposed unchanged (the capabilities kept).
  CollectorRunner(std::vector<std::unique_ptr<Collector>> collectors, const ConfigStore& config,
                  BuildInfo build, std::vector<prometheus::MetricFamily> fixed_metrics = {});

  std::vector<prometheus::MetricFamily> Collect() const override;

  /// Scrapes currently waiting for another scrape's collection (for tests).
  size_t Waiting() const;

 private:
  std::vector<prometheus::MetricFamily> CollectNow() const;

  std::vector<std::unique_ptr<Collector>> collectors_;
  const ConfigStore& config_;
  BuildInfo build_;
  std::vector<prometheus::MetricFamily> fixed_metrics_;

  mutable std::mutex mutex_;
  mutable std::condition_variable collection_done_;
  mutable bool in_flight_ = false;
  mutable uint64_t generation_ = 0;
  mutable size_t waiting_ = 0;
  mutable uint64_t shared_scrapes_ = 0;
  mutable std::shared_ptr<const std::vector<prometheus::MetricFamily>> last_;
};

}  // namespace portwatch
