#include "exporter/bind_diagnosis.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_set>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"
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

std::string ExplainListenFailure(const ListenAddress& address) {
  const std::string port = std::to_string(address.port);
  const int error = ProbeBind(address);
  if (error == 0) {
    return "the HTTP server could not start (port " + port + " is bindable now: retry)";
  }
  if (error != EADDRINUSE) {
    return std::strerror(error);
  }

  std::string transport_error;
  std::unique_ptr<netlink::KernelTransport> transport =
      netlink::KernelTransport::Open(transport_error);
  if (!transport) {
    return std::string(std::strerror(error)) + " (holder unknown: " + transport_error + ")";
  }
  std::map<std::string, uint64_t> states;
  std::unordered_set<uint32_t> inodes;
  for (netlink::Family family : {netlink::Family::kIpv4, netlink::Family::kIpv6}) {
    netlink::Dump(*transport, {netlink::Protocol::kTcp, family, netlink::kAllStates, {}},
                  [&](const netlink::SocketRecord& record) {
                    if (record.local_port != address.port) {
                      return;
                    }
                    states[std::string(netlink::StateName(record.state))]++;
                    if (record.inode != 0) {
                      inodes.insert(record.inode);
                    }
                  });
  }
  std::string message = std::string(std::strerror(error)) + ": port " + port;
  SocketOwners owners = FindSocketOwners(ProcFs(), inodes);
  std::vector<std::string> holders;
  for (const auto& [inode, processes] : owners.by_inode) {
    for (const ProcessInfo& process : processes) {
      holders.push_back(DescribeProcess(process));
    }
  }
  if (!holders.empty()) {
    message += " is held by";
    for (size_t i = 0; i < holders.size(); ++i) {
      message += (i == 0 ? " " : ", ") + holders[i];
    }
  } else if (!inodes.empty()) {
    message +=
        " is held by a process portwatch cannot see (another PID namespace, or no "
        "privilege to read its fds)";
  }
  std::string sockets;
  for (const auto& [state, count] : states) {
    sockets += (sockets.empty() ? "" : ", ") + std::to_string(count) + " " + state;
  }
  if (!sockets.empty()) {
    message += "; sockets on the port: " + sockets;
  }
  return message;
}

}  // namespace portwatch
