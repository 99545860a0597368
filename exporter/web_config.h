#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/common/result.h"

namespace portwatch {

/// The exporter-toolkit web configuration (--web.config.file), the file format node_exporter,
/// blackbox_exporter and Prometheus itself read: same keys, same meaning, same defaults. What
/// portwatch cannot honour is refused with a reason rather than ignored.

/// tls_server_config.client_auth_type, as Go's crypto/tls names them.
enum class ClientAuth : uint8_t {
  kNoClientCert,
  kRequestClientCert,           ///< asked for, not required, not verified
  kRequireAnyClientCert,        ///< required, not verified
  kVerifyClientCertIfGiven,     ///< not required; verified against the client CA when sent
  kRequireAndVerifyClientCert,  ///< required and verified: the one that authenticates
};

enum class TlsVersion : uint8_t { kTls10, kTls11, kTls12, kTls13 };

struct TlsServerConfig {
  /// PEM files (relative paths are taken from the web config file's directory, as the
  /// exporter-toolkit does) or PEM text inline (cert, key, client_ca): one or the other.
  std::string cert_file;
  std::string key_file;
  std::string cert;
  std::string key;
  ClientAuth client_auth = ClientAuth::kNoClientCert;
  std::string client_ca_file;
  std::string client_ca;
  /// A verified client certificate must carry one of these subject alternative names.
  std::vector<std::string> client_allowed_sans;
  TlsVersion min_version = TlsVersion::kTls12;
  TlsVersion max_version = TlsVersion::kTls13;
  /// TLS 1.2 cipher suites in OpenSSL's names, mapped from Go's; empty: OpenSSL's defaults.
  /// (TLS 1.3 suites are not configurable, in Go as here.)
  std::string cipher_list;
  bool prefer_server_cipher_suites = true;
  /// Key exchange groups in OpenSSL's names ("P-256:X25519"), mapped from Go's CurveIDs.
  std::string groups;
};

struct WebConfig {
  /// Absent: plain HTTP.
  std::optional<TlsServerConfig> tls;
  /// User name to bcrypt hash; empty: no authentication.
  std::map<std::string, std::string> basic_auth_users;
  /// http_server_config.headers, added to every response.
  std::vector<std::pair<std::string, std::string>> headers;
  /// Where it came from, for logs and errors.
  std::string source;
};

/// Parses the YAML text of a web config; `source` names it in errors ("FILE:LINE:COLUMN: ...")
/// and its directory anchors relative paths. Unknown keys, unsupported values and a key without
/// its certificate are errors; so is a bcrypt hash that is not one.
Result<WebConfig> ParseWebConfig(const std::string& text, const std::string& source);

/// Reads and parses the file.
Result<WebConfig> LoadWebConfig(const std::string& path);

}  // namespace portwatch
