#pragma once

#include <memory>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string>
#include <vector>

#include "collectors/common/result.h"
#include "exporter/web_config.h"

namespace portwatch {

/// What one TLS handshake uses, built from a web config's tls_server_config: the certificate
/// and its chain, the key, the client CA store, the protocol settings. Immutable once built.
///
/// The server hands every connection the current TlsSettings in OpenSSL's client-hello callback
/// (ApplyTo), so a new certificate, CA or policy takes effect on the next connection without a
/// restart, as the exporter-toolkit's "read on every request" promises; a connection keeps the
/// settings it started its handshake with.
class TlsSettings {
 public:
  /// Reads the PEM files (or inline PEM) and checks that the key belongs to the certificate.
  static Result<std::shared_ptr<const TlsSettings>> Load(const TlsServerConfig& config);

  /// Installs the client-hello callback on CivetWeb's SSL_CTX; `current` is asked for the
  /// settings on every handshake (nullptr from it refuses the handshake).
  using CurrentSettings = std::shared_ptr<const TlsSettings> (*)();
  static void InstallOn(SSL_CTX* context, CurrentSettings current);

  /// Configures one connection: certificate, key, chain, versions, ciphers, groups and the
  /// client certificate policy. False when OpenSSL refuses one of them.
  bool ApplyTo(SSL* ssl, const std::shared_ptr<const TlsSettings>& self) const;

  /// Whether a verified client certificate carries an allowed subject alternative name (true
  /// when no list is configured).
  bool AllowsClient(X509* certificate) const;

 private:
  struct X509Free {
    void operator()(X509* certificate) const { X509_free(certificate); }
  };
  struct KeyFree {
    void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  };
  struct StoreFree {
    void operator()(X509_STORE* store) const { X509_STORE_free(store); }
  };
  struct ChainFree {
    void operator()(STACK_OF(X509) * chain) const { sk_X509_pop_free(chain, X509_free); }
  };
  struct NamesFree {
    void operator()(STACK_OF(X509_NAME) * names) const {
      sk_X509_NAME_pop_free(names, X509_NAME_free);
    }
  };

  TlsServerConfig config_;
  std::unique_ptr<X509, X509Free> certificate_;
  std::unique_ptr<STACK_OF(X509), ChainFree> chain_;
  std::unique_ptr<EVP_PKEY, KeyFree> key_;
  std::unique_ptr<X509_STORE, StoreFree> client_cas_;
  std::unique_ptr<STACK_OF(X509_NAME), NamesFree> client_ca_names_;
};

}  // namespace portwatch
