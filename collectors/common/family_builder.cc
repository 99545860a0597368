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

void AppendLabelled(std::vector<prometheus::MetricFamily>& families,
                    const std::vector<prometheus::ClientMetric::Label>& labels,
                    std::vector<prometheus::MetricFamily>& out) {
  for (prometheus::MetricFamily& family : families) {
    for (prometheus::ClientMetric& metric : family.metric) {
      metric.label.insert(metric.label.end(), labels.begin(), labels.end());
    }
    auto same = std::find_if(out.begin(), out.end(), [&family](const prometheus::MetricFamily& f) {
      return f.name == family.name;
    });
    if (same == out.end()) {
      out.push_back(std::move(family));
    } else {
      same->metric.insert(same->metric.end(), std::make_move_iterator(family.metric.begin()),
                          std::make_move_iterator(family.metric.end()));
    }
  }
  families.clear();
}

}  // namespace portwatch
