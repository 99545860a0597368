#pragma once

#include <bitset>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "collectors/netlink/sock_diag.h"
#include "collectors/procfs/procfs.h"
#include "collectors/services/socket_intake.h"

namespace portwatch {

/// Kernel settings the verdicts depend on.
struct KernelFacts {
  EphemeralRange range;
  /// net.ipv4.ip_local_reserved_ports.
  std::shared_ptr<const std::bitset<65536>> reserved = std::make_shared<std::bitset<65536>>();
  /// Whether sock_diag shows TCP sockets that are bound but inactive (Linux 6.10+). Without it a
  /// "free" verdict cannot be trusted and reads "unknown".
  bool bound_inactive_visible = true;
};

enum class Verdict { kFree, kBlocked, kUnknown };
const char* VerdictName(Verdict verdict);

/// Whether a fresh bind() would fail, and because of which sockets.
struct BindPrediction {
  Verdict verdict = Verdict::kFree;
  std::map<std::string, uint64_t> blockers_by_state;
  std::string unknown_because;  ///< set when verdict is kUnknown
};

/// What a prediction needs besides the sockets on the port.
struct BindContext {
  netlink::Protocol protocol = netlink::Protocol::kTcp;
  /// SO_REUSEADDR of the port's sockets with an fd: the flags their records carried
  /// (PortObservation::reuse_by_inode), completed by reading the fds of the others.
  ReuseFlags reuse_by_inode;
  /// SO_REUSEADDR of the listener that accepted the port's TIME_WAIT sockets (they carry its
  /// flag): the current listener's, else the remembered one; nullopt when neither is known.
  /// Only asked for TIME_WAIT sockets whose records did not carry their own flag.
  std::optional<bool> time_wait_reuse;
  /// KernelFacts::bound_inactive_visible.
  bool bound_inactive_visible = true;
};

/// SO_REUSEADDR of the listener on the port now: false as soon as one listener lacks it (it
/// blocks the others' TIME_WAIT reuse), nullopt when none could be read.
std::optional<bool> CurrentListenerReuse(const PortObservation& observed, const ReuseFlags& flags);

/// A fresh bind() to the service's address and port without SO_REUSEADDR: any socket on an
/// overlapping address blocks it, whatever its state (request sockets aside: they hold no port).
BindPrediction PredictBindWithoutReuse(const PortObservation& observed, const BindContext& context);

/// The same bind with SO_REUSEADDR, as the kernel decides it (inet_bind_conflict,
/// udp_lib_lport_inuse): a socket blocks when it listens (TCP), or when its own flag is unset;
/// TIME_WAIT sockets carry the flag of the listener that accepted them. A flag a record carried
/// decides exactly; without one, TIME_WAIT falls back to context.time_wait_reuse. "unknown" when
/// a flag that decides it cannot be known.
BindPrediction PredictBindWithReuse(const PortObservation& observed, const BindContext& context);

}  // namespace portwatch
