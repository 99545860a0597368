#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/config.h"

namespace portwatch {

/// Outcome of one collector run; a failed collector still returns what it could read.
struct CollectStatus {
  bool ok = true;
  std::string error;
};

/// One source of metrics, read fresh on every scrape. The runner never calls a collector from two
/// threads at once, so implementations need no locking of their own.
class Collector {
 public:
  virtual ~Collector() = default;
  /// Stable name for --collector.<name> and the collector label.
  virtual std::string_view Name() const = 0;
  virtual CollectStatus Collect(const Config& config,
                                std::vector<prometheus::MetricFamily>& out) = 0;
};

/// Builds one metric family sample by sample.
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);

  FamilyBuilder& Add(std::vector<prometheus::ClientMetric::Label> labels, double value);
  FamilyBuilder& Add(double value) { return Add({}, value); }
  bool Empty() const { return family_.metric.empty(); }
  /// Moves the family into `out`, sorted by labels so the exposition is stable.
  void MoveTo(std::vector<prometheus::MetricFamily>& out);

 private:
  prometheus::MetricFamily family_;
};

}  // namespace portwatch
