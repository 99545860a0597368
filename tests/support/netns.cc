#include "tests/support/netns.h"

#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <net/if.h>

#include "collectors/netlink/transport.h"

namespace portwatch::testing {

std::string EnterPrivateNetworkNamespace() {
  if (::unshare(CLONE_NEWNET) != 0) {
    return std::string("unshare(CLONE_NEWNET): ") + std::strerror(errno) + " (run as root)";
  }
  netlink::UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return std::string("socket: ") + std::strerror(errno);
  }
  ifreq request{};
  std::strncpy(request.ifr_name, "lo", IFNAMSIZ - 1);
  if (::ioctl(fd.Get(), SIOCGIFFLAGS, &request) != 0) {
    return std::string("SIOCGIFFLAGS lo: ") + std::strerror(errno);
  }
  request.ifr_flags |= IFF_UP;
  if (::ioctl(fd.Get(), SIOCSIFFLAGS, &request) != 0) {
    return std::string("SIOCSIFFLAGS lo: ") + std::strerror(errno);
  }
  return "";
}

std::string WriteSysctl(const std::string& name, const std::string& value) {
  std::ofstream out("/proc/sys/" + name);
  out << value << "\n";
  out.close();
  if (!out) {
    return "cannot write /proc/sys/" + name;
  }
  return "";
}

TracefsForTest::TracefsForTest() {
  constexpr const char* kTracefs = "/sys/kernel/tracing";
  if (::access("/sys/kernel/tracing/events", F_OK) == 0) {
    return;
  }
  if (::mount("tracefs", kTracefs, "tracefs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    error_ = std::string("mount tracefs on /sys/kernel/tracing: ") + std::strerror(errno);
    return;
  }
  mounted_here_ = true;
}

TracefsForTest::~TracefsForTest() {
  if (mounted_here_) {
    ::umount2("/sys/kernel/tracing", MNT_DETACH);
  }
}

}  // namespace portwatch::testing
