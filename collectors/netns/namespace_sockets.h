#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectors/common/result.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/netns_discovery.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

/// The per-namespace sysctls kept open in each namespace entered (/proc/sys/net resolves to the
/// namespace of the thread that opens a file, for the file's life: they must be opened inside).
enum class NamespaceSetting : uint8_t {
  kPortRange,           ///< net.ipv4.ip_local_port_range
  kReservedPorts,       ///< net.ipv4.ip_local_reserved_ports
  kMaxTimeWaitBuckets,  ///< net.ipv4.tcp_max_tw_buckets
  kEhashEntries,        ///< net.ipv4.tcp_ehash_entries (Linux 6.1+)
};
inline constexpr size_t kNamespaceSettings = 4;
/// The file under /proc/sys/net of a setting ("ipv4/ip_local_port_range").
const char* NamespaceSettingPath(NamespaceSetting setting);

/// A sock_diag socket in each of several network namespaces, made once and kept.
///
/// A netlink socket answers for the namespace it was created in, wherever it is used later, so
/// each namespace is entered once (setns on a short-lived thread of its own: setns changes only
/// the calling thread, and the exporter's threads must stay in the exporter's namespace), and its
/// socket serves every later scrape. A namespace whose processes are all gone is closed at the
/// next Refresh(): the socket would otherwise keep it alive.
class NamespaceSockets {
 public:
  explicit NamespaceSockets(ProcFs procfs) : procfs_(std::move(procfs)) {}

  /// Enters the namespaces not yet entered, closes those no longer `present`. Returns why each
  /// namespace that could not be entered failed, by inode (setns needs CAP_SYS_ADMIN; opening
  /// another user's /proc/<pid>/ns/net needs CAP_SYS_PTRACE).
  std::map<uint64_t, std::string> Refresh(const std::vector<NetworkNamespace>& present);

  /// A transport for one scrape of namespace `inode` (over a duplicate of its kept socket).
  Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const;
  /// The current text of one of the namespace's own sysctls; nullopt when the namespace was not
  /// entered or the kernel has no such setting.
  std::optional<std::string> Setting(uint64_t inode, NamespaceSetting setting) const;
  /// The namespace's own net.ipv4.ip_local_port_range (a sysctl of each network namespace).
  std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const;
  /// Whether the namespace has a TCP established hash of its own (net.ipv4.tcp_ehash_entries is
  /// positive: its creator had set net.ipv4.tcp_child_ehash_entries, Linux 6.1+). Otherwise a
  /// dump inside it walks every TCP socket of the node.
  bool HasPrivateHash(uint64_t inode) const;

  size_t Size() const { return entered_.size(); }

 private:
  struct Entered {
    netlink::UniqueFd sock_diag;
    /// The NamespaceSetting files, opened inside, by the enum's value.
    std::array<netlink::UniqueFd, kNamespaceSettings> settings;
  };
  /// Opens `<proc>/<pid>/ns/net`, checks it is still namespace `inode` (the pid may have been
  /// reused), and makes the namespace's sockets from inside it.
  Result<Entered> Enter(const NetworkNamespace& target) const;

  ProcFs procfs_;
  std::map<uint64_t, Entered> entered_;
};

}  // namespace portwatch
