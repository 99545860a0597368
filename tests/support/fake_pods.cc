#include "tests/support/fake_pods.h"

#include <sys/vfs.h>

#include <cstdio>

namespace portwatch::testing {

std::filesystem::path Cgroup2Root() {
  constexpr long kCgroup2Magic = 0x63677270;
  struct statfs info {};
  if (::statfs("/sys/fs/cgroup", &info) == 0 && info.f_type == kCgroup2Magic) {
    return "/sys/fs/cgroup";
  }
  return "/sys/fs/cgroup/unified";
}

std::filesystem::path CgroupfsRoot() {
  return std::filesystem::exists("/sys/fs/cgroup/pids/cgroup.procs")
             ? std::filesystem::path("/sys/fs/cgroup/pids")
             : Cgroup2Root();
}

std::string RandomHex(std::mt19937_64& random, size_t digits) {
  std::string hex;
  while (hex.size() < digits) {
    char buffer[17];
    std::snprintf(buffer, sizeof(buffer), "%016llx",
                  static_cast<unsigned long long>(random()));  // NOLINT(runtime/int)
    hex += buffer;
  }
  return hex.substr(0, digits);
}

std::string NewPodUid(std::mt19937_64& random) {
  const std::string hex = RandomHex(random, 32);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20, 12);
}

}  // namespace portwatch::testing
