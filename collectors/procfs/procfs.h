#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace portwatch {

/// Reads kernel files below a root that is "/proc" in production and a fixture tree in tests.
class ProcFs {
 public:
  explicit ProcFs(std::string root = "/proc") : root_(std::move(root)) {}

  const std::string& Root() const { return root_; }
  /// Whole file below the root (read to its end: /proc files have no size), or nullopt when it
  /// cannot be opened or a read fails. A directory reads as empty.
  std::optional<std::string> ReadFile(const std::string& relative_path) const;
  /// One integer sysctl, e.g. "sys/net/ipv4/tcp_max_tw_buckets".
  std::optional<int64_t> ReadInteger(const std::string& relative_path) const;
  /// The inode of <root>/<pid_dir>/ns/net ("self" or a pid): the network namespace's identity.
  /// 0 when it cannot be read (gone, no ptrace access, a fixture tree without it).
  uint64_t NetworkNamespace(const std::string& pid_dir) const;

 private:
  std::string root_;
};

/// A /proc directory entry's name as a pid (a positive number): false for anything else.
bool ParsePid(const char* name, pid_t& pid);

/// net.ipv4.ip_local_port_range, which the kernel uses for IPv4 and IPv6 alike.
struct EphemeralRange {
  uint16_t first = 32768;
  uint16_t last = 60999;

  bool Contains(uint32_t port) const { return port >= first && port <= last; }
  uint32_t Size() const { return last >= first ? last - first + 1U : 0U; }
};

/// The one integer of a sysctl file's text ("262144\n"), as ProcFs::ReadInteger reads it.
std::optional<int64_t> ParseSingleInteger(const std::string& text);

/// Parses "32768\t60999". Returns nullopt on anything else.
std::optional<EphemeralRange> ParseEphemeralRange(const std::string& text);

/// net.ipv4.ip_local_port_range read from `procfs`, or nullopt when unreadable or malformed.
std::optional<EphemeralRange> ReadEphemeralRange(const ProcFs& procfs);
/// net.ipv4.ip_local_reserved_ports read from `procfs`, or nullopt when unreadable or malformed.
std::optional<std::vector<uint16_t>> ReadReservedPorts(const ProcFs& procfs);

/// Parses a port list like net.ipv4.ip_local_reserved_ports: "8080,9000-9010" (empty: none).
/// The ports come sorted, each once, as in the kernel's bitmap, even when items overlap.
std::optional<std::vector<uint16_t>> ParsePortList(const std::string& text);

/// Whether a kernel release string ("6.18.44-fc") is at least major.minor.
bool KernelAtLeast(const std::string& release, int major, int minor);

/// Parses /proc/net/netstat (or /proc/net/snmp): header/value line pairs per prefix, e.g.
/// result["TcpExt"]["TW"]. Lines whose header and values disagree are skipped.
std::map<std::string, std::map<std::string, uint64_t>> ParseNetstat(const std::string& text);

}  // namespace portwatch
