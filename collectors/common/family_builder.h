#pragma once

#include <string>
#include <vector>

#include <prometheus/metric_family.h>

namespace portwatch {

/// Builds one metric family sample by sample.
class FamilyBuilder {
 public:
  FamilyBuilder(std::string name, std::string help, prometheus::MetricType type);

  FamilyBuilder& Add(std::vector<prometheus::ClientMetric::Label> labels, double value);
  FamilyBuilder& Add(double value) { return Add({}, value); }
  /// Moves the family into `out`, sorted by labels so the exposition is stable.
  void MoveTo(std::vector<prometheus::MetricFamily>& out);

 private:
  prometheus::MetricFamily family_;
};

}  // namespace portwatch
