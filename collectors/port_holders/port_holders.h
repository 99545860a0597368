#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "collectors/netlink/sock_diag.h"
#include "collectors/netlink/transport.h"
#include "collectors/procfs/procfs.h"
#include "collectors/procfs/socket_owners.h"

namespace portwatch {

/// Which sockets to look at: those whose local port is one of `ports`, in the tables of
/// `protocols` x `families`, in `states`.
struct PortQuery {
  std::vector<uint16_t> ports;
  std::vector<netlink::Protocol> protocols = {netlink::Protocol::kTcp, netlink::Protocol::kUdp};
  std::vector<netlink::Family> families = {netlink::Family::kIpv4, netlink::Family::kIpv6};
  uint32_t states = netlink::kAllStates;
};

/// One socket on a queried port.
struct HeldSocket {
  netlink::Protocol protocol = netlink::Protocol::kTcp;
  netlink::SocketRecord record;
};

/// A table that could not be read: the kernel refused the dump, the transport failed, or the
/// kernel lacks the table (no tcp_diag/udp_diag). Its sockets are missing from the answer, so
/// "nobody holds the port" would be a guess.
struct UnreadTable {
  netlink::Protocol protocol = netlink::Protocol::kTcp;
  netlink::Family family = netlink::Family::kIpv4;
  netlink::DumpOutcome outcome = netlink::DumpOutcome::kFailed;  ///< kFailed or kUnsupported
  std::string error;
};

/// The answer to "who holds port P": the sockets on the port, the processes holding them, and the
/// tables that could not be read.
struct PortHolders {
  /// In dump order: tables in the query's order (protocol, then family), sockets as the kernel
  /// listed them.
  std::vector<HeldSocket> sockets;
  /// The processes holding the sockets' inodes (from /proc, or the injected resolver).
  SocketOwners owners;
  std::vector<UnreadTable> unread;

  /// The processes holding `socket` (empty: none visible, or a socket without an fd).
  const std::vector<ProcessInfo>& ProcessesOf(const HeldSocket& socket) const;
  /// Every holding process once, in the order of the sockets they hold.
  std::vector<ProcessInfo> Processes() const;
  /// Whether some socket has an fd whose process could not be found (another PID namespace, no
  /// privilege to read its fds).
  bool HasInvisibleHolders() const;
  /// Sockets per state name ("listen", "time_wait"...).
  std::map<std::string, uint64_t> CountByState() const;
  /// "tcp/ipv4 (netlink send: Input/output error), udp/ipv6 (No such file or directory)"; empty
  /// when every table was read.
  std::string UnreadText() const;
};

/// Finds the processes holding some socket inodes: FindSocketOwners() over a /proc, or a cache of
/// earlier answers (SocketOwnerCache).
using OwnerResolver = std::function<SocketOwners(const std::unordered_set<uint32_t>& inodes)>;

/// The resolver that reads `procfs` afresh each time (FindSocketOwners). Without
/// `command_lines` the processes it returns carry no command line (privacy.command_lines).
OwnerResolver ProcOwnerResolver(ProcFs procfs, bool command_lines = true);

/// Dumps the tables of `query` over `transport`, each filtered in the kernel to the query's ports
/// (inet_diag bytecode: the rest of the table never reaches user space), and resolves the holding
/// processes of the sockets found with `resolve_owners` (not called when no socket has an fd).
PortHolders FindPortHolders(netlink::Transport& transport, const PortQuery& query,
                            const OwnerResolver& resolve_owners);

}  // namespace portwatch
