#include "exporter/civetweb_tls/civetweb_tls.h"

#include <dlfcn.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <string>

extern "C" {
extern const unsigned char portwatch_libssl_alias[];
extern const unsigned char portwatch_libssl_alias_end[];
extern const unsigned char portwatch_libcrypto_alias[];
extern const unsigned char portwatch_libcrypto_alias_end[];
}

namespace portwatch {

namespace {

/// Loads a shared object held in memory. Once loaded under its SONAME, a later dlopen() of that
/// name (CivetWeb's) returns it instead of searching the disk.
Status LoadFromMemory(const char* name, const unsigned char* begin, const unsigned char* end) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    return Failure{ErrnoText(std::string("memfd_create ") + name, errno)};
  }
  const auto size = static_cast<size_t>(end - begin);
  size_t written = 0;
  while (written < size) {
    const ssize_t result = ::write(fd, begin + written, size - written);
    if (result < 0 && errno == EINTR) {
      continue;
    }
    if (result <= 0) {
      const int error = errno;
      ::close(fd);
      return Failure{ErrnoText(std::string("writing ") + name, error)};
    }
    written += static_cast<size_t>(result);
  }
  // The fd stays open for the life of the process, like the object: glibc knows a loaded
  // object by the path it was opened with, so a second object opened as the same
  // "/proc/self/fd/N" (fd N closed and reused) would be taken for the first.
  const std::string path = "/proc/self/fd/" + std::to_string(fd);
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    ::close(fd);
    const char* error = ::dlerror();
    return Failure{std::string("loading ") + name + ": " + (error != nullptr ? error : "?")};
  }
  return {};
}

}  // namespace

Status PrepareCivetWebTls() {
  static const Status kPrepared = []() -> Status {
    // OpenSSL 1.1 still exports the old name: CivetWeb finds everything by itself.
    if (::dlsym(RTLD_DEFAULT, "SSL_get_peer_certificate") != nullptr) {
      return {};
    }
    if (Status loaded = LoadFromMemory("portwatch-libcrypto-alias", portwatch_libcrypto_alias,
                                       portwatch_libcrypto_alias_end);
        !loaded) {
      return loaded;
    }
    return LoadFromMemory("portwatch-libssl-alias", portwatch_libssl_alias,
                          portwatch_libssl_alias_end);
  }();
  return kPrepared;
}

}  // namespace portwatch
