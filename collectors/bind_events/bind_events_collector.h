#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "collectors/bind_events/bind_event_source.h"
#include "collectors/bind_events/bind_events_table.h"
#include "collectors/collector.h"
#include "collectors/common/logfmt.h"
#include "collectors/netns/pod_namespaces.h"
#include "collectors/procfs/procfs.h"
#include "collectors/sockets/sockets_collector.h"

namespace portwatch {

/// Failed bind()/listen()/connect() calls as they happen, counted in the kernel by an eBPF
/// program (see collectors/bpf/bind_events.bpf.c and docs/bind_events.md).
class BindEventsCollector : public Collector {
 public:
  using SourceFactory = std::function<std::unique_ptr<BindEventSource>(
      const std::vector<BindEventsAttach>& allowed, BindEventHandler)>;
  /// Where log lines go (spdlog info in production, a vector in tests).
  using LogSink = std::function<void(const std::string&)>;
  /// The PodLookup for the pods settings `sockets` (collectors.sockets.pods and pod_logs_dir;
  /// nullptr when pods are off), naming pods from a list of the node's pods at most `max_age`
  /// old. Production: PodLookupFrom(the shared PodNamespaces); tests: a fake.
  using PodLookupFactory = std::function<PodLookup(const SocketsConfig& sockets,
                                                   std::chrono::steady_clock::duration max_age)>;
  /// A sock_diag transport inside pod network namespace `netns` (one a PodLookup named), for
  /// the holders of a pod's failed port. Production: PodTablesFrom(the shared PodNamespaces).
  using PodTableOpener = std::function<Result<std::unique_ptr<netlink::Transport>>(uint32_t netns)>;

  /// Opens the source at once with the attach paths `options` allows, so failures are counted
  /// from start-up on, not from the first scrape. A reloaded config with other attach paths
  /// re-attaches at the next scrape. `own_netns` is the inode of the exporter's network
  /// namespace. `pods` (nullptr: none) names the pods of failures' namespaces, in the series
  /// of portwatch_bind_failures_total and in log lines; `pod_tables` (nullptr: none) reads a
  /// pod's sockets for the holders in its log lines.
  BindEventsCollector(ProcFs procfs, netlink::TransportFactory open_transport,
                      SourceFactory open_source, const BindEventsConfig& options,
                      uint32_t own_netns, LogSink log = nullptr, PodLookupFactory pods = nullptr,
                      PodTableOpener pod_tables = nullptr);
  ~BindEventsCollector() override;
  BindEventsCollector(const BindEventsCollector&) = delete;
  BindEventsCollector& operator=(const BindEventsCollector&) = delete;

  std::string_view Name() const override { return "bind_events"; }
  Status Collect(const Config& config, std::vector<prometheus::MetricFamily>& out) override;

  /// The log line for one failure (rate limiting aside): who failed, and from the socket table
  /// who holds the port and in what state. Public for tests.
  std::string DescribeFailure(const BindFailureEvent& event) const;

  /// Whether log lines show the holders' command lines (privacy.command_lines); every scrape
  /// sets it from the current config, the registry from the config loaded at start.
  void ShowCommandLines(bool show) { command_lines_ = show; }
  /// How log lines find the pod of a failure's namespace (`sockets`: whether pods are looked
  /// for, and where their names are); every scrape sets it from the current config, the registry
  /// from the config loaded at start.
  void LookForPods(const SocketsConfig& sockets);

  /// How old the list of pods a log line names a known pod's namespace from may be. A namespace
  /// not in it is looked for again in a list at most PodNamespaces::kSameScrape old: a pod that
  /// fails right after it started is named too, and failures outside pods walk /proc at most
  /// once a second.
  static constexpr std::chrono::seconds kLogPodListAge{30};

  /// At most this many log lines in a burst, refilled at kLogLinesPerSecond.
  static constexpr double kLogBurst = 20;
  static constexpr double kLogLinesPerSecond = 2;

 private:
  void OnEvent(const BindFailureEvent& event);
  /// This scrape's lookup for BindFailureCounters: the pods now, else those log lines named.
  PodLookup ScrapePodLookup(const SocketsConfig& sockets);
  /// The pod of network namespace `netns` for a log line (nullopt: none, or not known).
  std::optional<PodLabels> PodOf(uint32_t netns) const;
  LogLine Describe(const BindFailureEvent& event, const std::optional<PodLabels>& pod) const;
  /// (Re-)attaches through the first of `allowed` the kernel accepts and says so once.
  void OpenSource(const std::vector<BindEventsAttach>& allowed);
  std::set<uint16_t> ListeningPorts() const;

  ProcFs procfs_;
  netlink::TransportFactory open_transport_;
  SourceFactory open_source_;
  std::vector<BindEventsAttach> allowed_;  ///< what source_ was opened with
  uint32_t own_netns_;
  LogSink log_;
  std::atomic<bool> command_lines_{true};
  PodLookupFactory pods_for_;
  PodTableOpener pod_tables_;
  BindFailureCounters counters_;

  mutable std::mutex pods_mutex_;  ///< log lines are written on the source's thread
  PodLookup log_pods_;             ///< how log lines find pods (LookForPods)
  /// The pods log lines named since the last scrape, by namespace: a pod that failed and went
  /// away before the scrape still gets its failures (see BindFailureCounters).
  std::map<uint32_t, PodLabels> logged_pods_;

  std::mutex log_mutex_;  ///< the rate limiter: events arrive on the source's thread
  double log_tokens_ = kLogBurst;
  std::chrono::steady_clock::time_point log_refilled_ = std::chrono::steady_clock::now();
  uint64_t log_suppressed_ = 0;

  std::unique_ptr<BindEventSource> source_;  ///< last: stopped before the members it calls
};

/// The inode of the calling process's network namespace (0 when /proc/self/ns/net is unreadable).
uint32_t OwnNetworkNamespace();

/// The pods of `pods` (the PodNamespaces every collector shares) as BindEventsCollector looks
/// them up: Discover(pod_logs_dir, max_age), then, for a namespace not in that list,
/// Discover(pod_logs_dir, PodNamespaces::kSameScrape).
BindEventsCollector::PodLookupFactory PodLookupFrom(std::shared_ptr<PodNamespaces> pods);
/// The kept sock_diag socket of a pod's namespace in `pods` (PodNamespaces::Open): the pod was
/// entered when it was discovered.
BindEventsCollector::PodTableOpener PodTablesFrom(std::shared_ptr<PodNamespaces> pods);

}  // namespace portwatch
