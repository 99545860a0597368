#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace re2 {
class RE2;
}  // namespace re2

namespace portwatch {

/// Options of the sockets collector.
struct SocketsConfig {
  bool tcp = true;
  bool udp = true;
  bool ipv4 = true;
  bool ipv6 = true;
  /// Distinct (protocol, port) values in portwatch_sockets; listening ports are always kept.
  size_t max_port_series = 1000;
  /// Distinct (protocol, peer_port) values in portwatch_peer_sockets.
  size_t max_peer_port_series = 100;
  /// Busiest remote address:port destinations of client-side sockets to expose.
  size_t top_destinations = 10;
  /// Also count TCP sockets that are bound but neither listening nor connected (Linux 6.10+).
  /// Costs a walk of the kernel's bind hash: about 30% more kernel time per scrape.
  bool bound_inactive = false;
};

/// Options of the services collector (ownership, conflicts, bind prediction, listeners).
struct ServicesOptions {
  /// portwatch_listener_info for every listening socket: the `netstat -tulpn` view.
  bool listener_info = true;
  /// Add a pid label to portwatch_listener_info (one series per process restart).
  bool pid_label = false;
  size_t max_listener_series = 1000;
};

/// Who should hold a service's port: a process matching any of the set fields.
struct OwnerMatch {
  std::string process;  ///< exact /proc/<pid>/comm
  std::string cmdline;  ///< RE2 pattern searched (unanchored) in the whole command line
  /// `cmdline` compiled by CompileCmdlineRegex(); shared because every scrape copies the config.
  std::shared_ptr<const re2::RE2> cmdline_regex;
  std::string exe;  ///< exact /proc/<pid>/exe target

  bool Any() const { return !process.empty() || cmdline_regex != nullptr || !exe.empty(); }
};

enum class ServiceProtocol : uint8_t { kTcp, kUdp };

/// A port a service is supposed to own.
struct ServiceConfig {
  std::string name;
  uint16_t port = 0;
  ServiceProtocol protocol = ServiceProtocol::kTcp;
  std::string address = "0.0.0.0";          ///< as written; wildcard by default
  bool ipv6 = false;                        ///< `address` is an IPv6 address
  std::array<uint8_t, 16> address_bytes{};  ///< network order; IPv4 in the first 4 bytes
  bool ipv6_only = false;  ///< IPV6_V6ONLY of the service's socket (IPv6 addresses only)
  OwnerMatch owner;
  uint32_t instances = 1;  ///< expected number of owning processes
};

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
};

struct Config {
  SocketsConfig sockets;
  BindEventsConfig bind_events;
  ServicesOptions services_options;
  std::vector<ServiceConfig> services;
  /// Where the config came from, for logs: a path or "<embedded default>".
  std::string source;
};

struct ConfigResult {
  std::optional<Config> config;
  /// "FILE:LINE:COLUMN: problem" when config is empty.
  std::string error;
};

/// Compiles an owner's cmdline pattern as RE2 with the options every owner regex uses (byte
/// semantics, `.` matches newlines, bounded memory, no logging: see config.cc). Returns nullptr
/// and sets `error` to RE2's message when the pattern is not valid RE2 syntax, which has no
/// backreferences and no lookarounds.
std::shared_ptr<const re2::RE2> CompileCmdlineRegex(const std::string& pattern, std::string& error);

/// Sets service.address, ipv6 and address_bytes from "0.0.0.0", "::1" or "[::1]". Returns false
/// when the text is not an IPv4 or IPv6 address.
bool SetServiceAddress(const std::string& text, ServiceConfig& service);

/// The configuration compiled into the binary, used when --config.file is not given.
const std::string& EmbeddedDefaultConfig();

/// Parses YAML text. `source` names it in errors. Unknown keys and wrong types are errors.
ConfigResult ParseConfig(const std::string& text, const std::string& source);
/// Reads and parses a file; an empty path means the embedded default.
ConfigResult LoadConfig(const std::string& path);

}  // namespace portwatch
