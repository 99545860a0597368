// Debian's CivetWeb starts its worker threads with a fixed 100 KiB stack
// (pthread_attr_setstacksize). That is not enough for its own error path: mg_send_http_error keeps
// several path-sized buffers on the stack and a HEAD or OPTIONS request to a handler that does not
// implement the method overflowed it (SIGSEGV in vsnprintf). AddressSanitizer's printf
// interceptors need far more again. This interposes the call for the exporter binary, so every
// thread that asks for a small stack gets at least kMinimumStackBytes; the pages are only
// reserved, so an idle worker costs address space, not memory.
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <cstddef>

namespace {

#ifdef PORTWATCH_SANITIZED_BUILD
constexpr size_t kMinimumStackBytes = size_t{8} << 20;
#else
constexpr size_t kMinimumStackBytes = size_t{2} << 20;
#endif

}  // namespace

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attributes, size_t size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const auto kRealSetStackSize =
      reinterpret_cast<SetStackSize>(::dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  return kRealSetStackSize(attributes, std::max(size, kMinimumStackBytes));
}
