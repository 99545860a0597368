#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/services/bind_rules.h"
#include "collectors/services/services_config.h"

namespace portwatch {

/// Socket counts indexed by kernel state (netlink::SocketState, 1..13); slot 0 collects any
/// state sock_diag is not expected to report.
inline constexpr size_t kStateSlots = 14;
using StateCounts = std::array<uint64_t, kStateSlots>;

/// Distinct inodes kept per service for finding holders: a port with thousands of connections
/// must not make the /proc pass look for thousands of sockets.
inline constexpr size_t kMaxInodesPerService = 256;

/// SO_REUSEADDR of sockets by inode: as the kernel reported it in their records, or as read from
/// a duplicate of their fd. An inode missing here has a flag nobody knows.
using ReuseFlags = std::map<uint32_t, bool>;

/// Overlapping sockets without an fd (TIME_WAIT, orphans) by state, split by the SO_REUSEADDR
/// their record carried. A socket whose record did not say is in neither: its flag is unknown.
struct InodelessReuse {
  StateCounts set{};
  StateCounts unset{};
};

/// What one scrape saw on one service's port, aggregated while the dump is read: the records
/// themselves are never stored.
struct PortObservation {
  StateCounts sockets_by_state{};         ///< every socket on the port, whatever its address
  StateCounts overlapping_by_state{};     ///< those whose address competes with the service's
  std::vector<uint32_t> listener_inodes;  ///< overlapping TCP LISTEN / UDP unconnected
  /// Other overlapping sockets with an fd (not TIME_WAIT, not request sockets: neither has one).
  std::vector<uint32_t> other_inodes;
  /// The flags the records carried for the inodes kept above (a source without flags: none).
  ReuseFlags reuse_by_inode;
  uint64_t others_without_inode = 0;  ///< other overlapping sockets without an fd
  /// Flags the records carried for the overlapping TIME_WAIT sockets and those counted in
  /// others_without_inode.
  InodelessReuse reuse_without_inode;
  uint32_t longest_time_wait_ms = 0;  ///< overlapping TIME_WAIT socket that expires last

  /// Whether any socket's address competes with the service's.
  bool AnythingOverlaps() const;
};

/// Whether `state` is a request socket's: SYN_RECV as sock_diag shows it, NEW_SYN_RECV as a
/// socket iterator does. A request socket holds no port of its own: its listener does.
bool IsRequestSocket(uint8_t state);

/// The sock_diag table a service's sockets are in.
netlink::Protocol ProtocolOf(const ServiceConfig& service);

/// Adds `record`, read from the `protocol` table, to `observation` when it is on the service's
/// protocol and port; any other socket is ignored.
void ObserveSocket(const ServiceConfig& service, netlink::Protocol protocol,
                   const netlink::SocketRecord& record, PortObservation& observation);

/// A listening socket on any port: one row of the `netstat -tulpn` view.
struct ListeningSocket {
  netlink::Protocol protocol = netlink::Protocol::kTcp;
  Endpoint endpoint;
  uint16_t port = 0;
  uint32_t inode = 0;
};

/// Every listening socket of a scrape (TCP LISTEN, unconnected UDP), for
/// portwatch_listener_info. Capped: a host with a million listeners costs bounded memory, and
/// the ones left out are counted.
class ListenerIntake {
 public:
  static constexpr size_t kMaxListeners = 65536;

  /// Keeps `record` when it is a listener; ignores any other socket.
  void Add(netlink::Protocol protocol, const netlink::SocketRecord& record);

  const std::vector<ListeningSocket>& Listeners() const { return listeners_; }
  /// Listeners not kept because kMaxListeners was reached.
  uint64_t Dropped() const { return dropped_; }

 private:
  std::vector<ListeningSocket> listeners_;
  uint64_t dropped_ = 0;
};

}  // namespace portwatch
