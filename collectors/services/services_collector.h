#pragma once

#include <memory>
#include <string>

#include "collectors/collector.h"
#include "collectors/services/service_table.h"
#include "collectors/sockets/sockets_collector.h"

namespace portwatch {

/// Port ownership, conflicts and bind prediction for the configured services, and the listener
/// view (`netstat -tulpn`). Reads only listeners and the services' ports from sock_diag, and does
/// one pass over /proc when some socket needs its process.
class ServicesCollector : public Collector {
 public:
  ServicesCollector(const ProcFs& procfs, netlink::TransportFactory open_transport);

  std::string_view Name() const override { return "services"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

  /// The same reading as Collect(), as reports for `portwatch_exporter diagnose`, with the
  /// kernel settings the reports were made with.
  struct Diagnosis {
    std::vector<ServiceReport> reports;
    KernelFacts facts;
  };
  Result<Diagnosis> Diagnose(const Config& config);

 private:
  struct Scanned {
    std::unique_ptr<ServiceTable> table;
    SocketOwners owners;
    KernelFacts facts;
  };
  /// Reads the kernel (sock_diag, sysctls) and /proc.
  Result<Scanned> Scan(const Config& config);
  static ReuseLookup ReuseFromFds(const SocketOwners& owners);

  ProcFs procfs_;
  netlink::TransportFactory open_transport_;
  ListenerMemory memory_;
  SocketOwnerCache owner_cache_;
  uint64_t processes_skipped_total_ = 0;
};

/// SO_REUSEADDR of the socket `inode` held as `fd` by `pid`, read from a duplicate of the fd
/// (pidfd_getfd: needs CAP_SYS_PTRACE over the process). nullopt when that is not possible or
/// the fd no longer refers to that socket.
std::optional<bool> ReadReuseAddress(pid_t pid, int fd, uint32_t inode);

}  // namespace portwatch
