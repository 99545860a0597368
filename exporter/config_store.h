#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "exporter/config.h"

namespace portwatch {

/// The live configuration. Reloads swap it atomically; a failed reload keeps the old one.
class ConfigStore {
 public:
  /// `path` empty means the embedded default, which reloads trivially.
  ConfigStore(Config initial, std::string path);

  std::shared_ptr<const Config> Current() const;
  /// Re-reads the config; on failure the old config is kept.
  Status Reload();
  void AppendMetrics(std::vector<prometheus::MetricFamily>& out) const;

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<const Config> current_;
  std::string path_;
  bool last_reload_successful_ = true;
  double last_success_unix_seconds_;
};

}  // namespace portwatch
