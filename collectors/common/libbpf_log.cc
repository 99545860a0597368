#include "collectors/common/libbpf_log.h"

#if PORTWATCH_HAVE_BPF
#include <bpf/libbpf.h>
#endif

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <string>

#include <spdlog/spdlog.h>

#include "collectors/common/logfmt.h"

namespace portwatch {

#if PORTWATCH_HAVE_BPF
namespace {

int LogLibbpf(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG) {
    return 0;
  }
  char line[512];
  const int length = std::vsnprintf(line, sizeof(line), format, args);
  std::string text(line, length > 0 ? std::min<size_t>(length, sizeof(line) - 1) : 0);
  while (!text.empty() && text.back() == '\n') {
    text.pop_back();
  }
  spdlog::debug("{}", LogLine("libbpf").Add("detail", text).Text());
  return length;
}

}  // namespace
#endif

void RouteLibbpfLogs() {
#if PORTWATCH_HAVE_BPF
  libbpf_set_print(LogLibbpf);
#endif
}

}  // namespace portwatch
