#include "collectors/services/bind_rules.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

namespace portwatch {

namespace {

bool IsZero(const uint8_t* bytes, size_t count) {
  return std::all_of(bytes, bytes + count, [](uint8_t byte) { return byte == 0; });
}

bool IsAny(const Endpoint& endpoint) {
  return IsZero(endpoint.address.data(), endpoint.ipv6 ? 16 : 4);
}

bool IsV4Mapped(const Endpoint& endpoint) {
  return endpoint.ipv6 && IsZero(endpoint.address.data(), 10) && endpoint.address[10] == 0xff &&
         endpoint.address[11] == 0xff;
}

/// The IPv4 address an IPv4 endpoint or a v4-mapped IPv6 endpoint stands for.
const uint8_t* Ipv4Of(const Endpoint& endpoint) {
  return endpoint.ipv6 ? endpoint.address.data() + 12 : endpoint.address.data();
}

bool Ipv4Overlap(const uint8_t* a, const uint8_t* b) {
  return IsZero(a, 4) || IsZero(b, 4) || std::memcmp(a, b, 4) == 0;
}

}  // namespace

Endpoint EndpointOf(const netlink::SocketRecord& record) {
  Endpoint endpoint;
  endpoint.ipv6 = record.family == AF_INET6;
  endpoint.address = record.local_address;
  if (!endpoint.ipv6) {
    std::fill(endpoint.address.begin() + 4, endpoint.address.end(), 0);
  }
  endpoint.v6only = record.v6only == 1;
  return endpoint;
}

Endpoint EndpointOf(const ServiceConfig& service) {
  return Endpoint{service.ipv6, service.address_bytes, service.ipv6_only};
}

bool AddressesOverlap(const Endpoint& a, const Endpoint& b) {
  if (!a.ipv6 && !b.ipv6) {
    return Ipv4Overlap(a.address.data(), b.address.data());
  }
  if (a.ipv6 && b.ipv6) {
    if (IsAny(a) || IsAny(b)) {
      // An IPV6_V6ONLY wildcard leaves the v4-mapped addresses to IPv4.
      const Endpoint& any = IsAny(a) ? a : b;
      const Endpoint& other = IsAny(a) ? b : a;
      return !(any.v6only && IsV4Mapped(other));
    }
    if (IsV4Mapped(a) && IsV4Mapped(b)) {
      return Ipv4Overlap(Ipv4Of(a), Ipv4Of(b));
    }
    return a.address == b.address;
  }
  const Endpoint& v6 = a.ipv6 ? a : b;
  const Endpoint& v4 = a.ipv6 ? b : a;
  if (IsAny(v6)) {
    return !v6.v6only;
  }
  if (IsV4Mapped(v6)) {
    return Ipv4Overlap(Ipv4Of(v6), v4.address.data());
  }
  return false;
}

std::string AddressText(const Endpoint& endpoint) {
  char text[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(endpoint.ipv6 ? AF_INET6 : AF_INET, endpoint.address.data(), text, sizeof(text));
  return text;
}

}  // namespace portwatch
