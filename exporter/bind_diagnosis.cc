#include "exporter/bind_diagnosis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "collectors/netlink/transport.h"
#include "collectors/port_holders/port_holders.h"
#include "collectors/procfs/socket_owners.h"

namespace portwatch {

namespace {

/// errno of bind() to the address with SO_REUSEADDR, as the exporter's own listener would do.
int ProbeBind(const ListenAddress& address) {
  const bool ipv6 = address.host.empty() || address.host.find(':') != std::string::npos;
  netlink::UniqueFd fd(::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.Valid()) {
    return errno;
  }
  const int on = 1;
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  int result = 0;
  if (ipv6) {
    sockaddr_in6 target{};
    target.sin6_family = AF_INET6;
    target.sin6_port = htons(address.port);
    target.sin6_addr = in6addr_any;
    if (!address.host.empty() &&
        ::inet_pton(AF_INET6, address.host.c_str(), &target.sin6_addr) != 1) {
      return EINVAL;
    }
    result = ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&target), sizeof(target));
  } else {
    sockaddr_in target{};
    target.sin_family = AF_INET;
    target.sin_port = htons(address.port);
    if (::inet_pton(AF_INET, address.host.c_str(), &target.sin_addr) != 1) {
      return EINVAL;
    }
    result = ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&target), sizeof(target));
  }
  if (result != 0) {
    return errno;
  }
  return ::listen(fd.Get(), 1) == 0 ? 0 : errno;
}

}  // namespace

std::string ExplainListenFailure(const ListenAddress& address, bool command_lines) {
  const std::string port = std::to_string(address.port);
  const int error = ProbeBind(address);
  if (error == 0) {
    return "the HTTP server could not start (port " + port + " is bindable now: retry)";
  }
  if (error != EADDRINUSE) {
    return std::strerror(error);
  }

  Result<std::unique_ptr<netlink::Transport>> transport = netlink::KernelTransportFactory()();
  if (!transport) {
    return std::string(std::strerror(error)) + " (holder unknown: " + transport.Error() + ")";
  }
  // The exporter listens on TCP: the TCP sockets on its port, filtered by the kernel.
  PortQuery query;
  query.ports = {address.port};
  query.protocols = {netlink::Protocol::kTcp};
  const PortHolders holders =
      FindPortHolders(**transport, query, ProcOwnerResolver(ProcFs(), command_lines));

  std::string message = std::string(std::strerror(error)) + ": port " + port;
  const std::vector<ProcessInfo> processes = holders.Processes();
  if (!processes.empty()) {
    message += " is held by";
    for (size_t i = 0; i < processes.size(); ++i) {
      message += (i == 0 ? " " : ", ") + DescribeProcess(processes[i]);
    }
  } else if (holders.HasInvisibleHolders()) {
    message +=
        " is held by a process portwatch cannot see (another PID namespace, or no "
        "privilege to read its fds)";
  }
  std::string sockets;
  for (const auto& [state, count] : holders.CountByState()) {
    sockets += (sockets.empty() ? "" : ", ") + std::to_string(count) + " " + state;
  }
  if (!sockets.empty()) {
    message += "; sockets on the port: " + sockets;
  }
  if (!holders.unread.empty()) {
    message += "; cannot read " + holders.UnreadText();
  }
  return message;
}

}  // namespace portwatch
