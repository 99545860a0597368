#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "collectors/collector.h"
#include "collectors/netns/kept_dumps.h"
#include "collectors/services/container_names.h"
#include "collectors/services/pod_networks.h"
#include "collectors/services/service_metrics.h"
#include "collectors/services/service_table.h"
#include "collectors/socket_source/socket_iterators.h"
#include "collectors/sockets/sockets_collector.h"

namespace portwatch {

/// Port ownership, conflicts and bind prediction for the configured services, and the listener
/// view (`netstat -tulpn`). Reads only listeners and the services' ports from sock_diag, and does
/// one pass over /proc when some socket needs its process.
///
/// With `pods` (and collectors.sockets.pods on) it also reads inside every pod's network
/// namespace: each pod's listeners, and the services whose pods selector matches the pod. The
/// one pass over /proc then finds the holders of the node's sockets and every pod's together
/// (socket inodes are unique node-wide).
class ServicesCollector : public Collector {
 public:
  /// `dumps`: the sockets collector's dumps of this scrape; the requests they cover are answered
  /// from them instead of the kernel. `sources`: what reads the exporter's own namespace (BPF
  /// iterators, whose records carry every socket's SO_REUSEADDR, or sock_diag); without it,
  /// sock_diag through `open_transport`.
  ServicesCollector(const ProcFs& procfs, netlink::TransportFactory open_transport,
                    std::shared_ptr<PodNetworks> pods = nullptr,
                    std::shared_ptr<KeptDumps> dumps = nullptr,
                    std::shared_ptr<SocketSources> sources = nullptr);

  std::string_view Name() const override { return "services"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

  /// The same reading as Collect(), as reports for `portwatch_exporter diagnose`, with the
  /// kernel settings the reports were made with. Every service of `config` is evaluated in the
  /// node's network namespace, whatever its pods selector.
  struct Diagnosis {
    std::vector<ServiceReport> reports;
    KernelFacts facts;
  };
  Result<Diagnosis> Diagnose(const Config& config);
  /// The same inside `pod`'s network namespace (needs `pods`).
  Result<Diagnosis> Diagnose(const Config& config, const PodNamespace& pod);

 private:
  /// One network namespace to read this scrape: the services evaluated in it, and whether its
  /// listeners are listed.
  struct Plan {
    ServiceScope scope;
    std::vector<ServiceConfig> services;
    bool listeners = false;
  };
  struct Scanned {
    std::vector<std::unique_ptr<ServiceTable>> tables;  ///< those of the plans read, in order
    SocketOwners owners;
  };
  /// Reads the kernel (sock_diag, sysctls) for every plan, then /proc once for them all. The
  /// node's plan must be read; a pod that cannot be read is skipped when `skip_unreadable_pods`.
  Result<Scanned> Scan(const std::vector<Plan>& plans, const Config& config,
                       bool skip_unreadable_pods);
  Result<KernelFacts> NodeFacts() const;
  KernelFacts PodFacts(uint64_t inode, const KernelFacts& node) const;
  /// Reads `plan`'s namespace: each request from `kept` when it covers it, else from `source`
  /// (one whole walk per protocol when it filters in user space).
  Result<std::unique_ptr<ServiceTable>> ReadNamespace(SocketSource& source,
                                                      const netlink::RecordedDump* kept,
                                                      const Plan& plan,
                                                      const ServicesOptions& options,
                                                      KernelFacts facts);
  Result<Diagnosis> DiagnoseIn(const Plan& plan, const Config& config);
  /// The pod and container of each process holding a listener of `scanned`.
  HolderPods PlaceHolders(const Scanned& scanned, const PodDiscovery& discovery,
                          const Config& config);
  static ReuseLookup ReuseFromFds(const SocketOwners& owners);

  ProcFs procfs_;
  netlink::TransportFactory open_transport_;
  std::shared_ptr<SocketSources> sources_;
  std::shared_ptr<PodNetworks> pods_;
  std::shared_ptr<KeptDumps> dumps_;
  /// This scrape's sock_diag requests: answered by the kernel, or by the sockets collector's dumps.
  uint64_t requests_dumped_ = 0;
  uint64_t requests_replayed_ = 0;
  ListenerMemory memory_;
  SocketOwnerCache owner_cache_;
  ContainerNamesCache container_names_;
  uint64_t processes_skipped_total_ = 0;
};

/// The scope of a report made inside `pod`'s network namespace.
ServiceScope ScopeOf(const PodNamespace& pod);

/// SO_REUSEADDR of the socket `inode` held as `fd` by `pid`, read from a duplicate of the fd
/// (pidfd_getfd: needs CAP_SYS_PTRACE over the process). nullopt when that is not possible or
/// the fd no longer refers to that socket.
std::optional<bool> ReadReuseAddress(pid_t pid, int fd, uint32_t inode);

}  // namespace portwatch
