#include "tests/bench/probes.h"

#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "collectors/netlink/transport.h"

namespace portwatch::bench {

using netlink::UniqueFd;

double ThreadCpu() {
  timespec now{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

double ProcessCpu(pid_t pid) {
  double total = 0;
  std::error_code error;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
    std::ifstream in(task.path() / "schedstat");
    uint64_t on_cpu_ns = 0;
    if (in >> on_cpu_ns) {
      total += static_cast<double>(on_cpu_ns) * 1e-9;
    }
  }
  return total;
}

double Now() {
  timespec now{};
  ::clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& output_path,
            bool die_with_parent) {
  std::vector<char*> arguments;
  arguments.reserve(argv.size() + 1);
  for (const std::string& argument : argv) {
    arguments.push_back(const_cast<char*>(argument.c_str()));
  }
  arguments.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) {
    return pid;
  }
  if (die_with_parent) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) {
      ::_exit(127);
    }
  }
  const int output = ::open(output_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (output >= 0) {
    ::dup2(output, STDOUT_FILENO);
    ::dup2(output, STDERR_FILENO);
  }
  const int nothing = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (nothing >= 0) {
    ::dup2(nothing, STDIN_FILENO);
  }
  ::execvp(arguments[0], arguments.data());
  const std::string why = "exec " + argv[0] + ": " + std::strerror(errno) + "\n";
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, why.data(), why.size());
  ::_exit(127);
}

int WaitExit(pid_t pid, double timeout_seconds, double* cpu_seconds) {
  int status = 0;
  const UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (pidfd.Valid()) {
    pollfd wanted{pidfd.Get(), POLLIN, 0};
    const double deadline = Now() + timeout_seconds;
    while (true) {
      const int left_ms = static_cast<int>((deadline - Now()) * 1000);
      const int ready = ::poll(&wanted, 1, left_ms > 0 ? left_ms : 0);
      if (ready == 1) {
        break;
      }
      if (ready == 0 || (ready < 0 && errno != EINTR)) {
        return -1;
      }
    }
  }
  // Without a pidfd (old kernel), poll the pid in 1 ms steps.
  for (int step = 0; step < static_cast<int>(timeout_seconds * 1000) + 1; ++step) {
    rusage usage{};
    const pid_t done = ::wait4(pid, &status, pidfd.Valid() ? 0 : WNOHANG, &usage);
    if (done == pid) {
      if (cpu_seconds != nullptr) {
        *cpu_seconds = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e-6;
      }
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    if (done < 0 && errno != EINTR) {
      return -1;
    }
    if (done == 0) {
      ::usleep(1000);
    }
  }
  return -1;
}

HttpResult HttpGet(uint16_t port, const std::string& path, int timeout_seconds) {
  HttpResult result;
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    result.error = std::string("socket: ") + std::strerror(errno);
    return result;
  }
  timeval timeout{timeout_seconds, 0};
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  sockaddr_in server{};
  server.sin_family = AF_INET;
  server.sin_port = htons(port);
  server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd.Get(), reinterpret_cast<sockaddr*>(&server), sizeof(server)) != 0) {
    result.error = std::string("connect: ") + std::strerror(errno);
    return result;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  if (::send(fd.Get(), request.data(), request.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(request.size())) {
    result.error = std::string("send: ") + std::strerror(errno);
    return result;
  }
  std::string raw;
  static char buffer[1 << 16];
  // Bounded: a response larger than 1 GiB is a failure anyway.
  for (size_t reads = 0; reads < (1U << 14); ++reads) {
    const ssize_t received = ::recv(fd.Get(), buffer, sizeof(buffer), 0);
    if (received < 0 && errno == EINTR) {
      continue;
    }
    if (received < 0) {
      result.error = std::string("recv: ") + std::strerror(errno);
      return result;
    }
    if (received == 0) {
      const size_t header_end = raw.find("\r\n\r\n");
      if (raw.rfind("HTTP/1.", 0) != 0 || header_end == std::string::npos || raw.size() < 12) {
        result.error = "malformed response";
        return result;
      }
      result.status = std::atoi(raw.substr(9, 3).c_str());
      result.body = raw.substr(header_end + 4);
      return result;
    }
    raw.append(buffer, static_cast<size_t>(received));
  }
  result.error = "response too large";
  return result;
}

BareDumpResult BareTcpDump(uint32_t states) {
  BareDumpResult result;
  UniqueFd fd(::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_SOCK_DIAG));
  if (!fd.Valid()) {
    result.error = std::string("netlink socket: ") + std::strerror(errno);
    return result;
  }
  alignas(8) static std::byte buffer[64 * 1024];
  for (const int family : {AF_INET, AF_INET6}) {
    struct {
      nlmsghdr header;
      inet_diag_req_v2 body;
    } request{};
    request.header.nlmsg_len = sizeof(request);
    request.header.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    request.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
    request.header.nlmsg_seq = static_cast<uint32_t>(family);
    request.body.sdiag_family = static_cast<uint8_t>(family);
    request.body.sdiag_protocol = IPPROTO_TCP;
    request.body.idiag_states = states;
    sockaddr_nl kernel{};
    kernel.nl_family = AF_NETLINK;
    if (::sendto(fd.Get(), &request, sizeof(request), 0, reinterpret_cast<sockaddr*>(&kernel),
                 sizeof(kernel)) < 0) {
      result.error = std::string("netlink send: ") + std::strerror(errno);
      return result;
    }
    bool done = false;
    // Bounded: 2^24 datagrams of >= 1 message each exceeds any real table.
    for (uint32_t datagram = 0; datagram < (1U << 24) && !done; ++datagram) {
      const ssize_t received = ::recv(fd.Get(), buffer, sizeof(buffer), 0);
      if (received < 0 && errno == EINTR) {
        continue;
      }
      if (received < 0) {
        result.error = std::string("netlink recv: ") + std::strerror(errno);
        return result;
      }
      int remaining = static_cast<int>(received);
      for (auto* header = reinterpret_cast<nlmsghdr*>(buffer); NLMSG_OK(header, remaining);
           header = NLMSG_NEXT(header, remaining)) {
        if (header->nlmsg_type == NLMSG_DONE) {
          done = true;
          break;
        }
        if (header->nlmsg_type == NLMSG_ERROR) {
          result.error = "netlink: NLMSG_ERROR";
          return result;
        }
        result.messages++;
      }
    }
    if (!done) {
      result.error = "netlink dump did not end";
      return result;
    }
  }
  return result;
}

uint64_t ProcStatusKb(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return std::strtoull(line.c_str() + field.size() + 1, nullptr, 10);
    }
  }
  return 0;
}

int64_t KernelTcpObjects() {
  std::ifstream in("/proc/slabinfo");
  if (!in) {
    return -1;
  }
  int64_t total = 0;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    int64_t active = 0;
    fields >> name >> active;
    if (name == "TCP" || name == "TCPv6" || name == "tw_sock_TCP" || name == "tw_sock_TCPv6") {
      total += active;
    }
  }
  return total;
}

}  // namespace portwatch::bench
