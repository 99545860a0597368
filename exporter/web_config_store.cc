#include "exporter/web_config_store.h"

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"

namespace portwatch {

WebConfigStore::FileVersion WebConfigStore::VersionOf(const std::string& path) {
  struct stat status {};
  if (path.empty() || ::stat(path.c_str(), &status) != 0) {
    return {};
  }
  return {status.st_dev, status.st_ino, status.st_size,
          static_cast<int64_t>(status.st_mtim.tv_sec) * 1000000000 + status.st_mtim.tv_nsec};
}

std::vector<WebConfigStore::FileVersion> WebConfigStore::VersionsOf(const WebConfig& config) const {
  std::vector<FileVersion> versions = {VersionOf(path_)};
  if (config.tls) {
    for (const std::string* file :
         {&config.tls->cert_file, &config.tls->key_file, &config.tls->client_ca_file}) {
      versions.push_back(VersionOf(*file));
    }
  }
  return versions;
}

Result<WebConfigStore::Snapshot> WebConfigStore::Build(WebConfig config) {
  Snapshot snapshot;
  if (config.tls) {
    Result<std::shared_ptr<const TlsSettings>> tls = TlsSettings::Load(*config.tls);
    if (!tls) {
      return Failure{config.source + ": tls_server_config: " + tls.Error()};
    }
    snapshot.tls = std::move(tls).Value();
  }
  for (const auto& [name, value] : config.headers) {
    snapshot.header_lines += name + ": " + value + "\r\n";
  }
  snapshot.auth = std::make_shared<BasicAuthenticator>(config.basic_auth_users);
  snapshot.config = std::make_shared<const WebConfig>(std::move(config));
  return snapshot;
}

Result<std::unique_ptr<WebConfigStore>> WebConfigStore::Open(const std::string& path) {
  auto store = std::make_unique<WebConfigStore>(path);
  Result<WebConfig> config = path.empty() ? Result<WebConfig>(WebConfig{}) : LoadWebConfig(path);
  if (!config) {
    return Failure{config.Error()};
  }
  store->versions_ = store->VersionsOf(*config);
  Result<Snapshot> snapshot = Build(std::move(config).Value());
  if (!snapshot) {
    return Failure{snapshot.Error()};
  }
  store->current_ = std::move(snapshot).Value();
  store->serves_tls_ = store->current_.tls != nullptr;
  return store;
}

WebConfigStore::Snapshot WebConfigStore::Current() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!path_.empty()) {
    Refresh();
  }
  return current_;
}

void WebConfigStore::Refresh() {
  const std::vector<FileVersion> on_disk = VersionsOf(*current_.config);
  if (on_disk == versions_ || on_disk == refused_) {
    return;
  }
  std::string error;
  Result<WebConfig> config = LoadWebConfig(path_);
  if (!config) {
    error = config.Error();
  } else if (config->tls.has_value() != serves_tls_) {
    error = path_ + ": switching between HTTP and HTTPS needs a restart of the exporter";
  } else {
    const std::vector<FileVersion> versions = VersionsOf(*config);
    Result<Snapshot> snapshot = Build(std::move(config).Value());
    if (snapshot) {
      current_ = std::move(snapshot).Value();
      versions_ = versions;
      refused_.clear();
      reloads_++;
      last_successful_ = true;
      spdlog::info("{}", LogLine("web config reloaded").Add("file", path_).Text());
      return;
    }
    error = snapshot.Error();
  }
  refused_ = on_disk;
  failures_++;
  last_successful_ = false;
  spdlog::error("{}", LogLine("web config reload failed, keeping the previous one")
                          .Add("file", path_)
                          .Add("err", error)
                          .Text());
}

void WebConfigStore::AppendMetrics(std::vector<prometheus::MetricFamily>& out) const {
  std::lock_guard<std::mutex> lock(mutex_);
  FamilyBuilder("portwatch_web_config_last_reload_successful",
                "Whether the last change to --web.config.file (or a certificate it names) was "
                "loaded; 0 means the previous web config is still in force.",
                prometheus::MetricType::Gauge)
      .Add(last_successful_ ? 1 : 0)
      .MoveTo(out);
  FamilyBuilder("portwatch_web_config_reloads_total",
                "Changes to --web.config.file or its certificate files, by result.",
                prometheus::MetricType::Counter)
      .Add({{"result", "failure"}}, static_cast<double>(failures_))
      .Add({{"result", "success"}}, static_cast<double>(reloads_))
      .MoveTo(out);
}

}  // namespace portwatch
