// Built only with PORTWATCH_SANITIZE. Debian's CivetWeb starts its worker threads with a small
// fixed stack (pthread_attr_setstacksize); AddressSanitizer's printf interceptors need far more
// stack than the uninstrumented code, and overflow it inside CivetWeb's own mg_printf. This
// interposes the call for the sanitizer build only, so the threads get an ordinary 8 MiB stack.
#include <dlfcn.h>
#include <pthread.h>

#include <algorithm>
#include <cstddef>

extern "C" int pthread_attr_setstacksize(pthread_attr_t* attributes, size_t size) {
  using SetStackSize = int (*)(pthread_attr_t*, size_t);
  static const auto kRealSetStackSize =
      reinterpret_cast<SetStackSize>(::dlsym(RTLD_NEXT, "pthread_attr_setstacksize"));
  constexpr size_t kSanitizerStackBytes = size_t{8} << 20;
  return kRealSetStackSize(attributes, std::max(size, kSanitizerStackBytes));
}
