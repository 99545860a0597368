#include "exporter/tls_settings.h"

#include <arpa/inet.h>

#include <algorithm>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <utility>

namespace portwatch {

namespace {

/// The options of every TLS connection, in place of what CivetWeb sets. Debian's CivetWeb 1.15
/// was built for OpenSSL 1.1 and sets that version's SSL_OP_ALL (0x80000BFF) and protocol bits;
/// on OpenSSL 3 the low bits mean other things, among them SSL_OP_DISABLE_TLSEXT_CA_NAMES (a TLS
/// 1.3 CertificateRequest then carries an empty certificate_authorities list, which RFC 8446
/// forbids and Go clients, Prometheus among them, abort on), SSL_OP_NO_EXTENDED_MASTER_SECRET,
/// client renegotiation and kTLS. The protocol versions are set per connection (ApplyTo).
constexpr uint64_t kConnectionOptions =
    SSL_OP_ALL | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_SSLv3;

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using UniqueBio = std::unique_ptr<BIO, BioFree>;

/// OpenSSL's reason for the last failure, and the error queue emptied.
std::string OpenSslError() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    text = buffer;  // the last one is the most specific
  }
  return text.empty() ? "unknown OpenSSL error" : text;
}

/// The PEM source of one item: a file, or the text given inline.
Result<UniqueBio> OpenPem(const std::string& file, const std::string& inline_pem,
                          const std::string& what) {
  UniqueBio bio(file.empty()
                    ? BIO_new_mem_buf(inline_pem.data(), static_cast<int>(inline_pem.size()))
                    : BIO_new_file(file.c_str(), "r"));
  if (!bio) {
    return Failure{what + " " + (file.empty() ? "(inline)" : file) + ": " + OpenSslError()};
  }
  return bio;
}

/// Every certificate of a PEM source, in order.
std::vector<X509*> ReadCertificates(BIO* bio) {
  std::vector<X509*> certificates;
  while (X509* certificate = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    certificates.push_back(certificate);
  }
  ERR_clear_error();  // the end of the input reads as "no start line"
  return certificates;
}

int ProtocolVersion(TlsVersion version) {
  switch (version) {
    case TlsVersion::kTls10:
      return TLS1_VERSION;
    case TlsVersion::kTls11:
      return TLS1_1_VERSION;
    case TlsVersion::kTls12:
      return TLS1_2_VERSION;
    case TlsVersion::kTls13:
      return TLS1_3_VERSION;
  }
  return TLS1_2_VERSION;
}

int VerifyMode(ClientAuth auth) {
  switch (auth) {
    case ClientAuth::kNoClientCert:
      return SSL_VERIFY_NONE;
    case ClientAuth::kRequestClientCert:
    case ClientAuth::kVerifyClientCertIfGiven:
      return SSL_VERIFY_PEER;
    case ClientAuth::kRequireAnyClientCert:
    case ClientAuth::kRequireAndVerifyClientCert:
      return SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
  }
  return SSL_VERIFY_NONE;
}

using SettingsRef = std::shared_ptr<const TlsSettings>;

/// An SSL ex_data slot holding the connection's settings (a heap SettingsRef, freed with the
/// SSL): the verify callback needs them, and they must outlive a swap mid-handshake.
int SettingsIndex() {
  static const int kIndex = SSL_get_ex_new_index(
      0, nullptr, nullptr, nullptr,
      [](void* /*parent*/, void* held, CRYPTO_EX_DATA* /*data*/, int /*index*/, long /*argl*/,
         void* /*argp*/) { std::unique_ptr<SettingsRef>(static_cast<SettingsRef*>(held)); });
  return kIndex;
}

const TlsSettings* SettingsOf(SSL* ssl) {
  const auto* held = static_cast<const SettingsRef*>(SSL_get_ex_data(ssl, SettingsIndex()));
  return held != nullptr ? held->get() : nullptr;
}

TlsSettings::CurrentSettings g_current = nullptr;

int OnClientHello(SSL* ssl, int* alert, void* /*arg*/) {
  const SettingsRef settings = g_current != nullptr ? g_current() : nullptr;
  if (settings == nullptr || !settings->ApplyTo(ssl, settings)) {
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
  }
  return SSL_CLIENT_HELLO_SUCCESS;
}

}  // namespace

Result<std::shared_ptr<const TlsSettings>> TlsSettings::Load(const TlsServerConfig& config) {
  auto settings = std::make_shared<TlsSettings>();
  settings->config_ = config;

  Result<UniqueBio> cert_pem = OpenPem(config.cert_file, config.cert, "cert_file");
  if (!cert_pem) {
    return Failure{cert_pem.Error()};
  }
  std::vector<X509*> certificates = ReadCertificates(cert_pem->get());
  if (certificates.empty()) {
    return Failure{"cert_file " + config.cert_file + ": no PEM certificate in it"};
  }
  settings->certificate_.reset(certificates.front());
  settings->chain_.reset(sk_X509_new_null());
  for (size_t i = 1; i < certificates.size(); ++i) {
    sk_X509_push(settings->chain_.get(), certificates[i]);
  }

  Result<UniqueBio> key_pem = OpenPem(config.key_file, config.key, "key_file");
  if (!key_pem) {
    return Failure{key_pem.Error()};
  }
  settings->key_.reset(PEM_read_bio_PrivateKey(key_pem->get(), nullptr, nullptr, nullptr));
  if (!settings->key_) {
    return Failure{"key_file " + config.key_file + ": " + OpenSslError()};
  }
  if (X509_check_private_key(settings->certificate_.get(), settings->key_.get()) != 1) {
    return Failure{"key_file " + config.key_file + " is not the key of cert_file " +
                   config.cert_file + ": " + OpenSslError()};
  }

  if (!config.client_ca_file.empty() || !config.client_ca.empty()) {
    Result<UniqueBio> ca_pem = OpenPem(config.client_ca_file, config.client_ca, "client_ca_file");
    if (!ca_pem) {
      return Failure{ca_pem.Error()};
    }
    settings->client_cas_.reset(X509_STORE_new());
    settings->client_ca_names_.reset(sk_X509_NAME_new_null());
    std::vector<X509*> cas = ReadCertificates(ca_pem->get());
    if (cas.empty()) {
      return Failure{"client_ca_file " + config.client_ca_file + ": no PEM certificate in it"};
    }
    for (X509* ca : cas) {
      X509_STORE_add_cert(settings->client_cas_.get(), ca);
      sk_X509_NAME_push(settings->client_ca_names_.get(), X509_NAME_dup(X509_get_subject_name(ca)));
      X509_free(ca);  // the store holds its own reference
    }
  }
  return std::shared_ptr<const TlsSettings>(std::move(settings));
}

void TlsSettings::InstallOn(SSL_CTX* context, CurrentSettings current) {
  g_current = current;
  SSL_CTX_clear_options(context, SSL_CTX_get_options(context));
  SSL_CTX_set_options(context, kConnectionOptions);
  SettingsIndex();  // allocate the slot before any handshake runs
  SSL_CTX_set_client_hello_cb(context, OnClientHello, nullptr);
}

bool TlsSettings::ApplyTo(SSL* ssl, const std::shared_ptr<const TlsSettings>& self) const {
  // A TLS 1.3 HelloRetryRequest brings a second ClientHello: replace what the first one left.
  auto* previous = static_cast<SettingsRef*>(SSL_get_ex_data(ssl, SettingsIndex()));
  auto held = std::make_unique<SettingsRef>(self);
  if (SSL_set_ex_data(ssl, SettingsIndex(), held.get()) != 1) {
    return false;
  }
  static_cast<void>(held.release());  // the SSL owns it now (the slot's free function frees it)
  std::unique_ptr<SettingsRef> replaced(previous);

  bool ok =
      SSL_set_min_proto_version(ssl, ProtocolVersion(config_.min_version)) == 1 &&
      SSL_set_max_proto_version(ssl, ProtocolVersion(config_.max_version)) == 1 &&
      (config_.cipher_list.empty() || SSL_set_cipher_list(ssl, config_.cipher_list.c_str()) == 1) &&
      (config_.groups.empty() || SSL_set1_groups_list(ssl, config_.groups.c_str()) == 1) &&
      SSL_use_certificate(ssl, certificate_.get()) == 1 &&
      SSL_use_PrivateKey(ssl, key_.get()) == 1 && SSL_set1_chain(ssl, chain_.get()) == 1;
  SSL_clear_options(ssl, SSL_get_options(ssl));
  SSL_set_options(ssl, kConnectionOptions);
  if (config_.prefer_server_cipher_suites) {
    SSL_set_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  } else {
    SSL_clear_options(ssl, SSL_OP_CIPHER_SERVER_PREFERENCE);
  }
  if (ok && config_.client_auth != ClientAuth::kNoClientCert) {
    if (client_cas_) {
      ok = SSL_set1_verify_cert_store(ssl, client_cas_.get()) == 1;
      SSL_set_client_CA_list(ssl, SSL_dup_CA_list(client_ca_names_.get()));
    }
    SSL_set_verify(
        ssl, VerifyMode(config_.client_auth), [](int preverified, X509_STORE_CTX* store) {
          SSL* connection = static_cast<SSL*>(
              X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
          const TlsSettings* settings = connection != nullptr ? SettingsOf(connection) : nullptr;
          if (settings == nullptr) {
            return 0;
          }
          const ClientAuth auth = settings->config_.client_auth;
          const bool verifies = auth == ClientAuth::kVerifyClientCertIfGiven ||
                                auth == ClientAuth::kRequireAndVerifyClientCert;
          if (verifies && preverified != 1) {
            return 0;
          }
          if (X509_STORE_CTX_get_error_depth(store) == 0 &&
              !settings->AllowsClient(X509_STORE_CTX_get_current_cert(store))) {
            return 0;
          }
          return 1;  // RequestClientCert and RequireAnyClientCert take any certificate
        });
  }
  ERR_clear_error();
  return ok;
}

bool TlsSettings::AllowsClient(X509* certificate) const {
  if (config_.client_allowed_sans.empty()) {
    return true;
  }
  if (certificate == nullptr) {
    return false;
  }
  struct NamesFree {
    void operator()(GENERAL_NAMES* names) const { GENERAL_NAMES_free(names); }
  };
  std::unique_ptr<GENERAL_NAMES, NamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; names && i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names.get(), i);
    std::string text;
    if (name->type == GEN_DNS || name->type == GEN_EMAIL || name->type == GEN_URI) {
      const ASN1_STRING* value = name->d.ia5;
      text.assign(reinterpret_cast<const char*>(ASN1_STRING_get0_data(value)),
                  static_cast<size_t>(ASN1_STRING_length(value)));
    } else if (name->type == GEN_IPADD) {
      const ASN1_OCTET_STRING* value = name->d.iPAddress;
      char address[INET6_ADDRSTRLEN] = {};
      const int length = ASN1_STRING_length(value);
      if ((length == 4 || length == 16) &&
          ::inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(value), address,
                      sizeof(address)) != nullptr) {
        text = address;
      }
    }
    if (!text.empty() &&
        std::find(config_.client_allowed_sans.begin(), config_.client_allowed_sans.end(), text) !=
            config_.client_allowed_sans.end()) {
      return true;
    }
  }
  return false;
}

}  // namespace portwatch
