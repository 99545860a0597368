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

#include "collectors/netlink/sock_diag.h"
#include "collectors/procfs/procfs.h"
#include "collectors/procfs/socket_owners.h"
#include "collectors/services/bind_rules.h"
#include "collectors/services/services_config.h"

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

enum class Verdict { kFree, kBlocked, kUnknown };
const char* VerdictName(Verdict verdict);

/// Whether a fresh bind() would fail, and because of which sockets.
struct BindPrediction {
  Verdict verdict = Verdict::kFree;
  std::map<std::string, uint64_t> blockers_by_state;
  std::string unknown_because;  ///< set when verdict is kUnknown
};

/// Everything portwatch knows about one service's port right now: what the metrics show and
/// what the diagnose command prints.
struct ServiceReport {
  ServiceConfig service;
  size_t owned_listeners = 0;                ///< listening sockets held by a matching process
  std::vector<ProcessInfo> owner_processes;  ///< matching processes holding sockets on the port
  std::vector<ProcessInfo> foreign_holders;  ///< other processes holding sockets on the port
  bool invisible_holders = false;            ///< some socket's process could not be seen
  std::optional<size_t> matching_processes;  ///< running processes matching the owner
  std::map<std::string, uint64_t> sockets_by_state;
  std::optional<bool> listener_reuse;    ///< SO_REUSEADDR of the current listener
  std::optional<bool> remembered_reuse;  ///< of the last listener seen (see ListenerMemory)
  BindPrediction without_reuse;
  BindPrediction with_reuse;
  double time_wait_remaining_seconds = 0;
  bool in_ephemeral_range = false;
  bool reserved = false;  ///< listed in ip_local_reserved_ports
};

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

  /// One report per service. `memory` is read and updated (see RememberedListener); `now`
  /// dates what is remembered.
  std::vector<ServiceReport> Reports(const SocketOwners& owners, const ReuseLookup& reuse,
                                     ListenerMemory& memory,
                                     std::chrono::steady_clock::time_point now) const;

  /// Emits the listener and service families (Reports() rendered as metrics).
  void AppendMetrics(const SocketOwners& owners, const ReuseLookup& reuse, ListenerMemory& memory,
                     std::chrono::steady_clock::time_point now,
                     std::vector<prometheus::MetricFamily>& out) const;
  void AppendListenerMetrics(const SocketOwners& owners,
                             std::vector<prometheus::MetricFamily>& out) const;
  static void AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                                   std::vector<prometheus::MetricFamily>& out);

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

/// Whether a process matches a service's owner: any of process (comm), cmdline (RE2 search,
/// unanchored, in the whole command line), exe. An empty match accepts every process.
bool OwnerMatches(const OwnerMatch& owner, const ProcessInfo& process);

}  // namespace portwatch
