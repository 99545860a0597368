#pragma once

#include "collectors/common/result.h"

namespace portwatch {

/// Makes Debian's CivetWeb able to serve TLS with OpenSSL 3: loads, from memory, two small
/// objects answering CivetWeb's dlopen("libssl.so") and dlopen("libcrypto.so") (see
/// libssl_alias.c). Call once before the server starts with an https port; does nothing where
/// the system's libssl still has the OpenSSL 1.1 names. A failure means TLS cannot be served.
Status PrepareCivetWebTls();

}  // namespace portwatch
