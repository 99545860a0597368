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

/// Adds `labels` to every sample of `families` and moves each into the family of the same name in
/// `out` (an exposition has one HELP and TYPE per name), or appends it when `out` has none.
void AppendLabelled(std::vector<prometheus::MetricFamily>& families,
                    const std::vector<prometheus::ClientMetric::Label>& labels,
                    std::vector<prometheus::MetricFamily>& out);

}  // namespace portwatch
