#pragma once

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/sockets.h"

namespace portwatch::testing {

/// Every kind of socket the sockets collector counts, built in the calling thread's network
/// namespace (a private one, ephemeral range 40000-40999): TCP listeners of both families, one
/// inside the ephemeral range, held connections, server- and client-side TIME_WAIT, request
/// sockets, a client on a fixed port, an IPv4 client on a port an IPv6-only socket listens on,
/// UDP servers and clients. The sockets live as long as the object.
class KnownSocketTable {
 public:
  /// Builds it; false (with the test failure recorded) when a socket could not be made.
  ::testing::AssertionResult Build() {
    listener_v4_ = Listen("127.0.0.1", 5000);
    listener_v6_ = Listen("::1", 5001);
    listener_in_range_ = Listen("127.0.0.1", 40500);
    if (!listener_v4_.Valid() || !listener_v6_.Valid() || !listener_in_range_.Valid()) {
      return ::testing::AssertionFailure() << "listeners";
    }
    // The IPv6-only listener on an in-range port (used below) is made before any connect(): a
    // client's ephemeral port may be 40600 until a bind() holds it, and a client-side TIME_WAIT
    // left on [::1]:40600 made this bind fail (EADDRINUSE, CI). A bound port is never handed
    // to connect().
    Keep(Listen("::1", 40600), "listener [::1]:40600");
    // Three held connections to 5000 and one to the in-range listener.
    for (int i = 0; i < 3; ++i) {
      Keep(Connect(SOCK_STREAM, "127.0.0.1", 5000), "held client of 5000");
      Keep(Accept(listener_v4_), "held server of 5000");
    }
    Keep(Connect(SOCK_STREAM, "127.0.0.1", 40500), "client of 40500");
    Keep(Accept(listener_in_range_), "server of 40500");
    // Server-side TIME_WAIT on 5000: the server closes first.
    for (int i = 0; i < 2; ++i) {
      UniqueFd client = Connect(SOCK_STREAM, "127.0.0.1", 5000);
      UniqueFd server = Accept(listener_v4_);
      server = UniqueFd();
      if (!CloseAfterPeer(std::move(client))) {
        return ::testing::AssertionFailure() << "server-side TIME_WAIT: " << std::strerror(errno);
      }
    }
    // Client-side TIME_WAIT toward [::1]:5001: the client closes first.
    for (int i = 0; i < 4; ++i) {
      UniqueFd client = Connect(SOCK_STREAM, "::1", 5001);
      UniqueFd server = Accept(listener_v6_);
      client = UniqueFd();
      if (!CloseAfterPeer(std::move(server))) {
        return ::testing::AssertionFailure() << "client-side TIME_WAIT: " << std::strerror(errno);
      }
    }
    // SYN-RECV request sockets: with TCP_DEFER_ACCEPT the server keeps a connection that sent
    // no data as a request socket, though the client side is established.
    Keep(Listen("127.0.0.1", 5002), "listener 5002");
    const int defer_seconds = 30;
    if (::setsockopt(held_.back().Get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer_seconds,
                     sizeof(defer_seconds)) != 0) {
      return ::testing::AssertionFailure() << "TCP_DEFER_ACCEPT";
    }
    for (int i = 0; i < 2; ++i) {
      Keep(Connect(SOCK_STREAM, "127.0.0.1", 5002), "request socket client");
    }
    // A client bound to a fixed port outside the ephemeral range keeps its port label.
    Keep(ConnectFrom(SOCK_STREAM, "127.0.0.1", 6000, "127.0.0.1", 5000), "client from 6000");
    Keep(Accept(listener_v4_), "server of the client from 6000");
    // An IPv4 client on an in-range port that an IPv6-only socket listens on: read per family,
    // the IPv4 table comes first, so the listener shows up late and the table is read again; in
    // one walk of both families every listener comes first.
    Keep(ConnectFrom(SOCK_STREAM, "127.0.0.1", 40600, "127.0.0.1", 5000), "client from 40600");
    Keep(Accept(listener_v4_), "server of the client from 40600");
    // UDP: two bound servers, a connected client from an ephemeral port, one from a fixed port.
    Keep(Bind(SOCK_DGRAM, "127.0.0.1", 5353), "UDP 5353");
    Keep(Bind(SOCK_DGRAM, "::1", 5354), "UDP [::1]:5354");
    Keep(Connect(SOCK_DGRAM, "127.0.0.1", 5353), "UDP client");
    const uint16_t udp_client_port = LocalPort(held_.back());
    Keep(Bind(SOCK_DGRAM, "127.0.0.1", 7000), "UDP 7000");
    if (!first_failure_.empty()) {
      return ::testing::AssertionFailure() << first_failure_;
    }
    if (udp_client_port < 40000) {
      return ::testing::AssertionFailure() << "UDP client port " << udp_client_port;
    }
    return ::testing::AssertionSuccess();
  }

 private:
  /// Keeps `fd`; the first that could not be made is named, with errno (a timed-out Accept says
  /// ETIMEDOUT), in Build()'s failure.
  void Keep(UniqueFd fd, const char* what) {
    if (!fd.Valid() && first_failure_.empty()) {
      first_failure_ = std::string(what) + ": " + std::strerror(errno);
    }
    held_.push_back(std::move(fd));
  }

  UniqueFd listener_v4_;
  UniqueFd listener_v6_;
  UniqueFd listener_in_range_;
  std::vector<UniqueFd> held_;
  std::string first_failure_;
};

}  // namespace portwatch::testing
