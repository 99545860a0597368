#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace YAML {
class Node;
}  // namespace YAML

namespace portwatch {

/// How the bind_events eBPF program hooks the system calls, cheapest first. kFexit runs only
/// inside bind/listen/connect. The other two are syscall trace events: while they are attached
/// the kernel puts every system call of every process on its syscall tracing slow path
/// (docs/bind_events.md has the measured cost).
enum class BindEventsAttach { kFexit, kTracepoint, kRawTracepoint };
/// Every attach path, cheapest first: the order they are tried in.
inline constexpr std::array<BindEventsAttach, 3> kBindEventsAttachPaths = {
    BindEventsAttach::kFexit, BindEventsAttach::kTracepoint, BindEventsAttach::kRawTracepoint};
/// The config name of an attach path ("fexit", "tracepoint", "raw_tracepoint").
const char* BindEventsAttachName(BindEventsAttach attach);

/// Options of the bind_events collector (eBPF counters of failed bind/listen/connect).
struct BindEventsConfig {
  /// The attach paths allowed, tried cheapest first; the first the kernel accepts is used. The
  /// default is the one that costs nothing outside bind/listen/connect.
  std::vector<BindEventsAttach> attach = {BindEventsAttach::kFexit};
  /// Count failures in every network namespace (a node agent's view) or only the exporter's own.
  bool all_namespaces = true;
  /// Distinct ports in portwatch_bind_failures_total beyond the configured service ports and
  /// listening ports, which always keep their own label; the rest fold into port="other".
  size_t max_port_series = 100;

  bool operator==(const BindEventsConfig&) const = default;
};

/// Reads the `collectors.bind_events` section (`path` names it in errors); null means defaults.
/// Throws ConfigProblem.
BindEventsConfig ParseBindEventsConfig(const YAML::Node& node, const std::string& path);

}  // namespace portwatch
