#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "collectors/common/result.h"
#include "collectors/netlink/transport.h"
#include "collectors/netns/namespace_worker.h"
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

/// How long NamespaceSockets::Setting() reuses what it read of a namespace's sysctl. The
/// collectors of one scrape run one after the other within it, and several ask for the same
/// setting of a pod (the port range: sockets, services and kernel_limits): one read serves them
/// all. Scrapes are seconds apart, so each scrape reads afresh; a sysctl changed less than this
/// before a scrape showing only at the next one is fine. (PodNamespaces::kSameScrape reuses a
/// discovery on the same grounds.)
inline constexpr std::chrono::milliseconds kSettingFreshFor{1000};

/// One sysctl's text as last read, and when: read again only once older than a freshness window.
/// Not thread-safe (NamespaceSockets locks around it).
class RecentSetting {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  /// The text read less than `fresh_for` before `now`; otherwise what `read()` returns, kept with
  /// `now`. An unreadable setting (nullopt) is kept too: a kernel that lacks it lacks it still.
  template <typename Read>
  std::optional<std::string> Get(TimePoint now, std::chrono::steady_clock::duration fresh_for,
                                 Read&& read) {
    if (!read_at_ || now - *read_at_ >= fresh_for) {
      text_ = std::forward<Read>(read)();
      read_at_ = now;
    }
    return text_;
  }

 private:
  std::optional<std::string> text_;
  std::optional<TimePoint> read_at_;
};

/// A sock_diag socket in each of several network namespaces, made once and kept.
///
/// A netlink socket answers for the namespace it was created in, wherever it is used later, so
/// each namespace is entered once (setns on a short-lived thread of its own: setns changes only
/// the calling thread, and the exporter's threads must stay in the exporter's namespace), and its
/// socket serves every later scrape. A namespace whose processes are all gone is closed at the
/// next Refresh(): the socket would otherwise keep it alive. The namespace's own fd is kept too:
/// CreateInside() enters it again, on NamespaceWorker's thread, for what must be made inside at
/// every scrape (a BPF socket iterator walks the namespace of the thread creating it).
///
/// Open(), Setting() and the other const members may be called from several threads at once;
/// Refresh() not alongside any of them (PodNamespaces locks around every call).
class NamespaceSockets {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  /// `now` tells Setting() the time (a test's own clock; steady_clock by default).
  explicit NamespaceSockets(ProcFs procfs, Clock now = std::chrono::steady_clock::now)
      : procfs_(std::move(procfs)), now_(std::move(now)) {}

  /// Enters the namespaces not yet entered, closes those no longer `present`. Returns why each
  /// namespace that could not be entered failed, by inode (setns needs CAP_SYS_ADMIN; opening
  /// another user's /proc/<pid>/ns/net needs CAP_SYS_PTRACE).
  std::map<uint64_t, std::string> Refresh(const std::vector<NetworkNamespace>& present);

  /// A transport for one scrape of namespace `inode` (over a duplicate of its kept socket).
  Result<std::unique_ptr<netlink::Transport>> Open(uint64_t inode) const;
  /// What `make` returns when run inside namespace `inode` (on NamespaceWorker's thread, which
  /// alone raises CAP_SYS_ADMIN, and returns to the exporter's namespace after). Fails without
  /// running `make` when the namespace is not entered or cannot be entered again.
  Result<netlink::UniqueFd> CreateInside(uint64_t inode, const NamespaceWorker::Make& make) const;
  /// The current text of one of the namespace's own sysctls (as read at most kSettingFreshFor
  /// ago); nullopt when the namespace was not entered or the kernel has no such setting.
  std::optional<std::string> Setting(uint64_t inode, NamespaceSetting setting) const;
  /// The namespace's own net.ipv4.ip_local_port_range (a sysctl of each network namespace).
  std::optional<EphemeralRange> EphemeralRangeOf(uint64_t inode) const;
  /// Whether the namespace has a TCP established hash of its own (net.ipv4.tcp_ehash_entries is
  /// positive: its creator had set net.ipv4.tcp_child_ehash_entries, Linux 6.1+). Otherwise a
  /// dump inside it walks every TCP socket of the node.
  bool HasPrivateHash(uint64_t inode) const;

  size_t Size() const { return entered_.size(); }
  /// Reads of a kept sysctl file since start (for tests and the cost figures).
  uint64_t SettingReads() const;

 private:
  struct Entered {
    /// /proc/<pid>/ns/net as opened by Enter(): it pins the namespace as the socket does, and
    /// CreateInside() enters it.
    netlink::UniqueFd namespace_fd;
    netlink::UniqueFd sock_diag;
    /// The NamespaceSetting files, opened inside, by the enum's value.
    std::array<netlink::UniqueFd, kNamespaceSettings> settings;
    /// What Setting() last read of each, by the enum's value (guarded by recent_mutex_).
    mutable std::array<RecentSetting, kNamespaceSettings> recent;
  };
  /// Opens `<proc>/<pid>/ns/net`, checks it is still namespace `inode` (the pid may have been
  /// reused), and makes the namespace's sockets from inside it.
  Result<Entered> Enter(const NetworkNamespace& target) const;

  ProcFs procfs_;
  Clock now_;
  std::map<uint64_t, Entered> entered_;
  /// Setting() is const and may run on several threads: it fills Entered::recent under this.
  mutable std::mutex recent_mutex_;
  mutable uint64_t setting_reads_ = 0;  ///< guarded by recent_mutex_
  /// Thread-safe on its own; behind a pointer because CreateInside() is const.
  std::unique_ptr<NamespaceWorker> worker_ = std::make_unique<NamespaceWorker>();
};

}  // namespace portwatch
