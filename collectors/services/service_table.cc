#include "collectors/services/service_table.h"

#include <algorithm>
#include <set>
#include <string>
#include <utility>

namespace portwatch {

namespace {

/// The flags the records carried, completed by reading the fd of every other socket on the port,
/// each once: the prediction is a pure function of these, and each read duplicates an fd from
/// another process (pidfd_getfd, CAP_SYS_PTRACE). With flags in every record, nothing is read.
ReuseFlags KnownReuseFlags(const PortObservation& observed, const ReuseLookup& reuse) {
  ReuseFlags flags = observed.reuse_by_inode;
  for (const std::vector<uint32_t>* inodes : {&observed.listener_inodes, &observed.other_inodes}) {
    for (uint32_t inode : *inodes) {
      if (flags.contains(inode)) {
        continue;
      }
      if (std::optional<bool> flag = reuse(inode)) {
        flags[inode] = *flag;
      }
    }
  }
  return flags;
}

std::map<std::string, uint64_t> CountsByStateName(const StateCounts& counts) {
  std::map<std::string, uint64_t> by_name;
  for (size_t state = 0; state < kStateSlots; ++state) {
    if (counts[state] > 0) {
      by_name[std::string(netlink::StateName(static_cast<uint8_t>(state)))] += counts[state];
    }
  }
  return by_name;
}

}  // namespace

const std::vector<ProcessInfo>& ServiceTable::RunningProcesses(const SocketOwners& owners) const {
  static const std::vector<ProcessInfo> kNone;
  if (!scope_.InPod()) {
    return owners.processes;
  }
  const auto found = owners.processes_by_netns.find(scope_.netns);
  return found != owners.processes_by_netns.end() ? found->second : kNone;
}

ServiceTable::ServiceTable(const std::vector<ServiceConfig>& services, ServicesOptions options,
                           KernelFacts facts, ServiceScope scope)
    : services_(services),
      options_(std::move(options)),
      facts_(std::move(facts)),
      scope_(std::move(scope)),
      observed_(services.size()) {}

void ServiceTable::Add(netlink::Protocol protocol, const netlink::SocketRecord& record) {
  if (options_.listener_info) {
    listeners_.Add(protocol, record);
  }
  for (size_t i = 0; i < services_.size(); ++i) {
    ObserveSocket(services_[i], protocol, record, observed_[i]);
  }
}

std::vector<uint16_t> ServiceTable::PortsThatLookFree() const {
  std::set<uint16_t> ports;
  for (size_t i = 0; i < services_.size(); ++i) {
    if (services_[i].protocol == ServiceProtocol::kTcp && !observed_[i].AnythingOverlaps()) {
      ports.insert(services_[i].port);
    }
  }
  return {ports.begin(), ports.end()};
}

std::unordered_set<uint32_t> ServiceTable::WantedInodes() const {
  std::unordered_set<uint32_t> inodes;
  for (const ListeningSocket& listener : listeners_.Listeners()) {
    inodes.insert(listener.inode);
  }
  for (const PortObservation& observed : observed_) {
    inodes.insert(observed.listener_inodes.begin(), observed.listener_inodes.end());
    inodes.insert(observed.other_inodes.begin(), observed.other_inodes.end());
  }
  inodes.erase(0);
  return inodes;
}

bool ServiceTable::NeedsAllProcesses() const {
  return std::any_of(services_.begin(), services_.end(),
                     [](const ServiceConfig& service) { return service.owner.Any(); });
}

ServiceReport ServiceTable::Report(size_t index, const SocketOwners& owners,
                                   const ReuseLookup& reuse, ListenerMemory& memory,
                                   std::chrono::steady_clock::time_point now) const {
  const ServiceConfig& service = services_[index];
  const PortObservation& observed = observed_[index];
  ServiceReport report;
  report.service = service;
  report.scope = scope_;
  report.holders = ClassifyHolders(service, observed, owners, RunningProcesses(owners));
  report.sockets_by_state = CountsByStateName(observed.sockets_by_state);

  BindContext context;
  context.protocol = ProtocolOf(service);
  context.reuse_by_inode = KnownReuseFlags(observed, reuse);
  context.bound_inactive_visible = facts_.bound_inactive_visible;
  // The current listener's flag is remembered for the TIME_WAIT sockets it will leave behind.
  report.listener_reuse = CurrentListenerReuse(observed, context.reuse_by_inode);
  // Each pod's incarnation of a service has a listener of its own.
  const std::string remembered_as =
      scope_.InPod() ? service.name + " in pod " + scope_.pod_uid : service.name;
  if (report.listener_reuse) {
    memory.Remember(remembered_as, *report.listener_reuse, now);
  }
  report.remembered_reuse = memory.Recall(remembered_as, now);
  context.time_wait_reuse = report.listener_reuse ? report.listener_reuse : report.remembered_reuse;

  report.without_reuse = PredictBindWithoutReuse(observed, context);
  report.with_reuse = PredictBindWithReuse(observed, context);
  report.time_wait_remaining_seconds = observed.longest_time_wait_ms / 1000.0;
  report.in_ephemeral_range = facts_.range.Contains(service.port);
  report.reserved = facts_.reserved->test(service.port);
  return report;
}

std::vector<ServiceReport> ServiceTable::Reports(const SocketOwners& owners,
                                                 const ReuseLookup& reuse, ListenerMemory& memory,
                                                 std::chrono::steady_clock::time_point now) const {
  std::vector<ServiceReport> reports;
  reports.reserve(services_.size());
  for (size_t i = 0; i < services_.size(); ++i) {
    reports.push_back(Report(i, owners, reuse, memory, now));
  }
  return reports;
}

}  // namespace portwatch
