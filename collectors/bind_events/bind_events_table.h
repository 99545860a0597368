#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include <prometheus/metric_family.h>

#include "collectors/bpf/bind_events_abi.h"

namespace portwatch {

/// One counter key of the BPF map, decoded.
struct BindFailureKey {
  uint32_t netns = 0;
  uint16_t port = 0;
  uint8_t syscall = 0;  ///< portwatch_bind_syscall
  uint8_t err = 0;      ///< positive errno
  uint16_t family = 0;  ///< AF_INET, AF_INET6, 0 when unknown
  std::string comm;

  auto Tie() const { return std::tie(netns, port, syscall, err, family, comm); }
  bool operator<(const BindFailureKey& other) const { return Tie() < other.Tie(); }
  bool operator==(const BindFailureKey& other) const { return Tie() == other.Tie(); }
};

/// One failure as the ring buffer delivers it, decoded, for the log line.
struct BindFailureEvent {
  BindFailureKey key;
  pid_t pid = 0;
  uint32_t uid = 0;
  std::string address;  ///< "127.0.0.1", "::1"; empty when unknown (listen, unreadable sockaddr)
};

BindFailureKey DecodeBindKey(const portwatch_bind_key& raw);
BindFailureEvent DecodeBindEvent(const portwatch_bind_event& raw);

/// "bind", "listen", "connect"; "unknown" for anything else.
std::string_view SyscallLabel(uint8_t syscall);
/// "EADDRINUSE", "EADDRNOTAVAIL", "EACCES"; the number otherwise.
std::string ErrnoLabel(uint8_t err);
/// "ipv4", "ipv6", "unknown".
std::string_view FamilyLabel(uint16_t family);
/// The comm up to its NUL, at most 16 bytes; bytes that are not printable ASCII (and `"`, `\`)
/// become '_', so a label or a log line never carries control characters.
std::string CommLabel(const char* comm, size_t size);

/// The cumulative, cardinality-capped counters behind portwatch_bind_failures_total.
///
/// The kernel map holds one counter per (netns, syscall, errno, family, port, comm). Each scrape
/// hands the whole map to Update(); the increase of each key since the previous scrape is added
/// to the series its port maps to now, so every exposed series only ever grows, even when a port
/// later moves between its own series and port="other". Ports in `kept` (configured services,
/// listening sockets) always get their own label; other ports get one while fewer than
/// `max_port_series` ports have one (the busiest first), beyond that they fold into "other".
/// A port keeps its label once it has one.
class BindFailureCounters {
 public:
  struct Options {
    size_t max_port_series = 100;
    /// When not 0, only failures in this network namespace are exposed.
    uint32_t only_netns = 0;
  };

  void Update(const std::vector<std::pair<BindFailureKey, uint64_t>>& snapshot,
              const std::set<uint16_t>& kept_ports, const Options& options);

  /// The kernel's counters start again from zero (the program was re-attached): the next
  /// snapshot is all increase. The exposed series keep their values.
  void ForgetKernelCounts() { last_.clear(); }

  /// portwatch_bind_failures_total and portwatch_bind_failures_port_series_folded.
  void AppendMetrics(std::vector<prometheus::MetricFamily>& out) const;

  /// Series value by (syscall, errno, family, port, process, netns) labels, for tests.
  using SeriesKey =
      std::tuple<std::string, std::string, std::string, std::string, std::string, std::string>;
  const std::map<SeriesKey, uint64_t>& Series() const { return series_; }

 private:
  std::map<BindFailureKey, uint64_t> last_;
  std::set<uint16_t> labelled_ports_;  ///< ports outside `kept` that got their own label
  std::set<uint16_t> folded_ports_;    ///< ports that went into "other"
  std::map<SeriesKey, uint64_t> series_;
};

}  // namespace portwatch
