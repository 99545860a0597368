#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/common/result.h"
#include "collectors/config.h"

namespace portwatch {

/// One source of metrics, read fresh on every scrape. The runner never calls a collector from two
/// threads at once, so implementations need no locking of their own.
class Collector {
 public:
  virtual ~Collector() = default;
  /// Stable name for --collector.<name> and the collector label.
  virtual std::string_view Name() const = 0;
  /// Appends the metrics to `out`. A failed collector still appends what it could read.
  virtual Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) = 0;
};

}  // namespace portwatch
