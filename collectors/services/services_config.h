#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/common/result.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace YAML {
class Node;
}  // namespace YAML

namespace portwatch {

/// Options of the services collector (ownership, conflicts, bind prediction, listeners).
struct ServicesOptions {
  /// portwatch_listener_info for every listening socket: the `netstat -tulpn` view.
  bool listener_info = true;
  /// Add a pid label to portwatch_listener_info (one series per process restart).
  bool pid_label = false;
  size_t max_listener_series = 1000;
  /// The kubelet's container log directory: its entries <pod>_<namespace>_<container>-<id>.log
  /// name the containers of portwatch_listener_info's container label.
  std::string container_logs_dir = "/var/log/containers";

  bool operator==(const ServicesOptions&) const = default;
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

/// The pods a service is evaluated in (instead of the node's own network namespace): a pod
/// matches when its namespace equals `namespace_name` and its name matches `name` (RE2, fully
/// anchored). An empty field matches any pod; a selector sets at least one.
struct PodSelector {
  std::string namespace_name;  ///< exact
  std::string name;            ///< RE2 pattern matched against the whole pod name
  /// `name` compiled by CompilePodNameRegex(); shared because every scrape copies the config.
  std::shared_ptr<const re2::RE2> name_regex;

  bool Matches(const std::string& pod_namespace, const std::string& pod_name) const;
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
  /// Set: the service lives in pods, and is evaluated inside each matching pod's network
  /// namespace (not the node's). Unset: the node's namespace only.
  std::optional<PodSelector> pods;
};

/// Compiles an owner's cmdline pattern as RE2 with the options every owner regex uses (byte
/// semantics, `.` matches newlines, bounded memory, no logging: see services_config.cc). Fails
/// with RE2's message when the pattern is not valid RE2 syntax, which has no backreferences and
/// no lookarounds.
Result<std::shared_ptr<const re2::RE2>> CompileCmdlineRegex(const std::string& pattern);

/// Compiles a pod name selector as RE2, fully anchored (a pod name is ASCII: the default UTF-8
/// options fit). Fails with RE2's message.
Result<std::shared_ptr<const re2::RE2>> CompilePodNameRegex(const std::string& pattern);

/// Sets service.address, ipv6 and address_bytes from "0.0.0.0", "::1" or "[::1]". Returns false
/// when the text is not an IPv4 or IPv6 address.
bool SetServiceAddress(const std::string& text, ServiceConfig& service);

/// Reads the `collectors.services` section (`path` names it in errors); null means defaults.
/// Throws ConfigProblem.
ServicesOptions ParseServicesOptions(const YAML::Node& node, const std::string& path);

/// Reads the top-level `services` list: names unique, ports 1-65535, owner patterns valid RE2.
/// Throws ConfigProblem.
std::vector<ServiceConfig> ParseServices(const YAML::Node& node);

}  // namespace portwatch
