#include "tests/support/sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

namespace portwatch::testing {

namespace {

bool IsIpv6(const std::string& address) { return address.find(':') != std::string::npos; }

/// Fills `storage` with address:port; returns its length or 0 on a malformed address.
socklen_t MakeAddress(const std::string& address, uint16_t port, sockaddr_storage& storage) {
  std::memset(&storage, 0, sizeof(storage));
  if (IsIpv6(address)) {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&storage);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    return ::inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1 ? sizeof(*v6) : 0;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&storage);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(port);
  return ::inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1 ? sizeof(*v4) : 0;
}

}  // namespace

UniqueFd Bind(int type, const std::string& address, uint16_t port, bool reuse_address,
              bool v6only) {
  const int family = IsIpv6(address) ? AF_INET6 : AF_INET;
  UniqueFd fd(::socket(family, type | SOCK_CLOEXEC, 0));
  const int on = 1;
  const int v6only_value = v6only ? 1 : 0;
  if (family == AF_INET6) {
    ::setsockopt(fd.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only_value, sizeof(v6only_value));
  }
  if (reuse_address) {
    ::setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  }
  sockaddr_storage storage;
  socklen_t length = MakeAddress(address, port, storage);
  if (!fd.Valid() || length == 0 ||
      ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    return UniqueFd();
  }
  return fd;
}

UniqueFd Listen(const std::string& address, uint16_t port, bool reuse_address) {
  UniqueFd fd = Bind(SOCK_STREAM, address, port, reuse_address);
  if (!fd.Valid() || ::listen(fd.Get(), 128) != 0) {
    return UniqueFd();
  }
  return fd;
}

UniqueFd ReusePortListen(const std::string& address, uint16_t port) {
  UniqueFd fd(::socket(IsIpv6(address) ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int on = 1;
  ::setsockopt(fd.Get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on));
  sockaddr_storage storage;
  const socklen_t length = MakeAddress(address, port, storage);
  if (!fd.Valid() || length == 0 ||
      ::bind(fd.Get(), reinterpret_cast<sockaddr*>(&storage), length) != 0 ||
      ::listen(fd.Get(), 16) != 0) {
    return UniqueFd();
  }
  return fd;
}

namespace {

bool ConnectTo(const UniqueFd& fd, const std::string& address, uint16_t port) {
  sockaddr_storage storage;
  socklen_t length = MakeAddress(address, port, storage);
  return fd.Valid() && length != 0 &&
         ::connect(fd.Get(), reinterpret_cast<sockaddr*>(&storage), length) == 0;
}

}  // namespace

UniqueFd Connect(int type, const std::string& address, uint16_t port) {
  UniqueFd fd(::socket(IsIpv6(address) ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0));
  return ConnectTo(fd, address, port) ? std::move(fd) : UniqueFd();
}

UniqueFd ConnectFrom(int type, const std::string& local_address, uint16_t local_port,
                     const std::string& address, uint16_t port) {
  UniqueFd fd = Bind(type, local_address, local_port);
  return ConnectTo(fd, address, port) ? std::move(fd) : UniqueFd();
}

/// How long a test waits for a loopback peer: a dropped SYN under heavy load (the ThreadSanitizer
/// build with parallel tests) is retransmitted after 1, 3 and 7 s, so 5 s was not always enough
/// (a CI run failed KnownSocketTable::Build after exactly 5 s).
constexpr int kPeerWaitMs = 20000;

UniqueFd Accept(const UniqueFd& listener) {
  pollfd wanted{listener.Get(), POLLIN, 0};
  const int ready = ::poll(&wanted, 1, kPeerWaitMs);
  if (ready != 1) {
    if (ready == 0) {
      errno = ETIMEDOUT;  // for the caller's message: nothing came
    }
    return UniqueFd();
  }
  return UniqueFd(::accept4(listener.Get(), nullptr, nullptr, SOCK_CLOEXEC));
}

namespace {

/// Reads until the peer's FIN. True when EOF was seen.
bool WaitForEof(const UniqueFd& fd) {
  char buffer[256];
  for (int reads = 0; reads < 1000; ++reads) {
    pollfd wanted{fd.Get(), POLLIN, 0};
    const int ready = ::poll(&wanted, 1, kPeerWaitMs);
    if (ready != 1) {
      if (ready == 0) {
        errno = ETIMEDOUT;
      }
      return false;
    }
    ssize_t received = ::recv(fd.Get(), buffer, sizeof(buffer), 0);
    if (received == 0) {
      return true;
    }
    if (received < 0) {
      return false;
    }
  }
  return false;
}

/// Sends our FIN and waits until the peer acknowledged it: our socket is then CLOSE (from
/// LAST_ACK), so the peer has received the FIN and is in TIME_WAIT.
bool ShutdownUntilAcknowledged(const UniqueFd& fd) {
  if (::shutdown(fd.Get(), SHUT_WR) != 0) {
    return false;
  }
  constexpr auto kPollInterval = std::chrono::milliseconds(1);
  for (int waited_ms = 0; waited_ms < kPeerWaitMs; ++waited_ms) {
    tcp_info info{};
    socklen_t length = sizeof(info);
    if (::getsockopt(fd.Get(), IPPROTO_TCP, TCP_INFO, &info, &length) != 0) {
      return false;
    }
    if (info.tcpi_state == TCP_CLOSE) {
      return true;
    }
    std::this_thread::sleep_for(kPollInterval);
  }
  errno = ETIMEDOUT;
  return false;
}

}  // namespace

bool CloseAfterPeer(UniqueFd fd) { return WaitForEof(fd) && ShutdownUntilAcknowledged(fd); }

uint16_t LocalPort(const UniqueFd& fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof(storage);
  if (::getsockname(fd.Get(), reinterpret_cast<sockaddr*>(&storage), &length) != 0) {
    return 0;
  }
  if (storage.ss_family == AF_INET6) {
    return ntohs(reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port);
  }
  return ntohs(reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
}

}  // namespace portwatch::testing
