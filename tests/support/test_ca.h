#pragma once

#include <filesystem>
#include <string>

namespace portwatch::testing {

/// What MakeTestCertificates() wrote: PEM files, all in one directory.
struct TestCertificates {
  std::filesystem::path ca_cert;  ///< self-signed CA "portwatch test CA"
  std::filesystem::path ca_key;
  /// Server certificate for localhost and 127.0.0.1 (DNS and IP subject alternative names).
  std::filesystem::path server_cert;
  std::filesystem::path server_key;
  /// Client certificate (extendedKeyUsage clientAuth) whose only SAN is kClientSan.
  std::filesystem::path client_cert;
  std::filesystem::path client_key;
};

/// The client certificate's DNS SAN: what a web config's client_allowed_sans names.
inline constexpr const char* kClientSan = "prometheus.monitoring.svc";

/// Makes a throwaway CA and a server and a client certificate signed by it with the `openssl`
/// CLI (P-256 keys, valid 2 days) in `dir` as ca.{crt,key}, server.{crt,key} and
/// client.{crt,key}: real files, as a web config and Prometheus' tls_config name them. Fills
/// `out`; returns an error message (the failing command and its output), empty on success.
std::string MakeTestCertificates(const std::filesystem::path& dir, TestCertificates& out);

}  // namespace portwatch::testing
