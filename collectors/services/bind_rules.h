#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "collectors/netlink/sock_diag.h"
#include "collectors/services/services_config.h"

namespace portwatch {

/// A local address as the kernel's bind-conflict check sees it.
struct Endpoint {
  bool ipv6 = false;
  std::array<uint8_t, 16> address{};  ///< IPv4 in the first 4 bytes
  bool v6only = false;
};

Endpoint EndpointOf(const netlink::SocketRecord& record);
Endpoint EndpointOf(const ServiceConfig& service);

/// Whether two binds to the same port compete for it, following the kernel's address rules
/// (inet_rcv_saddr_equal with wildcards): a wildcard overlaps every address of its family, an
/// IPv6 wildcard without IPV6_V6ONLY also every IPv4 address, and a v4-mapped IPv6 address is
/// the IPv4 address it maps.
bool AddressesOverlap(const Endpoint& a, const Endpoint& b);

/// "0.0.0.0", "::1", "::ffff:127.0.0.1": the address part of an endpoint.
std::string AddressText(const Endpoint& endpoint);

}  // namespace portwatch
