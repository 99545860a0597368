#pragma once

#include <array>
#include <bitset>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/bind_rules.h"
#include "collectors/netlink/sock_diag.h"
#include "collectors/procfs.h"
#include "collectors/socket_owners.h"
#include "exporter/config.h"

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

/// SO_REUSEADDR of the socket with this inode, or nullopt when it cannot be read.
using ReuseLookup = std::function<std::optional<bool>(uint32_t inode)>;

/// What portwatch remembers between scrapes: the SO_REUSEADDR flag of the last listener seen on
/// each service's port. TIME_WAIT sockets inherit it from the listener that accepted them, and
/// outlive it: this is how a restart is predicted after the old listener is gone.
struct RememberedListener {
  bool reuse_address = false;
  std::chrono::steady_clock::time_point seen;
};
using ListenerMemory = std::map<std::string, RememberedListener>;

/// Per-scrape view of the configured services and of every listening socket: who owns each
/// service's port, who else holds it, and whether a restart's bind() would fail now.
/// Aggregates while reading; keeps only listeners and a bounded set of inodes per service.
class ServiceTable {
 public:
  ServiceTable(const std::vector<ServiceConfig>& services, const ServicesOptions& options,
               KernelFacts facts);

  /// Feeds one socket: listeners of any port, and any socket on a service's port.
  void Add(netlink::Protocol protocol, const netlink::SocketRecord& record);

  /// TCP service ports on which nothing visible competes with the service's address: only
  /// these need the costly look for bound-inactive sockets (see kBoundInactiveStates).
  std::vector<uint16_t> PortsThatLookFree() const;

  /// Socket inodes whose holding processes the /proc pass must find.
  std::unordered_set<uint32_t> WantedInodes() const;
  /// Whether some service names an owner, so every process must be identified (`ps -ef`).
  bool NeedsAllProcesses() const;

  /// Emits the listener and service families. `memory` is read and updated (see
  /// RememberedListener); `now` dates what is remembered.
  void AppendMetrics(const SocketOwners& owners, const ReuseLookup& reuse, ListenerMemory& memory,
                     std::chrono::steady_clock::time_point now,
                     std::vector<prometheus::MetricFamily>& out) const;

  /// How long a remembered listener flag explains TIME_WAIT sockets (they live 60 s).
  static constexpr std::chrono::seconds kMemoryLifetime{120};

 private:
  static constexpr size_t kStates = 14;
  /// Distinct inodes kept per service for finding holders; the listener's are always kept.
  static constexpr size_t kMaxInodesPerService = 256;
  static constexpr size_t kMaxListeners = 65536;

  struct Listener {
    netlink::Protocol protocol;
    Endpoint endpoint;
    uint16_t port;
    uint32_t inode;
  };

  struct Observed {
    std::array<uint64_t, kStates> sockets_by_state{};      ///< every socket on the port
    std::array<uint64_t, kStates> overlapping_by_state{};  ///< those whose address competes
    std::vector<uint32_t> listener_inodes;  ///< overlapping TCP LISTEN / UDP unconnected
    std::vector<uint32_t> other_inodes;     ///< other overlapping sockets with an fd
    uint64_t others_without_inode = 0;      ///< other overlapping sockets without one
    uint32_t longest_time_wait_ms = 0;
  };

  std::vector<ServiceConfig> services_;
  ServicesOptions options_;
  KernelFacts facts_;
  std::vector<Observed> observed_;
  std::vector<Listener> listeners_;
  uint64_t listeners_dropped_ = 0;
};

/// Whether a process matches a service's owner: any of process (comm), cmdline (regex search),
/// exe. An empty match accepts every process.
bool OwnerMatches(const OwnerMatch& owner, const ProcessInfo& process);

}  // namespace portwatch
