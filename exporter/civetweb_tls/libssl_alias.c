/* Built as a shared object whose SONAME is "libssl.so" and loaded (from memory) before CivetWeb
 * starts TLS: see exporter/civetweb_tls/civetweb_tls.cc for why.
 *
 * Debian 12's CivetWeb 1.15 is built against the OpenSSL 1.1 API and looks its functions up by
 * name at run time with dlopen("libssl.so") and dlsym(). OpenSSL 3 renamed
 * SSL_get_peer_certificate to SSL_get1_peer_certificate (the old name is only a macro), so
 * CivetWeb's pointer stays NULL and every TLS connection crashes it right after the handshake.
 * This object answers CivetWeb's lookups: the old name here, every other symbol from
 * libssl.so.3, which it depends on. */
#include <openssl/ssl.h>

#undef SSL_get_peer_certificate

/* Same contract as in OpenSSL 1.1: the caller owns a reference. */
X509* SSL_get_peer_certificate(const SSL* ssl) { return SSL_get1_peer_certificate(ssl); }
