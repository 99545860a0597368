// Flattens prometheus::MetricFamily vectors into maps that tests compare whole.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <prometheus/metric_family.h>
#include <prometheus/text_serializer.h>

namespace portwatch::unit {

/// `{a="1",b="2"}` in the order the labels were given ("" without labels).
inline std::string LabelKey(const std::vector<prometheus::ClientMetric::Label>& labels) {
  if (labels.empty()) {
    return "";
  }
  std::string key = "{";
  for (const prometheus::ClientMetric::Label& label : labels) {
    key += (key.size() == 1 ? "" : ",") + label.name + "=\"" + label.value + "\"";
  }
  return key + "}";
}

inline double SampleValue(const prometheus::MetricFamily& family,
                          const prometheus::ClientMetric& metric) {
  switch (family.type) {
    case prometheus::MetricType::Counter:
      return metric.counter.value;
    case prometheus::MetricType::Gauge:
      return metric.gauge.value;
    default:
      return metric.untyped.value;
  }
}

/// Every sample of the families called `name`, keyed by LabelKey(). Empty when there are none.
inline std::map<std::string, double> Samples(const std::vector<prometheus::MetricFamily>& families,
                                             std::string_view name) {
  std::map<std::string, double> samples;
  for (const prometheus::MetricFamily& family : families) {
    if (family.name != name) {
      continue;
    }
    for (const prometheus::ClientMetric& metric : family.metric) {
      samples[LabelKey(metric.label)] = SampleValue(family, metric);
    }
  }
  return samples;
}

/// Family names in exposition order.
inline std::vector<std::string> FamilyNames(const std::vector<prometheus::MetricFamily>& families) {
  std::vector<std::string> names;
  for (const prometheus::MetricFamily& family : families) {
    names.push_back(family.name);
  }
  return names;
}

inline std::string Serialize(const std::vector<prometheus::MetricFamily>& families) {
  return prometheus::TextSerializer().Serialize(families);
}

/// Label key of a portwatch_sockets sample.
inline std::string SocketKey(const std::string& family, const std::string& port,
                             const std::string& protocol, const std::string& state) {
  return "{family=\"" + family + "\",port=\"" + port + "\",protocol=\"" + protocol + "\",state=\"" +
         state + "\"}";
}

/// Label key of a portwatch_peer_sockets sample.
inline std::string PeerKey(const std::string& peer_port, const std::string& protocol,
                           const std::string& state) {
  return "{peer_port=\"" + peer_port + "\",protocol=\"" + protocol + "\",state=\"" + state + "\"}";
}

}  // namespace portwatch::unit
