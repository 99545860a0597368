#include "collectors/services/service_table.h"

#include <algorithm>
#include <re2/re2.h>
#include <set>
#include <utility>

#include "collectors/collector.h"
#include "collectors/common/family_builder.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

namespace {

using netlink::Protocol;
using Labels = std::vector<prometheus::ClientMetric::Label>;

Protocol ToProtocol(ServiceProtocol protocol) {
  return protocol == ServiceProtocol::kTcp ? Protocol::kTcp : Protocol::kUdp;
}

void AddUnique(std::vector<uint32_t>& inodes, uint32_t inode, size_t cap) {
  if (inodes.size() < cap && std::find(inodes.begin(), inodes.end(), inode) == inodes.end()) {
    inodes.push_back(inode);
  }
}

/// Collects the sockets that block one kind of bind; decides the verdict at the end.
struct PredictionBuilder {
  std::map<std::string, uint64_t> blockers_by_state;
  std::vector<std::string> unknowns;

  void Block(uint8_t state, uint64_t count) {
    if (count > 0) {
      blockers_by_state[std::string(netlink::StateName(state))] += count;
    }
  }
  BindPrediction Finish(bool free_is_trusted) const {
    BindPrediction prediction;
    prediction.blockers_by_state = blockers_by_state;
    if (!blockers_by_state.empty()) {
      prediction.verdict = Verdict::kBlocked;
    } else if (!unknowns.empty()) {
      prediction.verdict = Verdict::kUnknown;
      prediction.unknown_because = unknowns.front();
    } else if (!free_is_trusted) {
      prediction.verdict = Verdict::kUnknown;
      prediction.unknown_because =
          "this kernel (before 6.10) does not show bound-but-inactive TCP sockets";
    }
    return prediction;
  }
};

}  // namespace

bool OwnerMatches(const OwnerMatch& owner, const ProcessInfo& process) {
  if (!owner.Any()) {
    return true;
  }
  return (!owner.process.empty() && process.command == owner.process) ||
         (owner.cmdline_regex != nullptr &&
          RE2::PartialMatch(process.cmdline, *owner.cmdline_regex)) ||
         (!owner.exe.empty() && process.exe == owner.exe);
}

ServiceTable::ServiceTable(const std::vector<ServiceConfig>& services,
                           const ServicesOptions& options, KernelFacts facts)
    : services_(services),
      options_(options),
      facts_(std::move(facts)),
      observed_(services.size()) {}

void ServiceTable::Add(Protocol protocol, const netlink::SocketRecord& record) {
  const bool listening = SocketTable::IsListening(protocol, record.state);
  const Endpoint endpoint = EndpointOf(record);
  if (listening && options_.listener_info) {
    if (listeners_.size() < kMaxListeners) {
      listeners_.push_back({protocol, endpoint, record.local_port, record.inode});
    } else {
      listeners_dropped_++;
    }
  }
  for (size_t i = 0; i < services_.size(); ++i) {
    const ServiceConfig& service = services_[i];
    if (ToProtocol(service.protocol) != protocol || service.port != record.local_port) {
      continue;
    }
    Observed& observed = observed_[i];
    const size_t state = record.state < kStates ? record.state : 0;
    observed.sockets_by_state[state]++;
    if (!AddressesOverlap(EndpointOf(service), endpoint)) {
      continue;
    }
    observed.overlapping_by_state[state]++;
    if (listening) {
      AddUnique(observed.listener_inodes, record.inode, kMaxInodesPerService);
    } else if (record.state == netlink::kTimeWait) {
      observed.longest_time_wait_ms =
          std::max(observed.longest_time_wait_ms, record.timer_expires_ms);
    } else if (record.state == netlink::kSynRecv) {
      // Request sockets hold no port of their own: their listener does.
    } else if (record.inode != 0) {
      AddUnique(observed.other_inodes, record.inode, kMaxInodesPerService);
    } else {
      observed.others_without_inode++;
    }
  }
}

std::vector<uint16_t> ServiceTable::PortsThatLookFree() const {
  std::set<uint16_t> ports;
  for (size_t i = 0; i < services_.size(); ++i) {
    const std::array<uint64_t, kStates>& overlapping = observed_[i].overlapping_by_state;
    if (services_[i].protocol == ServiceProtocol::kTcp &&
        std::all_of(overlapping.begin(), overlapping.end(), [](uint64_t n) { return n == 0; })) {
      ports.insert(services_[i].port);
    }
  }
  return {ports.begin(), ports.end()};
}

std::unordered_set<uint32_t> ServiceTable::WantedInodes() const {
  std::unordered_set<uint32_t> inodes;
  for (const Listener& listener : listeners_) {
    if (listener.inode != 0) {
      inodes.insert(listener.inode);
    }
  }
  for (const Observed& observed : observed_) {
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

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kFree:
      return "free";
    case Verdict::kBlocked:
      return "blocked";
    default:
      return "unknown";
  }
}

std::vector<ServiceReport> ServiceTable::Reports(const SocketOwners& owners,
                                                 const ReuseLookup& reuse, ListenerMemory& memory,
                                                 std::chrono::steady_clock::time_point now) const {
  auto holders_of = [&owners](uint32_t inode) -> const std::vector<ProcessInfo>* {
    auto found = owners.by_inode.find(inode);
    return found == owners.by_inode.end() ? nullptr : &found->second;
  };
  std::vector<ServiceReport> reports;
  for (size_t i = 0; i < services_.size(); ++i) {
    const ServiceConfig& service = services_[i];
    const Observed& observed = observed_[i];
    const Protocol protocol = ToProtocol(service.protocol);
    ServiceReport report;
    report.service = service;

    // Ownership: listening sockets held by a matching process (a pre-forked server's workers
    // share one socket: one instance; SO_REUSEPORT duplicates have one each), and everyone else.
    std::set<uint32_t> owned_listeners;
    std::set<pid_t> seen;
    auto classify = [&](uint32_t inode, bool listening) {
      const std::vector<ProcessInfo>* holders = holders_of(inode);
      if (holders == nullptr) {
        report.invisible_holders = true;
        return;
      }
      for (const ProcessInfo& process : *holders) {
        const bool owner = OwnerMatches(service.owner, process);
        if (owner && listening) {
          owned_listeners.insert(inode);
        }
        if (seen.insert(process.pid).second) {
          (owner ? report.owner_processes : report.foreign_holders).push_back(process);
        }
      }
    };
    for (uint32_t inode : observed.listener_inodes) {
      classify(inode, true);
    }
    for (uint32_t inode : observed.other_inodes) {
      classify(inode, protocol == Protocol::kUdp);
    }
    report.owned_listeners = owned_listeners.size();
    if (service.owner.Any()) {
      report.matching_processes = static_cast<size_t>(std::count_if(
          owners.processes.begin(), owners.processes.end(),
          [&service](const ProcessInfo& process) { return OwnerMatches(service.owner, process); }));
    }
    for (size_t state = 0; state < kStates; ++state) {
      if (observed.sockets_by_state[state] > 0) {
        report.sockets_by_state[std::string(netlink::StateName(static_cast<uint8_t>(state)))] +=
            observed.sockets_by_state[state];
      }
    }

    // The SO_REUSEADDR of the current listener, learned through its fd, is remembered for the
    // TIME_WAIT sockets it will leave behind.
    for (uint32_t inode : observed.listener_inodes) {
      if (std::optional<bool> flag = reuse(inode)) {
        report.listener_reuse = report.listener_reuse.value_or(true) && *flag;
      }
    }
    if (report.listener_reuse) {
      memory[service.name] = RememberedListener{*report.listener_reuse, now};
    }
    if (auto found = memory.find(service.name);
        found != memory.end() && now - found->second.seen <= kMemoryLifetime) {
      report.remembered_reuse = found->second.reuse_address;
    }

    const bool free_is_trusted = protocol == Protocol::kUdp || facts_.bound_inactive_visible;
    // Without SO_REUSEADDR, any socket bound to an overlapping address blocks.
    PredictionBuilder plain;
    for (size_t state = 1; state < kStates; ++state) {
      if (state != netlink::kSynRecv) {
        plain.Block(static_cast<uint8_t>(state), observed.overlapping_by_state[state]);
      }
    }
    report.without_reuse = plain.Finish(free_is_trusted);

    // With SO_REUSEADDR, a socket blocks when it listens (TCP), or when it did not set the flag
    // itself; TIME_WAIT sockets carry the flag of the listener that accepted them.
    PredictionBuilder reusing;
    if (protocol == Protocol::kTcp) {
      reusing.Block(netlink::kListen, observed.overlapping_by_state[netlink::kListen]);
      const uint64_t time_waits = observed.overlapping_by_state[netlink::kTimeWait];
      if (time_waits > 0) {
        std::optional<bool> flag =
            report.listener_reuse ? report.listener_reuse : report.remembered_reuse;
        if (!flag) {
          reusing.unknowns.emplace_back(
              "TIME_WAIT sockets left by a listener whose SO_REUSEADDR portwatch never saw");
        } else if (!*flag) {
          reusing.Block(netlink::kTimeWait, time_waits);
        }
      }
    }
    const std::vector<uint32_t> no_inodes;
    const std::vector<uint32_t>& udp_listeners =
        protocol == Protocol::kUdp ? observed.listener_inodes : no_inodes;
    for (const std::vector<uint32_t>* inodes : {&observed.other_inodes, &udp_listeners}) {
      for (uint32_t inode : *inodes) {
        std::optional<bool> flag = reuse(inode);
        if (!flag) {
          reusing.unknowns.emplace_back(
              "cannot read SO_REUSEADDR of a socket on the port (needs CAP_SYS_PTRACE)");
        } else if (!*flag) {
          // The state is not kept per inode: UDP sockets count as unconn, TCP as established.
          reusing.Block(protocol == Protocol::kUdp ? netlink::kClose : netlink::kEstablished, 1);
        }
      }
    }
    if (observed.others_without_inode > 0) {
      reusing.unknowns.emplace_back("sockets on the port that no process holds");
    }
    report.with_reuse = reusing.Finish(free_is_trusted);
    report.time_wait_remaining_seconds = observed.longest_time_wait_ms / 1000.0;
    report.in_ephemeral_range = facts_.range.Contains(service.port);
    report.reserved = facts_.reserved->test(service.port);
    reports.push_back(std::move(report));
  }
  return reports;
}

void ServiceTable::AppendMetrics(const SocketOwners& owners, const ReuseLookup& reuse,
                                 ListenerMemory& memory, std::chrono::steady_clock::time_point now,
                                 std::vector<prometheus::MetricFamily>& out) const {
  if (options_.listener_info) {
    AppendListenerMetrics(owners, out);
  }
  if (!services_.empty()) {
    AppendServiceMetrics(Reports(owners, reuse, memory, now), out);
  }
}

void ServiceTable::AppendListenerMetrics(const SocketOwners& owners,
                                         std::vector<prometheus::MetricFamily>& out) const {
  std::set<Labels> series;
  for (const Listener& listener : listeners_) {
    auto found = owners.by_inode.find(listener.inode);
    const std::vector<ProcessInfo> shown =
        found != owners.by_inode.end() ? found->second : std::vector<ProcessInfo>{{}};
    for (const ProcessInfo& process : shown) {
      Labels labels = {{"address", AddressText(listener.endpoint)},
                       {"family", listener.endpoint.ipv6 ? "ipv6" : "ipv4"},
                       {"port", std::to_string(listener.port)},
                       {"process", process.pid != 0 ? process.command : "unknown"},
                       {"protocol", std::string(netlink::ProtocolName(listener.protocol))}};
      if (options_.pid_label) {
        labels.push_back({"pid", process.pid != 0 ? std::to_string(process.pid) : ""});
      }
      series.insert(std::move(labels));
    }
  }
  FamilyBuilder info("portwatch_listener_info",
                     "A listening socket (TCP LISTEN, or bound unconnected UDP) and the process "
                     "holding it, \"unknown\" when not visible: the `netstat -tulpn` view.",
                     prometheus::MetricType::Gauge);
  size_t kept = 0;
  for (const Labels& labels : series) {
    if (kept++ < options_.max_listener_series) {
      info.Add(labels, 1);
    }
  }
  info.MoveTo(out);
  FamilyBuilder("portwatch_listener_info_dropped",
                "Listener series left out because collectors.services.max_listener_series was "
                "reached.",
                prometheus::MetricType::Gauge)
      .Add(static_cast<double>(series.size() -
                               std::min(series.size(), options_.max_listener_series) +
                               listeners_dropped_))
      .MoveTo(out);
}

void ServiceTable::AppendServiceMetrics(const std::vector<ServiceReport>& reports,
                                        std::vector<prometheus::MetricFamily>& out) {
  FamilyBuilder info("portwatch_service_info",
                     "A configured service: the port it should own. Constant 1.",
                     prometheus::MetricType::Gauge);
  FamilyBuilder up("portwatch_service_up",
                   "Whether a process matching the service's owner listens on its port.",
                   prometheus::MetricType::Gauge);
  FamilyBuilder owner_processes(
      "portwatch_service_owner_processes",
      "Listening sockets on the service's port held by processes matching the owner (the workers "
      "of a pre-forked server share one); above portwatch_service_expected_instances means "
      "duplicate instances (SO_REUSEPORT).",
      prometheus::MetricType::Gauge);
  FamilyBuilder expected("portwatch_service_expected_instances",
                         "The number of owning processes the config expects (instances).",
                         prometheus::MetricType::Gauge);
  FamilyBuilder matching("portwatch_service_matching_processes",
                         "Running processes in the exporter's network namespace that match the "
                         "owner, listening or not (the `ps -ef | grep` check): more than "
                         "owner_processes means an instance failed to bind.",
                         prometheus::MetricType::Gauge);
  FamilyBuilder conflict("portwatch_service_conflict",
                         "A process that is not the owner holds a socket on the service's address "
                         "and port (holder: its command, or \"unknown\" when not visible).",
                         prometheus::MetricType::Gauge);
  FamilyBuilder sockets("portwatch_service_sockets",
                        "Sockets on the service's port by state, whatever their address.",
                        prometheus::MetricType::Gauge);
  FamilyBuilder prediction(
      "portwatch_service_bind_prediction",
      "Whether a fresh bind() to the service's address and port, without and with SO_REUSEADDR, "
      "would fail right now: 1 on the predicted result (free, blocked, unknown).",
      prometheus::MetricType::Gauge);
  FamilyBuilder blockers("portwatch_service_bind_blockers",
                         "Sockets that make the predicted bind fail, by state.",
                         prometheus::MetricType::Gauge);
  FamilyBuilder time_wait("portwatch_service_time_wait_remaining_seconds",
                          "Seconds until the last TIME_WAIT socket on the service's address and "
                          "port expires (0: none): when a blocked restart would succeed.",
                          prometheus::MetricType::Gauge);
  FamilyBuilder in_range("portwatch_service_port_in_ephemeral_range",
                         "1 when the service's port lies in net.ipv4.ip_local_port_range and not "
                         "in ip_local_reserved_ports: outgoing connections can take it.",
                         prometheus::MetricType::Gauge);

  for (const ServiceReport& report : reports) {
    const ServiceConfig& service = report.service;
    const Labels name = {{"service", service.name}};
    info.Add({{"address", service.address},
              {"port", std::to_string(service.port)},
              {"protocol", service.protocol == ServiceProtocol::kTcp ? "tcp" : "udp"},
              {"service", service.name}},
             1);
    up.Add(name, report.owned_listeners > 0 ? 1 : 0);
    owner_processes.Add(name, static_cast<double>(report.owned_listeners));
    expected.Add(name, service.instances);
    if (report.matching_processes) {
      matching.Add(name, static_cast<double>(*report.matching_processes));
    }
    std::set<std::string> holders;
    for (const ProcessInfo& process : report.foreign_holders) {
      holders.insert(process.command);
    }
    if (report.invisible_holders) {
      holders.insert("unknown");
    }
    for (const std::string& holder : holders) {
      conflict.Add({{"holder", holder}, {"service", service.name}}, 1);
    }
    for (const auto& [state, count] : report.sockets_by_state) {
      sockets.Add({{"service", service.name}, {"state", state}}, static_cast<double>(count));
    }
    for (const auto& [flag, result] :
         {std::pair<const char*, const BindPrediction*>{"false", &report.without_reuse},
          std::pair<const char*, const BindPrediction*>{"true", &report.with_reuse}}) {
      for (Verdict verdict : {Verdict::kFree, Verdict::kBlocked, Verdict::kUnknown}) {
        prediction.Add(
            {{"result", VerdictName(verdict)}, {"service", service.name}, {"so_reuseaddr", flag}},
            result->verdict == verdict ? 1 : 0);
      }
      for (const auto& [state, count] : result->blockers_by_state) {
        blockers.Add({{"service", service.name}, {"so_reuseaddr", flag}, {"state", state}},
                     static_cast<double>(count));
      }
    }
    time_wait.Add(name, report.time_wait_remaining_seconds);
    in_range.Add(name, report.in_ephemeral_range && !report.reserved ? 1 : 0);
  }
  for (FamilyBuilder* family : {&info, &up, &owner_processes, &expected, &matching, &conflict,
                                &sockets, &prediction, &blockers, &time_wait, &in_range}) {
    family->MoveTo(out);
  }
}

}  // namespace portwatch
