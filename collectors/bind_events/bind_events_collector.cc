#include "collectors/bind_events/bind_events_collector.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/family_builder.h"
#include "collectors/common/logfmt.h"
#include "collectors/port_holders/port_holders.h"
#include "collectors/procfs/socket_owners.h"
#include "collectors/socket_table/socket_table.h"

namespace portwatch {

namespace {

using netlink::Family;
using netlink::Protocol;

}  // namespace

uint32_t OwnNetworkNamespace() { return static_cast<uint32_t>(ProcFs().NetworkNamespace("self")); }

BindEventsCollector::PodLookupFactory PodLookupFrom(std::shared_ptr<PodNamespaces> pods) {
  return [pods = std::move(pods)](const SocketsConfig& sockets,
                                  std::chrono::steady_clock::duration max_age) -> PodLookup {
    if (!sockets.pods || !pods) {
      return nullptr;
    }
    return [pods, dir = sockets.pod_logs_dir, max_age](uint32_t netns) -> std::optional<PodLabels> {
      std::shared_ptr<const PodDiscovery> discovery = pods->Discover(dir, max_age);
      const PodNamespace* pod = discovery->Find(netns);
      if (pod == nullptr && max_age > PodNamespaces::kSameScrape) {
        // A pod younger than that list, maybe.
        discovery = pods->Discover(dir, PodNamespaces::kSameScrape);
        pod = discovery->Find(netns);
      }
      if (pod == nullptr) {
        return std::nullopt;
      }
      return PodLabels{pod->namespace_name, pod->name};
    };
  };
}

BindEventsCollector::PodTableOpener PodTablesFrom(std::shared_ptr<PodNamespaces> pods) {
  return [pods = std::move(pods)](uint32_t netns) { return pods->Open(netns); };
}

BindEventsCollector::BindEventsCollector(ProcFs procfs, netlink::TransportFactory open_transport,
                                         SourceFactory open_source, const BindEventsConfig& options,
                                         uint32_t own_netns, LogSink log, PodLookupFactory pods,
                                         PodTableOpener pod_tables)
    : procfs_(std::move(procfs)),
      open_transport_(std::move(open_transport)),
      open_source_(std::move(open_source)),
      own_netns_(own_netns),
      log_(std::move(log)),
      pods_for_(std::move(pods)),
      pod_tables_(std::move(pod_tables)) {
  if (!log_) {
    log_ = [](const std::string& line) { spdlog::info("{}", line); };
  }
  OpenSource(options.attach);
}

void BindEventsCollector::OpenSource(const std::vector<BindEventsAttach>& allowed) {
  source_.reset();  // detach first: two programs would count every failure twice
  allowed_ = allowed;
  std::string allowed_names;
  for (BindEventsAttach attach : allowed) {
    allowed_names += (allowed_names.empty() ? "" : ",") + std::string(BindEventsAttachName(attach));
  }
  source_ = open_source_(allowed, [this](const BindFailureEvent& event) { OnEvent(event); });
  // A new kernel map starts from zero: the exposed counters carry on from where they were.
  counters_.ForgetKernelCounts();
  if (!source_->Available()) {
    spdlog::warn("{}", LogLine("bind_events: eBPF unavailable, portwatch_bind_events_available "
                               "is 0; the other collectors run as usual")
                           .Add("allowed", allowed_names)
                           .Add("cause", source_->UnavailableCause())
                           .Add("reason", source_->UnavailableReason())
                           .Text());
    return;
  }
  LogLine line("bind_events: counting failed bind/listen/connect calls");
  line.Add("attach", source_->AttachPath());
  if (const std::string fallback = source_->FallbackReason(); !fallback.empty()) {
    line.Add("not_used", fallback);
  }
  if (source_->AttachPath() == "fexit") {
    spdlog::info("{}", line.Text());
  } else {
    // Worth a warning: every process on the node pays for it, not just the exporter.
    line.Add("cost",
             "every system call of every process takes the kernel's syscall tracing slow path "
             "(docs/bind_events.md)");
    spdlog::warn("{}", line.Text());
  }
}

BindEventsCollector::~BindEventsCollector() { source_.reset(); }

std::set<uint16_t> BindEventsCollector::ListeningPorts() const {
  std::set<uint16_t> ports;
  Result<std::unique_ptr<netlink::Transport>> transport = open_transport_();
  if (!transport) {
    return ports;
  }
  for (Protocol protocol : {Protocol::kTcp, Protocol::kUdp}) {
    const uint32_t states = protocol == Protocol::kTcp ? netlink::StateBit(netlink::kListen)
                                                       : netlink::StateBit(netlink::kClose);
    for (Family family : {Family::kIpv4, Family::kIpv6}) {
      netlink::Dump(**transport, {protocol, family, states, {}},
                    [&ports, protocol](const netlink::SocketRecord& record) {
                      if (SocketTable::IsListening(protocol, record.state)) {
                        ports.insert(record.local_port);
                      }
                    });
    }
  }
  return ports;
}

Status BindEventsCollector::Collect(const Config& config,
                                    std::vector<prometheus::MetricFamily>& out) {
  const BindEventsConfig& options = config.bind_events;
  ShowCommandLines(config.privacy.command_lines);
  LookForPods(config.sockets);
  if (options.attach != allowed_) {
    spdlog::info(
        "{}", LogLine("bind_events: attach paths changed by a config reload, re-attaching").Text());
    OpenSource(options.attach);
  }
  FamilyBuilder available("portwatch_bind_events_available",
                          "1 when the eBPF program counting failed bind/listen/connect calls is "
                          "attached; 0 when it cannot be (see the exporter's log for why).",
                          prometheus::MetricType::Gauge);
  available.Add(source_->Available() ? 1 : 0);
  available.MoveTo(out);
  if (!source_->Available()) {
    FamilyBuilder cause(
        "portwatch_bind_events_unavailable_info",
        "Why the eBPF program is not attached (label cause): not_built, no_btf, no_permission, "
        "fexit_unsupported (the kernel refuses fexit and collectors.bind_events.attach allows "
        "no costlier path) or attach_failed.",
        prometheus::MetricType::Gauge);
    cause.Add({{"cause", source_->UnavailableCause()}}, 1);
    cause.MoveTo(out);
    return {};
  }
  FamilyBuilder attach("portwatch_bind_events_attach_info",
                       "How the eBPF program is attached (label attach): fexit on the kernel "
                       "functions of bind/listen/connect, tracepoint on their syscall exit "
                       "events, or raw_tracepoint on every system call's exit (the last "
                       "resort, costlier).",
                       prometheus::MetricType::Gauge);
  attach.Add({{"attach", source_->AttachPath()}}, 1);
  attach.MoveTo(out);
  const uint32_t only_netns = options.all_namespaces ? 0 : own_netns_;
  source_->SetNetnsFilter(only_netns);

  std::set<uint16_t> kept = ListeningPorts();
  for (const ServiceConfig& service : config.services) {
    kept.insert(service.port);
  }
  counters_.Update(source_->ReadCounts(), kept,
                   BindFailureCounters::Options{options.max_port_series, only_netns},
                   ScrapePodLookup(config.sockets));
  counters_.AppendMetrics(out);

  FamilyBuilder uncounted("portwatch_bind_failures_uncounted_total",
                          "Failures not counted because the kernel map of counters was full.",
                          prometheus::MetricType::Counter);
  uncounted.Add(static_cast<double>(source_->UncountedFailures()));
  uncounted.MoveTo(out);
  FamilyBuilder lost("portwatch_bind_events_log_lost_total",
                     "Failures counted but not sent to user space for a log line: more than "
                     "50 per second in one network namespace, or the ring buffer was full.",
                     prometheus::MetricType::Counter);
  lost.Add(static_cast<double>(source_->LostEvents()));
  lost.MoveTo(out);
  return {};
}

void BindEventsCollector::LookForPods(const SocketsConfig& sockets) {
  PodLookup lookup = pods_for_ ? pods_for_(sockets, kLogPodListAge) : nullptr;
  const std::lock_guard lock(pods_mutex_);
  log_pods_ = std::move(lookup);
}

PodLookup BindEventsCollector::ScrapePodLookup(const SocketsConfig& sockets) {
  std::map<uint32_t, PodLabels> logged;
  {
    const std::lock_guard lock(pods_mutex_);
    logged.swap(logged_pods_);
  }
  PodLookup pods = pods_for_ ? pods_for_(sockets, PodNamespaces::kSameScrape) : nullptr;
  if (!pods) {
    return nullptr;
  }
  return [this, pods = std::move(pods),
          logged = std::move(logged)](uint32_t netns) -> std::optional<PodLabels> {
    // The exporter's own namespace (the node's, for a DaemonSet) is no pod's: no /proc walk.
    if (netns == own_netns_) {
      return std::nullopt;
    }
    if (std::optional<PodLabels> pod = pods(netns)) {
      return pod;
    }
    const auto named = logged.find(netns);
    return named != logged.end() ? std::optional(named->second) : std::nullopt;
  };
}

std::optional<PodLabels> BindEventsCollector::PodOf(uint32_t netns) const {
  PodLookup lookup;
  {
    const std::lock_guard lock(pods_mutex_);
    lookup = log_pods_;
  }
  if (!lookup || netns == own_netns_) {
    return std::nullopt;
  }
  return lookup(netns);  // unlocked: it may walk /proc
}

std::string BindEventsCollector::DescribeFailure(const BindFailureEvent& event) const {
  return Describe(event, PodOf(event.key.netns)).Text();
}

LogLine BindEventsCollector::Describe(const BindFailureEvent& event,
                                      const std::optional<PodLabels>& pod) const {
  const BindFailureKey& key = event.key;
  LogLine line(std::string(SyscallLabel(key.syscall)) + " failed");
  line.Add("errno", ErrnoLabel(key.err))
      .Add("process", key.comm)
      .Add("pid", event.pid)
      .Add("uid", event.uid)
      .Add("netns", key.netns);
  if (pod) {
    line.Add("pod", pod->namespace_name.empty() ? pod->pod : pod->namespace_name + "/" + pod->pod);
  }
  line.Add("family", FamilyLabel(key.family));
  if (!event.address.empty()) {
    line.Add("address", event.address);
  }
  line.Add("port", key.port);
  if (key.syscall == PORTWATCH_SYSCALL_CONNECT) {
    return line.Add("why", "no free local port toward this destination (ephemeral ports in use)");
  }
  if (key.err == EACCES) {
    return line.Add("why",
                    "port below net.ipv4.ip_unprivileged_port_start needs CAP_NET_BIND_SERVICE");
  }
  if (key.port == 0) {
    return line.Add("why", "no free ephemeral port");
  }
  // Who holds the port, from the socket table of the failure's network namespace: the
  // exporter's own, or a pod's (entered when the pod was found).
  const bool own_namespace = own_netns_ != 0 && key.netns == own_netns_;
  if (!own_namespace && (!pod || !pod_tables_)) {
    return line.Add("holders", "unknown: another network namespace");
  }
  Result<std::unique_ptr<netlink::Transport>> transport =
      own_namespace ? open_transport_() : pod_tables_(key.netns);
  if (!transport) {
    return line.Add("holders", "unknown: " + transport.Error());
  }
  PortQuery query;
  query.ports = {key.port};
  const PortHolders holders =
      FindPortHolders(**transport, query, ProcOwnerResolver(procfs_, command_lines_));
  if (holders.sockets.empty()) {
    // Tables that could not be read: "none visible" would be a guess.
    return line.Add("holders", holders.unread.empty()
                                   ? std::string("none visible")
                                   : "unknown: cannot read " + holders.UnreadText());
  }
  constexpr size_t kMaxHolders = 5;
  std::string text;
  for (size_t i = 0; i < holders.sockets.size() && i < kMaxHolders; ++i) {
    const HeldSocket& socket = holders.sockets[i];
    text += (i == 0 ? "" : "; ") + std::string(netlink::ProtocolName(socket.protocol)) + " " +
            std::string(netlink::StateName(socket.record.state));
    const std::vector<ProcessInfo>& processes = holders.ProcessesOf(socket);
    if (!processes.empty()) {
      text += " by " + DescribeProcess(processes.front());
    } else if (socket.record.inode == 0) {
      text += " (no process)";
    } else {
      text += " by an invisible process";
    }
  }
  if (holders.sockets.size() > kMaxHolders) {
    text += "; +" + std::to_string(holders.sockets.size() - kMaxHolders) + " more";
  }
  return line.Add("holders", text);
}

void BindEventsCollector::OnEvent(const BindFailureEvent& event) {
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(log_mutex_);
    const auto now = std::chrono::steady_clock::now();
    const double elapsed = std::chrono::duration<double>(now - log_refilled_).count();
    log_tokens_ = std::min(kLogBurst, log_tokens_ + elapsed * kLogLinesPerSecond);
    log_refilled_ = now;
    if (log_tokens_ < 1) {
      ++log_suppressed_;
      return;
    }
    log_tokens_ -= 1;
    suppressed = std::exchange(log_suppressed_, 0);
  }
  const std::optional<PodLabels> pod = PodOf(event.key.netns);
  if (pod) {
    const std::lock_guard lock(pods_mutex_);
    logged_pods_[event.key.netns] = *pod;
  }
  LogLine line = Describe(event, pod);
  if (suppressed != 0) {
    line.Add("suppressed_before", suppressed);
  }
  log_(line.Text());
}

}  // namespace portwatch
