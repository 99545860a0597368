#include "exporter/web_config.h"

#include <string>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

constexpr const char* kHash = "$2y$04$jtS1.qPrJwMInQsUrOitxeikMJZ0/Ejkz2ReX6v1ObrmDFY9KyZ5O";

std::string Error(const std::string& yaml) {
  Result<WebConfig> result = ParseWebConfig(yaml, "/etc/portwatch/web.yml");
  EXPECT_FALSE(result.Ok()) << yaml;
  return result.Error();
}

TEST(WebConfigTest, EmptyFileMeansPlainHttpWithoutAuthentication) {
  Result<WebConfig> config = ParseWebConfig("", "web.yml");
  ASSERT_TRUE(config.Ok()) << config.Error();
  EXPECT_FALSE(config->tls.has_value());
  EXPECT_TRUE(config->basic_auth_users.empty());
  EXPECT_TRUE(config->headers.empty());
}

TEST(WebConfigTest, FullExporterToolkitFile) {
  Result<WebConfig> config = ParseWebConfig(std::string(R"(tls_server_config:
  cert_file: server.crt
  key_file: /etc/tls/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
  client_allowed_sans: [prometheus.monitoring.svc]
  min_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_AES_128_GCM_SHA256,
                  TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [X25519, CurveP256]
http_server_config:
  http2: false
  headers:
    X-Frame-Options: DENY
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ""
basic_auth_users:
  prometheus: )") + kHash + "\n",
                                            "/etc/portwatch/web.yml");
  ASSERT_TRUE(config.Ok()) << config.Error();
  ASSERT_TRUE(config->tls.has_value());
  const TlsServerConfig& tls = *config->tls;
  EXPECT_EQ(tls.cert_file, "/etc/portwatch/server.crt");  // relative to the web config file
  EXPECT_EQ(tls.key_file, "/etc/tls/server.key");
  EXPECT_EQ(tls.client_ca_file, "/etc/portwatch/ca.crt");
  EXPECT_EQ(tls.client_auth, ClientAuth::kRequireAndVerifyClientCert);
  EXPECT_EQ(tls.client_allowed_sans, std::vector<std::string>{"prometheus.monitoring.svc"});
  EXPECT_EQ(tls.min_version, TlsVersion::kTls13);
  EXPECT_EQ(tls.max_version, TlsVersion::kTls13);
  EXPECT_EQ(tls.cipher_list, "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305");
  EXPECT_FALSE(tls.prefer_server_cipher_suites);
  EXPECT_EQ(tls.groups, "X25519:P-256");
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"X-Frame-Options", "DENY"},
      {"X-Content-Type-Options", "nosniff"},
      {"Strict-Transport-Security", "max-age=31536000"}};  // blank: unset
  EXPECT_EQ(config->headers, headers);
  EXPECT_EQ(config->basic_auth_users.at("prometheus"), kHash);
  EXPECT_EQ(config->source, "/etc/portwatch/web.yml");
}

TEST(WebConfigTest, DefaultsAreTheExporterToolkits) {
  Result<WebConfig> config =
      ParseWebConfig("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n", "web.yml");
  ASSERT_TRUE(config.Ok()) << config.Error();
  EXPECT_EQ(config->tls->cert_file, "a.crt");  // no directory in the source: as written
  EXPECT_EQ(config->tls->client_auth, ClientAuth::kNoClientCert);
  EXPECT_EQ(config->tls->min_version, TlsVersion::kTls12);
  EXPECT_EQ(config->tls->max_version, TlsVersion::kTls13);
  EXPECT_EQ(config->tls->cipher_list, "");
  EXPECT_TRUE(config->tls->prefer_server_cipher_suites);
}

TEST(WebConfigTest, ErrorsNameFileLineAndProblem) {
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n"),
            "/etc/portwatch/web.yml:2:3: tls_server_config needs a certificate and its key: "
            "key_file (or key) is missing");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
                  "  client_auth_type: RequireAndVerifyClientCert\n"),
            "/etc/portwatch/web.yml:2:3: tls_server_config.client_auth_type verifies client "
            "certificates: client_ca_file (or client_ca) is needed");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
                  "  client_auth_type: Always\n"),
            "/etc/portwatch/web.yml:4:21: tls_server_config.client_auth_type must be one of "
            "NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, "
            "RequireAndVerifyClientCert, got \"Always\"");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
                  "  min_version: TLS13\n  max_version: TLS12\n"),
            "/etc/portwatch/web.yml:2:3: tls_server_config.min_version is above max_version");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
                  "  cipher_suites: [TLS_RSA_WITH_RC4_128_SHA]\n"),
            "/etc/portwatch/web.yml:4:19: tls_server_config.cipher_suites entries must be one of "
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, "
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, "
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "
            "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "
            "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
            "TLS_CHACHA20_POLY1305_SHA256, got \"TLS_RSA_WITH_RC4_128_SHA\"");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  key_file: a.key\n"
                  "  client_ca_file: ca.crt\n"),
            "/etc/portwatch/web.yml:2:3: tls_server_config.client_ca_file is set but "
            "client_auth_type is NoClientCert: set client_auth_type (RequireAndVerifyClientCert "
            "authenticates clients)");
  EXPECT_EQ(Error("tls_server_config:\n  cert_file: a.crt\n  cert: inline\n  key_file: k\n"),
            "/etc/portwatch/web.yml:2:3: tls_server_config: give each of cert, key and client_ca "
            "either inline or as a file, not both");
}

TEST(WebConfigTest, UnknownAndUnsupportedKeysAreRefused) {
  EXPECT_EQ(Error("tls_config:\n  cert_file: a\n"),
            "/etc/portwatch/web.yml:1:1: unknown key \"tls_config\" in the web config (known: "
            "basic_auth_users, http_server_config, tls_server_config)");
  EXPECT_EQ(Error("rate_limit:\n  interval: 1s\n  burst: 20\n"),
            "/etc/portwatch/web.yml:2:3: rate_limit is not supported by portwatch_exporter: "
            "--web.max-requests caps concurrent scrapes");
  EXPECT_EQ(Error("http_server_config:\n  headers:\n    Server: portwatch\n"),
            "/etc/portwatch/web.yml:3:5: unknown key \"Server\" in http_server_config.headers "
            "(known: Content-Security-Policy, Strict-Transport-Security, X-Content-Type-Options, "
            "X-Frame-Options, X-XSS-Protection)");
  EXPECT_EQ(Error("http_server_config:\n  headers:\n    X-Frame-Options: allow\n"),
            "/etc/portwatch/web.yml:3:22: http_server_config.headers.X-Frame-Options must be "
            "deny or sameorigin, got \"allow\"");
}

TEST(WebConfigTest, PasswordsMustBeBcryptHashesAndAreNeverEchoed) {
  const std::string error = Error("basic_auth_users:\n  alice: hunter2\n");
  EXPECT_EQ(error,
            "/etc/portwatch/web.yml:2:10: basic_auth_users.alice must be a bcrypt hash ($2y$10$ "
            "and 53 more characters; htpasswd -nBC 10 \"\" | tr -d ':\\n' makes one)");
  EXPECT_EQ(error.find("hunter2"), std::string::npos);
  // Cost outside 04-31, a foreign prefix, a truncated hash.
  for (const std::string& hash :
       {std::string("$2y$03$") + std::string(kHash).substr(7),
        std::string("$1$") + std::string(kHash).substr(3), std::string(kHash).substr(0, 59)}) {
    EXPECT_NE(Error("basic_auth_users:\n  alice: \"" + hash + "\"\n"), "") << hash;
  }
  EXPECT_EQ(Error(std::string("basic_auth_users:\n  \"a:b\": ") + kHash + "\n"),
            "/etc/portwatch/web.yml:2:3: basic_auth_users: user name \"a:b\" contains ':', which "
            "basic authentication cannot carry");
}

TEST(WebConfigTest, MissingFileIsAnError) {
  Result<WebConfig> config = LoadWebConfig("/nonexistent/web.yml");
  EXPECT_EQ(config.Error(), "/nonexistent/web.yml: cannot open web config file");
}

}  // namespace
}  // namespace portwatch
