#include "collectors/services/bind_rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/netlink/transport.h"

namespace portwatch {
namespace {

using netlink::UniqueFd;

/// "127.0.0.1", "::", "::ffff:10.0.0.1"; a trailing "/v6only" sets IPV6_V6ONLY.
Endpoint Parse(const std::string& spec) {
  const size_t slash = spec.find('/');
  const std::string text = spec.substr(0, slash);
  Endpoint endpoint;
  endpoint.ipv6 = text.find(':') != std::string::npos;
  if (::inet_pton(endpoint.ipv6 ? AF_INET6 : AF_INET, text.c_str(), endpoint.address.data()) != 1) {
    ADD_FAILURE() << "bad address in test: " << spec;
  }
  endpoint.v6only = slash != std::string::npos;
  return endpoint;
}

bool Overlap(const std::string& a, const std::string& b) {
  const bool forward = AddressesOverlap(Parse(a), Parse(b));
  EXPECT_EQ(forward, AddressesOverlap(Parse(b), Parse(a))) << a << " vs " << b << " asymmetric";
  return forward;
}

TEST(AddressesOverlapTest, Ipv4) {
  EXPECT_TRUE(Overlap("127.0.0.1", "127.0.0.1"));
  EXPECT_FALSE(Overlap("127.0.0.1", "127.0.0.2"));
  EXPECT_TRUE(Overlap("0.0.0.0", "127.0.0.1"));
  EXPECT_TRUE(Overlap("0.0.0.0", "0.0.0.0"));
}

TEST(AddressesOverlapTest, Ipv6) {
  EXPECT_TRUE(Overlap("::1", "::1"));
  EXPECT_FALSE(Overlap("::1", "2001:db8::1"));
  EXPECT_TRUE(Overlap("::", "::1"));
  EXPECT_TRUE(Overlap("::/v6only", "::1"));
  EXPECT_TRUE(Overlap("::", "::"));
  EXPECT_TRUE(Overlap("::/v6only", "::/v6only"));
  // A V6ONLY wildcard leaves v4-mapped addresses to IPv4.
  EXPECT_TRUE(Overlap("::", "::ffff:127.0.0.1"));
  EXPECT_FALSE(Overlap("::/v6only", "::ffff:127.0.0.1"));
  // Two v4-mapped addresses compare as IPv4, wildcard included.
  EXPECT_TRUE(Overlap("::ffff:127.0.0.1", "::ffff:127.0.0.1"));
  EXPECT_FALSE(Overlap("::ffff:127.0.0.1", "::ffff:127.0.0.2"));
  EXPECT_TRUE(Overlap("::ffff:0.0.0.0", "::ffff:127.0.0.2"));
  EXPECT_FALSE(Overlap("::ffff:127.0.0.1", "::1"));
}

TEST(AddressesOverlapTest, Ipv4AgainstIpv6) {
  EXPECT_TRUE(Overlap("127.0.0.1", "::"));
  EXPECT_TRUE(Overlap("0.0.0.0", "::"));
  EXPECT_FALSE(Overlap("127.0.0.1", "::/v6only"));
  EXPECT_FALSE(Overlap("0.0.0.0", "::/v6only"));
  EXPECT_FALSE(Overlap("127.0.0.1", "::1"));
  EXPECT_FALSE(Overlap("0.0.0.0", "::1"));
  EXPECT_TRUE(Overlap("127.0.0.1", "::ffff:127.0.0.1"));
  EXPECT_FALSE(Overlap("127.0.0.1", "::ffff:127.0.0.2"));
  EXPECT_TRUE(Overlap("0.0.0.0", "::ffff:127.0.0.2"));
  EXPECT_TRUE(Overlap("127.0.0.2", "::ffff:0.0.0.0"));
}

TEST(EndpointOfTest, FromARecord) {
  netlink::SocketRecord record;
  record.family = AF_INET;
  record.local_address = {127, 0, 0, 1, 9, 9, 9, 9};  // bytes past an IPv4 address are ignored
  record.v6only = -1;
  Endpoint v4 = EndpointOf(record);
  EXPECT_FALSE(v4.ipv6);
  EXPECT_EQ(v4.address, (std::array<uint8_t, 16>{127, 0, 0, 1}));
  EXPECT_FALSE(v4.v6only);
  EXPECT_EQ(AddressText(v4), "127.0.0.1");

  record.family = AF_INET6;
  record.local_address = {};
  record.v6only = 1;
  Endpoint v6 = EndpointOf(record);
  EXPECT_TRUE(v6.ipv6);
  EXPECT_TRUE(v6.v6only);
  EXPECT_EQ(AddressText(v6), "::");
  record.v6only = -1;  // not reported: treated as dual-stack
  EXPECT_FALSE(EndpointOf(record).v6only);
}

TEST(EndpointOfTest, FromAServiceAndAsText) {
  ServiceConfig service;
  service.ipv6 = true;
  service.address_bytes = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1};
  service.ipv6_only = false;
  Endpoint endpoint = EndpointOf(service);
  EXPECT_TRUE(endpoint.ipv6);
  EXPECT_FALSE(endpoint.v6only);
  EXPECT_EQ(AddressText(endpoint), "::ffff:10.0.0.1");
  EXPECT_EQ(AddressText(EndpointOf(ServiceConfig{})), "0.0.0.0");
}

/// A socket bound to `spec` on `port` (0: the kernel picks). Invalid when bind() failed; the
/// errno is kept.
struct Bound {
  UniqueFd fd;
  int error = 0;
  uint16_t port = 0;
};

Bound BindTo(int type, const std::string& spec, uint16_t port) {
  const Endpoint endpoint = Parse(spec);
  Bound bound;
  bound.fd = UniqueFd(::socket(endpoint.ipv6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0));
  if (!bound.fd.Valid()) {
    bound.error = errno;
    return bound;
  }
  sockaddr_storage storage{};
  socklen_t length = 0;
  if (endpoint.ipv6) {
    const int v6only = endpoint.v6only ? 1 : 0;
    ::setsockopt(bound.fd.Get(), IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof(v6only));
    auto* address = reinterpret_cast<sockaddr_in6*>(&storage);
    address->sin6_family = AF_INET6;
    address->sin6_port = htons(port);
    std::memcpy(&address->sin6_addr, endpoint.address.data(), 16);
    length = sizeof(sockaddr_in6);
  } else {
    auto* address = reinterpret_cast<sockaddr_in*>(&storage);
    address->sin_family = AF_INET;
    address->sin_port = htons(port);
    std::memcpy(&address->sin_addr, endpoint.address.data(), 4);
    length = sizeof(sockaddr_in);
  }
  if (::bind(bound.fd.Get(), reinterpret_cast<sockaddr*>(&storage), length) != 0) {
    bound.error = errno;
    bound.fd = UniqueFd();
    return bound;
  }
  ::getsockname(bound.fd.Get(), reinterpret_cast<sockaddr*>(&storage), &length);
  bound.port = ntohs(endpoint.ipv6 ? reinterpret_cast<sockaddr_in6*>(&storage)->sin6_port
                                   : reinterpret_cast<sockaddr_in*>(&storage)->sin_port);
  return bound;
}

// The kernel is the reference: a second bind() to the same port fails with EADDRINUSE exactly
// when AddressesOverlap says the addresses compete (no SO_REUSEADDR on either socket).
TEST(AddressesOverlapTest, AgreesWithTheKernel) {
  const std::vector<std::string> endpoints = {
      "127.0.0.1", "127.0.0.2",        "0.0.0.0",          "::1",           "::",
      "::/v6only", "::ffff:127.0.0.1", "::ffff:127.0.0.2", "::ffff:0.0.0.0"};
  if (Bound probe = BindTo(SOCK_STREAM, "::1", 0); !probe.fd.Valid()) {
    GTEST_SKIP() << "no IPv6 loopback here: " << std::strerror(probe.error);
  }
  for (int type : {SOCK_STREAM, SOCK_DGRAM}) {
    for (const std::string& first : endpoints) {
      for (const std::string& second : endpoints) {
        Bound holder = BindTo(type, first, 0);
        ASSERT_TRUE(holder.fd.Valid()) << first << ": " << std::strerror(holder.error);
        Bound contender = BindTo(type, second, holder.port);
        ASSERT_TRUE(contender.fd.Valid() || contender.error == EADDRINUSE)
            << second << ": " << std::strerror(contender.error);
        EXPECT_EQ(!contender.fd.Valid(), AddressesOverlap(Parse(first), Parse(second)))
            << (type == SOCK_STREAM ? "tcp " : "udp ") << first << " then " << second << " on port "
            << holder.port;
      }
    }
  }
}

}  // namespace
}  // namespace portwatch
