#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "collectors/bind_events/bind_event_source.h"
#include "collectors/bind_events/bind_events_table.h"
#include "collectors/collector.h"
#include "collectors/common/logfmt.h"
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

  /// Opens the source at once with the attach paths `options` allows, so failures are counted
  /// from start-up on, not from the first scrape. A reloaded config with other attach paths
  /// re-attaches at the next scrape. `own_netns` is the inode of the exporter's network
  /// namespace.
  BindEventsCollector(ProcFs procfs, netlink::TransportFactory open_transport,
                      SourceFactory open_source, const BindEventsConfig& options,
                      uint32_t own_netns, LogSink log = nullptr);
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

  /// At most this many log lines in a burst, refilled at kLogLinesPerSecond.
  static constexpr double kLogBurst = 20;
  static constexpr double kLogLinesPerSecond = 2;

 private:
  void OnEvent(const BindFailureEvent& event);
  LogLine Describe(const BindFailureEvent& event) const;
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
  BindFailureCounters counters_;

  std::mutex log_mutex_;  ///< the rate limiter: events arrive on the source's thread
  double log_tokens_ = kLogBurst;
  std::chrono::steady_clock::time_point log_refilled_ = std::chrono::steady_clock::now();
  uint64_t log_suppressed_ = 0;

  std::unique_ptr<BindEventSource> source_;  ///< last: stopped before the members it calls
};

/// The inode of the calling process's network namespace (0 when /proc/self/ns/net is unreadable).
uint32_t OwnNetworkNamespace();

}  // namespace portwatch
