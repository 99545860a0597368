#include "collectors/sockets/pod_series_budget.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

namespace portwatch {

namespace {

using Labels = std::vector<prometheus::ClientMetric::Label>;

/// Sums `family`'s series by their labels with `label` set to "other".
size_t FoldLabel(prometheus::MetricFamily& family, const std::string& label) {
  std::map<Labels, double> sums;  // ordered: the exposition does not depend on the input order
  for (const prometheus::ClientMetric& metric : family.metric) {
    Labels labels = metric.label;
    for (prometheus::ClientMetric::Label& each : labels) {
      if (each.name == label) {
        each.value = "other";
      }
    }
    sums[std::move(labels)] += metric.gauge.value;
  }
  const size_t before = family.metric.size();
  family.metric.clear();
  for (auto& [labels, value] : sums) {
    prometheus::ClientMetric& metric = family.metric.emplace_back();
    metric.label = labels;
    metric.gauge.value = value;
  }
  return before - family.metric.size();
}

}  // namespace

size_t CountSeries(const std::vector<prometheus::MetricFamily>& families) {
  size_t series = 0;
  for (const prometheus::MetricFamily& family : families) {
    series += family.metric.size();
  }
  return series;
}

size_t FoldPodPorts(std::vector<prometheus::MetricFamily>& families) {
  size_t removed = 0;
  double untracked = 0;
  for (prometheus::MetricFamily& family : families) {
    if (family.name == "portwatch_sockets") {
      removed += FoldLabel(family, "port");
    } else if (family.name == "portwatch_peer_sockets") {
      removed += FoldLabel(family, "peer_port");
    } else if (family.name == "portwatch_ephemeral_destination_sockets") {
      for (const prometheus::ClientMetric& metric : family.metric) {
        untracked += metric.gauge.value;
      }
      removed += family.metric.size();
      family.metric.clear();
    }
  }
  for (prometheus::MetricFamily& family : families) {
    if (family.name == "portwatch_ephemeral_destination_untracked_sockets" &&
        !family.metric.empty()) {
      family.metric.front().gauge.value += untracked;
    }
  }
  return removed;
}

size_t FitPodsToBudget(const std::vector<std::vector<prometheus::MetricFamily>*>& pods,
                       size_t budget) {
  std::vector<std::pair<size_t, size_t>> sizes;  // (series, index)
  size_t total = 0;
  for (size_t i = 0; i < pods.size(); ++i) {
    const size_t series = CountSeries(*pods[i]);
    sizes.emplace_back(series, i);
    total += series;
  }
  // Largest first; among equals the earlier pod first.
  std::stable_sort(sizes.begin(), sizes.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  size_t removed = 0;
  for (const auto& [series, index] : sizes) {
    if (total <= budget) {
      break;
    }
    const size_t folded = FoldPodPorts(*pods[index]);
    total -= folded;
    removed += folded;
  }
  return removed;
}

}  // namespace portwatch
