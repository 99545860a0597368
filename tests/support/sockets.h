#pragma once

#include <cstdint>
#include <string>

#include "collectors/netlink/transport.h"

namespace portwatch::testing {

using netlink::UniqueFd;

/// A bound socket of `type` (SOCK_STREAM or SOCK_DGRAM) on `address` ("127.0.0.1", "::1",
/// "0.0.0.0", "::"), IPV6_V6ONLY set for IPv6 unless `v6only` is false. Invalid fd on failure.
UniqueFd Bind(int type, const std::string& address, uint16_t port, bool reuse_address = false,
              bool v6only = true);
/// Bind() plus listen().
UniqueFd Listen(const std::string& address, uint16_t port, bool reuse_address = false);
/// A TCP listener with SO_REUSEPORT on address:port: one more member of the port's group.
UniqueFd ReusePortListen(const std::string& address, uint16_t port);
/// A TCP (or UDP, with SOCK_DGRAM) socket connected to address:port from an ephemeral port.
UniqueFd Connect(int type, const std::string& address, uint16_t port);
/// Like Connect(), from a socket first bound to local_address:local_port.
UniqueFd ConnectFrom(int type, const std::string& local_address, uint16_t local_port,
                     const std::string& address, uint16_t port);
/// accept() with a 20 s bound (errno ETIMEDOUT when nothing came).
UniqueFd Accept(const UniqueFd& listener);
/// Closes a TCP connection whose peer closed first: reads until the peer's FIN, sends ours and
/// waits until the peer acknowledged it, so the peer's socket is in TIME_WAIT when this returns
/// true. Without the wait the peer may still be in FIN_WAIT2: a loopback packet dropped under
/// load is retransmitted only after 200 ms or more (a CI run counted 1 TIME_WAIT of 2). Each wait
/// is bounded by 20 s (errno ETIMEDOUT).
bool CloseAfterPeer(UniqueFd fd);
/// The local port a socket is bound to.
uint16_t LocalPort(const UniqueFd& fd);

}  // namespace portwatch::testing
