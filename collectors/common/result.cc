#include "collectors/common/result.h"

#include <cstring>

namespace portwatch {

std::string ErrnoText(const std::string& what, int error) {
  return what + ": " + std::strerror(error);
}

}  // namespace portwatch
