#include "tests/bench/common.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "tests/bench/probes.h"
#include "tests/support/sockets.h"

namespace portwatch::bench {

double Median(std::vector<double> values) {
  if (values.empty()) {
    return 0;
  }
  std::sort(values.begin(), values.end());
  const size_t middle = values.size() / 2;
  return values.size() % 2 == 1 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

std::string Format(const char* format, double value) {
  char text[64];
  std::snprintf(text, sizeof(text), format, value);
  return text;
}

std::string Ms(double seconds) {
  return Format(seconds < 0.01 ? "%.2f ms" : seconds < 1 ? "%.1f ms" : "%.0f ms", seconds * 1e3);
}

std::string HumanCount(uint64_t n) {
  if (n >= 1000000 && n % 1000000 == 0) {
    return std::to_string(n / 1000000) + "M";
  }
  if (n >= 1000 && n % 1000 == 0) {
    return std::to_string(n / 1000) + "k";
  }
  return std::to_string(n);
}

bool ParseSize(const std::string& text, uint64_t& size) {
  char* end = nullptr;
  const double value = std::strtod(text.c_str(), &end);
  double scale = 1;
  const std::string suffix = end != nullptr ? end : "";
  if (suffix == "k" || suffix == "K") {
    scale = 1e3;
  } else if (suffix == "m" || suffix == "M") {
    scale = 1e6;
  } else if (!suffix.empty()) {
    return false;
  }
  if (end == text.c_str() || !(value > 0) || value * scale > 5e6) {
    return false;
  }
  size = static_cast<uint64_t>(std::llround(value * scale));
  return size >= 100;
}

bool Ipv6Loopback() {
  const testing::UniqueFd fd(::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return false;
  }
  sockaddr_in6 address{};
  address.sin6_family = AF_INET6;
  address.sin6_addr = in6addr_loopback;
  return ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0;
}

void WaitForKernelToSettle(int64_t baseline) {
  if (baseline < 0) {
    return;
  }
  int64_t objects = KernelTcpObjects();
  for (int step = 0; step < 600 && objects > baseline + 2000; ++step) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    objects = KernelTcpObjects();
  }
  if (objects > baseline + 2000) {
    Say("note: " + std::to_string(objects - baseline) +
        " TCP socket objects of an earlier namespace are still around");
  }
}

}  // namespace portwatch::bench
