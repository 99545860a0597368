#include "exporter/config_store.h"

#include <chrono>

#include "collectors/collector.h"
#include "collectors/common/family_builder.h"

namespace portwatch {

namespace {

double UnixNowSeconds() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

ConfigStore::ConfigStore(Config initial, std::string path)
    : current_(std::make_shared<const Config>(std::move(initial))),
      path_(std::move(path)),
      last_success_unix_seconds_(UnixNowSeconds()) {}

std::shared_ptr<const Config> ConfigStore::Current() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return current_;
}

Status ConfigStore::Reload() {
  Result<Config> result = LoadConfig(path_);
  std::lock_guard<std::mutex> lock(mutex_);
  last_reload_successful_ = result.Ok();
  if (!result) {
    return Failure{result.Error()};
  }
  current_ = std::make_shared<const Config>(std::move(result).Value());
  last_success_unix_seconds_ = UnixNowSeconds();
  return {};
}

void ConfigStore::AppendMetrics(std::vector<prometheus::MetricFamily>& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  FamilyBuilder("portwatch_config_last_reload_successful",
                "Whether the last configuration reload succeeded (0: the previous config is "
                "still in use).",
                prometheus::MetricType::Gauge)
      .Add(last_reload_successful_ ? 1 : 0)
      .MoveTo(out);
  FamilyBuilder("portwatch_config_last_reload_success_timestamp_seconds",
                "Unix time of the last successful configuration load.",
                prometheus::MetricType::Gauge)
      .Add(last_success_unix_seconds_)
      .MoveTo(out);
}

}  // namespace portwatch
