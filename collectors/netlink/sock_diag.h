#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "collectors/netlink/transport.h"

namespace portwatch::netlink {

enum class Protocol : uint8_t { kTcp, kUdp };
enum class Family : uint8_t { kIpv4, kIpv6 };

/// Kernel socket states as sock_diag reports them (include/net/tcp_states.h).
enum SocketState : uint8_t {
  kEstablished = 1,
  kSynSent = 2,
  kSynRecv = 3,
  kFinWait1 = 4,
  kFinWait2 = 5,
  kTimeWait = 6,
  kClose = 7,
  kCloseWait = 8,
  kLastAck = 9,
  kListen = 10,
  kClosing = 11,
  kNewSynRecv = 12,
  /// Request-only pseudo-state (Linux 6.10+): also dump TCP sockets that are bound but neither
  /// listening nor connected; they are reported as kClose. Older kernels ignore the bit.
  kBoundInactive = 13,
  kMaxState = 12,
};

constexpr uint32_t StateBit(SocketState state) { return 1U << state; }
/// Every real state, 1..12: what `ss -a` lists.
constexpr uint32_t kAllStates = 0x1ffe;
/// Asking for bound-inactive sockets makes the kernel walk its whole bind hash, which holds
/// nearly every socket: about 30% more kernel time on a large table. Ask only when needed.
constexpr uint32_t kBoundInactiveStates = 1U << kBoundInactive;

std::string_view ProtocolName(Protocol protocol);
std::string_view FamilyName(Family family);
/// "tcp/ipv4": how a log line or an error names one sock_diag table.
std::string TableName(Protocol protocol, Family family);
/// ss-style lowercase state name; kClose reads "unconn": a bound socket that neither listens nor
/// is connected (a UDP server, or a TCP socket between bind() and listen()/connect()).
std::string_view StateName(uint8_t state);

struct DumpRequest {
  Protocol protocol = Protocol::kTcp;
  Family family = Family::kIpv4;
  uint32_t states = kAllStates;
  /// When not empty, the kernel returns only sockets whose local port is one of these
  /// (inet_diag bytecode), so a few ports cost no user-space work for the rest of the table.
  std::vector<uint16_t> local_ports;
  /// TCP only: IPv4 and IPv6 sockets together, `family` ignored. The kernel's TCP hash holds both
  /// families; a per-family request walks all of it and skips the other family's sockets, so two
  /// requests walk every socket twice (what `ss -t` does), this one once. Sent as the older
  /// inet_diag request (TCPDIAG_GETSOCK), whose family is AF_UNSPEC; each record carries its own.
  bool both_families = false;
};

/// One socket as sock_diag reports it, with the fields portwatch aggregates on.
struct SocketRecord {
  uint8_t family = 0;  ///< AF_INET or AF_INET6
  uint8_t state = 0;   ///< SocketState
  uint8_t timer = 0;   ///< idiag_timer: 1 retransmit, 2 keepalive, 3 TIME_WAIT, 4 zero window
  uint16_t local_port = 0;
  uint16_t remote_port = 0;
  std::array<uint8_t, 16> local_address{};  ///< network order; IPv4 in the first 4 bytes
  std::array<uint8_t, 16> remote_address{};
  /// IPV6_V6ONLY of an IPv6 socket (INET_DIAG_SKV6ONLY): 1 or 0, -1 when the kernel did not say
  /// (IPv4, TIME_WAIT and request sockets).
  int8_t v6only = -1;
  /// SO_REUSEADDR as the kernel holds it (sk_reuse, nonzero: set): 1 or 0, -1 when the source did
  /// not say (sock_diag never does; the BPF socket iterator always does). A TIME_WAIT socket
  /// carries the flag of the listener that accepted it, a request socket its listener's.
  int8_t reuse = -1;
  /// SO_REUSEPORT (sk_reuseport) the same way.
  int8_t reuseport = -1;
  uint32_t timer_expires_ms = 0;
  uint32_t uid = 0;
  uint32_t inode = 0;
};

/// The family of a record's address family (AF_INET6: kIpv6, else kIpv4).
Family FamilyOf(const SocketRecord& record);

enum class DumpOutcome {
  kComplete,     ///< every socket was read
  kInterrupted,  ///< NLM_F_DUMP_INTR: the table changed during the dump, counts may be off
  kUnsupported,  ///< the kernel lacks this protocol or family: no data, not an error
  kFailed,
};

struct DumpResult {
  DumpOutcome outcome = DumpOutcome::kFailed;
  std::string error;
  uint64_t sockets = 0;
  uint64_t stray_messages = 0;  ///< replies to another request (wrong sequence or port id)

  /// "tcp/ipv4: <error>": the error of a dump of `request`, named by its table.
  std::string TableError(const DumpRequest& request) const;
};

using SocketVisitor = std::function<void(const SocketRecord&)>;

/// Builds the SOCK_DIAG_BY_FAMILY dump request message for `request` with sequence `sequence`.
std::vector<std::byte> BuildDumpRequest(const DumpRequest& request, uint32_t sequence);

/// Runs one dump over `transport` and hands every socket to `visit`, validating sequence, port
/// id, lengths, NLMSG_ERROR, NLMSG_DONE and NLM_F_DUMP_INTR on the way.
DumpResult Dump(Transport& transport, const DumpRequest& request, const SocketVisitor& visit);

}  // namespace portwatch::netlink
