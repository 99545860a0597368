#include "collectors/services/services_collector.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>
#include <utility>

#include "collectors/common/family_builder.h"
#include "collectors/netlink/transport.h"

namespace portwatch {

namespace {

using netlink::DumpOutcome;
using netlink::Family;
using netlink::Protocol;

}  // namespace

std::optional<bool> ReadReuseAddress(pid_t pid, int fd, uint32_t inode) {
  netlink::UniqueFd process(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (!process.Valid()) {
    return std::nullopt;
  }
  netlink::UniqueFd socket(static_cast<int>(::syscall(SYS_pidfd_getfd, process.Get(), fd, 0)));
  struct stat status {};
  if (!socket.Valid() || ::fstat(socket.Get(), &status) != 0 || status.st_ino != inode) {
    return std::nullopt;
  }
  int value = 0;
  socklen_t length = sizeof(value);
  if (::getsockopt(socket.Get(), SOL_SOCKET, SO_REUSEADDR, &value, &length) != 0) {
    return std::nullopt;
  }
  return value != 0;
}

ServicesCollector::ServicesCollector(const ProcFs& procfs, netlink::TransportFactory open_transport)
    : procfs_(procfs), open_transport_(std::move(open_transport)), owner_cache_(procfs) {}

Result<ServicesCollector::Scanned> ServicesCollector::Scan(const Config& config) {
  const ServicesOptions& options = config.services_options;
  KernelFacts facts;
  std::optional<EphemeralRange> range = ReadEphemeralRange(procfs_);
  if (!range) {
    return Failure{"cannot read net.ipv4.ip_local_port_range"};
  }
  facts.range = *range;
  auto reserved = std::make_shared<std::bitset<65536>>();
  for (uint16_t port : ReadReservedPorts(procfs_).value_or(std::vector<uint16_t>{})) {
    reserved->set(port);
  }
  facts.reserved = std::move(reserved);
  facts.bound_inactive_visible =
      KernelAtLeast(procfs_.ReadFile("sys/kernel/osrelease").value_or(""), 6, 10);

  Result<std::unique_ptr<netlink::Transport>> opened = open_transport_();
  if (!opened) {
    return Failure{opened.Error()};
  }
  netlink::Transport& transport = **opened;
  std::set<uint16_t> tcp_ports;
  std::set<uint16_t> udp_ports;
  for (const ServiceConfig& service : config.services) {
    (service.protocol == ServiceProtocol::kTcp ? tcp_ports : udp_ports).insert(service.port);
  }

  std::vector<netlink::DumpRequest> requests;
  for (Family family : {Family::kIpv4, Family::kIpv6}) {
    if (options.listener_info || !tcp_ports.empty()) {
      requests.push_back({Protocol::kTcp, family, netlink::StateBit(netlink::kListen), {}});
    }
    if (!tcp_ports.empty()) {
      requests.push_back({Protocol::kTcp, family,
                          netlink::kAllStates & ~netlink::StateBit(netlink::kListen),
                          std::vector<uint16_t>(tcp_ports.begin(), tcp_ports.end())});
    }
    if (options.listener_info) {
      requests.push_back({Protocol::kUdp, family, netlink::kAllStates, {}});
    } else if (!udp_ports.empty()) {
      requests.push_back({Protocol::kUdp, family, netlink::kAllStates,
                          std::vector<uint16_t>(udp_ports.begin(), udp_ports.end())});
    }
  }

  auto table = std::make_unique<ServiceTable>(config.services, options, facts);
  auto dump = [&transport, &table](const netlink::DumpRequest& request) -> Status {
    netlink::DumpResult result =
        netlink::Dump(transport, request, [&table, &request](const netlink::SocketRecord& record) {
          table->Add(request.protocol, record);
        });
    if (result.outcome == DumpOutcome::kFailed || result.outcome == DumpOutcome::kInterrupted) {
      return Failure{result.TableError(request)};
    }
    return {};
  };
  for (const netlink::DumpRequest& request : requests) {
    if (Status status = dump(request); !status) {
      return Failure{status.Error()};
    }
  }
  // A port that looks free may still hold a bound-inactive socket; only then is the kernel's
  // bind hash walked, and only for those ports.
  if (std::vector<uint16_t> ports = table->PortsThatLookFree(); !ports.empty()) {
    for (Family family : {Family::kIpv4, Family::kIpv6}) {
      if (Status status = dump({Protocol::kTcp, family, netlink::kBoundInactiveStates, ports});
          !status) {
        return Failure{status.Error()};
      }
    }
  }

  Scanned scanned;
  scanned.owners = owner_cache_.Resolve(table->WantedInodes(), table->NeedsAllProcesses(),
                                        std::chrono::steady_clock::now());
  processes_skipped_total_ += scanned.owners.processes_skipped;
  scanned.table = std::move(table);
  scanned.facts = facts;
  return scanned;
}

ReuseLookup ServicesCollector::ReuseFromFds(const SocketOwners& owners) {
  return [&owners](uint32_t inode) -> std::optional<bool> {
    auto found = owners.first_fd.find(inode);
    if (found == owners.first_fd.end()) {
      return std::nullopt;
    }
    return ReadReuseAddress(found->second.first, found->second.second, inode);
  };
}

Result<ServicesCollector::Diagnosis> ServicesCollector::Diagnose(const Config& config) {
  Result<Scanned> scanned = Scan(config);
  if (!scanned) {
    return Failure{scanned.Error()};
  }
  Diagnosis diagnosis;
  diagnosis.facts = scanned->facts;
  diagnosis.reports = scanned->table->Reports(scanned->owners, ReuseFromFds(scanned->owners),
                                              memory_, std::chrono::steady_clock::now());
  return diagnosis;
}

Status ServicesCollector::Collect(const Config& config,
                                  std::vector<prometheus::MetricFamily>& out) {
  if (config.services.empty() && !config.services_options.listener_info) {
    return {};
  }
  Result<Scanned> scanned = Scan(config);
  if (!scanned) {
    return Failure{scanned.Error()};
  }
  const SocketOwners& owners = scanned->owners;
  scanned->table->AppendMetrics(owners, ReuseFromFds(owners), memory_,
                                std::chrono::steady_clock::now(), out);

  FamilyBuilder("portwatch_process_scan_processes",
                "Processes looked at by this scrape's pass over /proc (0: no pass was needed).",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(owners.processes_scanned))
      .MoveTo(out);
  FamilyBuilder("portwatch_process_scan_full_total",
                "Full passes over every process's fds (the rest of the scrapes re-check the "
                "holders found before, one readlink per socket).",
                prometheus::MetricType::Counter)
      .Add(static_cast<double>(owner_cache_.FullScans()))
      .MoveTo(out);
  FamilyBuilder("portwatch_process_scan_skipped_total",
                "Processes skipped by the pass over /proc because they vanished mid-scan or "
                "their fds could not be read (no privilege).",
                prometheus::MetricType::Counter)
      .Add(static_cast<double>(processes_skipped_total_))
      .MoveTo(out);
  return {};
}

}  // namespace portwatch
