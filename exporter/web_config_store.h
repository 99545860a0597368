#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/common/result.h"
#include "exporter/basic_auth.h"
#include "exporter/tls_settings.h"
#include "exporter/web_config.h"

namespace portwatch {

/// The web config in force, re-read when its file or a certificate file it names changes, as
/// the exporter-toolkit reads it on every request. A bad new version is refused: the previous
/// one stays in force, the error is logged once, and the metrics say so.
class WebConfigStore {
 public:
  /// What one request or handshake uses; never changes once taken.
  struct Snapshot {
    std::shared_ptr<const WebConfig> config;
    std::shared_ptr<BasicAuthenticator> auth;
    std::shared_ptr<const TlsSettings> tls;  ///< null when the server speaks plain HTTP
    /// http_server_config.headers as header lines ("Name: value\r\n..."), for every response.
    std::string header_lines;
  };

  /// Loads `path` (empty: no web config, plain HTTP without authentication). A failure is the
  /// start-up error ("FILE:LINE:COLUMN: ..."), and the exporter must not start.
  static Result<std::unique_ptr<WebConfigStore>> Open(const std::string& path);
  /// Use Open(): this makes an empty store.
  explicit WebConfigStore(std::string path) : path_(std::move(path)) {}

  /// The snapshot to use now, after re-reading what changed on disk (a few stat() calls).
  Snapshot Current();
  bool ServesTls() const { return serves_tls_; }

  /// portwatch_web_config_last_reload_successful and portwatch_web_config_reloads_total.
  void AppendMetrics(std::vector<prometheus::MetricFamily>& out) const;

 private:
  /// What identifies a file's version: a rewrite, a rename over it, a touch all change it.
  struct FileVersion {
    dev_t device = 0;
    ino_t inode = 0;
    off_t size = -1;
    int64_t modified_ns = -1;
    bool operator==(const FileVersion&) const = default;
  };
  static FileVersion VersionOf(const std::string& path);
  std::vector<FileVersion> VersionsOf(const WebConfig& config) const;
  static Result<Snapshot> Build(WebConfig config);

  void Refresh();

  const std::string path_;
  bool serves_tls_ = false;
  mutable std::mutex mutex_;
  Snapshot current_;
  std::vector<FileVersion> versions_;  ///< of the file and the certificate files it names
  std::vector<FileVersion> refused_;   ///< the versions last refused: not retried until changed
  uint64_t reloads_ = 0;
  uint64_t failures_ = 0;
  bool last_successful_ = true;
};

}  // namespace portwatch
