#include "collectors/common/family_builder.h"

#include <algorithm>

namespace portwatch {

FamilyBuilder::FamilyBuilder(std::string name, std::string help, prometheus::MetricType type) {
  family_.name = std::move(name);
  family_.help = std::move(help);
  family_.type = type;
}

FamilyBuilder& FamilyBuilder::Add(std::vector<prometheus::ClientMetric::Label> labels,
                                  double value) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  switch (family_.type) {
    case prometheus::MetricType::Counter:
      metric.counter.value = value;
      break;
    case prometheus::MetricType::Gauge:
      metric.gauge.value = value;
      break;
    default:
      metric.untyped.value = value;
      break;
  }
  family_.metric.push_back(std::move(metric));
  return *this;
}

void FamilyBuilder::MoveTo(std::vector<prometheus::MetricFamily>& out) {
  std::sort(family_.metric.begin(), family_.metric.end(),
            [](const prometheus::ClientMetric& a, const prometheus::ClientMetric& b) {
              return a.label < b.label;
            });
  out.push_back(std::move(family_));
  family_.metric.clear();
}

}  // namespace portwatch
