#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/config.h"

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

}  // namespace portwatch
