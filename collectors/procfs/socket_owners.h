#pragma once

#include <sys/types.h>

#include <chrono>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <unordered_set>
#include <vector>

#include "collectors/common/result.h"
#include "collectors/procfs/procfs.h"

namespace portwatch {

struct ProcessInfo {
  pid_t pid = 0;
  std::string command;  ///< /proc/<pid>/comm
  std::string cmdline;  ///< /proc/<pid>/cmdline with NULs as spaces
  std::string exe;      ///< /proc/<pid>/exe target; empty when not readable (no privilege)
  uid_t uid = 0;        ///< owner of /proc/<pid>
  /// The parent (PPid, /proc/<pid>/stat); 0 when unknown. Tells workers forked by a master from
  /// separately started copies (ServiceHolders::instances).
  pid_t parent_pid = 0;
};

/// One fd of one process that holds a socket.
struct SocketFd {
  uint32_t inode = 0;
  pid_t pid = 0;  ///< the process (tgid), as the /proc read shows it
  int fd = -1;

  auto operator<=>(const SocketFd&) const = default;
};

/// Finds every fd of every process that holds one of `inodes`, without reading /proc/<pid>/fd
/// (the task_file iterator, socket_fd_iterator.h; a fake in tests), or says why it cannot.
using FindSocketFds =
    std::function<Result<std::vector<SocketFd>>(const std::unordered_set<uint32_t>& inodes)>;

/// How a pass found the fds holding the wanted sockets.
enum class FdScanMethod {
  kNone,         ///< no socket was looked for
  kProcfs,       ///< a readlink of every /proc/<pid>/fd/<fd>
  kBpfTaskFile,  ///< the FindSocketFds strategy (task_file iterator)
};

/// The `method` label of portwatch_process_scan_method: "procfs", "bpf_task_file" ("" for kNone).
const char* FdScanMethodName(FdScanMethod method);

struct SocketOwners {
  /// Socket inode to the processes holding an fd on it (several after fork or SCM_RIGHTS).
  std::map<uint32_t, std::vector<ProcessInfo>> by_inode;
  /// For each wanted inode, one (pid, fd) that holds it: enough to duplicate the socket with
  /// pidfd_getfd() and read its options.
  std::map<uint32_t, std::pair<pid_t, int>> first_fd;
  /// Every (inode, pid, fd) found, for SocketOwnerCache.
  std::vector<std::tuple<uint32_t, pid_t, int>> fds;
  /// Every process seen, when asked for with identify_all (the `ps -ef` view), restricted to
  /// the processes in the network namespace of <proc>/self: a process in another namespace (a
  /// pod, a second test) binds its own port space and is no second instance here. Processes
  /// whose namespace cannot be read (no ptrace access) are kept.
  std::vector<ProcessInfo> processes;
  /// Processes left out of `processes` because they live in another network namespace.
  uint64_t processes_in_other_netns = 0;
  /// With identify_all, the processes of the other network namespaces asked for (pods: each
  /// one's own `ps -ef`), by namespace inode. They count in processes_in_other_netns too.
  std::map<uint64_t, std::vector<ProcessInfo>> processes_by_netns;
  uint64_t processes_scanned = 0;
  /// Processes that vanished mid-scan or whose fds could not be read (no privilege).
  uint64_t processes_skipped = 0;
  /// How the wanted sockets' fds were found.
  FdScanMethod method = FdScanMethod::kNone;
  /// Why the FindSocketFds strategy could not answer, when the /proc pass stood in for it.
  std::string find_fds_error;
};

/// Maps socket inodes to processes the way `ss -p` does: one pass over <proc>/<pid>/fd,
/// reading the links "socket:[INODE]". Only the wanted inodes are resolved. With
/// `identify_all`, the same pass also lists every process (for matching a service's owner), and
/// those of the network namespaces in `identify_netns` apart (processes_by_netns).
///
/// With `find_fds`, the fds come from it instead and only their processes are read (comm,
/// cmdline, exe, owner); with `identify_all` every process is still read, but no fd link. When
/// it fails, the /proc pass runs as without it (find_fds_error says why).
SocketOwners FindSocketOwners(const ProcFs& procfs, const std::unordered_set<uint32_t>& inodes,
                              bool identify_all = false,
                              const std::set<uint64_t>& identify_netns = {},
                              const FindSocketFds& find_fds = nullptr);

/// FindSocketOwners for every scrape, without reading every fd of every process each time.
///
/// Listening sockets live long, so the holders found by one full pass are re-checked the next
/// time with one readlink each ("is fd N of pid P still socket:[INODE]?"). A full pass runs
/// only when a socket has no verified holder yet (a new listener, a new service socket), at most
/// once per kRetryUnresolved for sockets no visible process holds, and at least every
/// kFullScanInterval so that holders added by a fork are found.
///
/// A full pass asks `find_fds` (the task_file iterator in production) for the fds holding the
/// wanted sockets and falls back to reading every fd link when it is absent or fails.
class SocketOwnerCache {
 public:
  static constexpr std::chrono::seconds kRetryUnresolved{60};
  static constexpr std::chrono::seconds kFullScanInterval{300};

  explicit SocketOwnerCache(ProcFs procfs, FindSocketFds find_fds = nullptr)
      : procfs_(std::move(procfs)), find_fds_(std::move(find_fds)) {}

  SocketOwners Resolve(const std::unordered_set<uint32_t>& inodes, bool identify_all,
                       std::chrono::steady_clock::time_point now,
                       const std::set<uint64_t>& identify_netns = {});
  /// Full passes over every fd since start (for tests and the cost figures).
  uint64_t FullScans() const { return full_scans_; }
  /// How the last full pass that looked for sockets found their fds (kNone before any).
  FdScanMethod LastMethod() const { return last_method_; }

 private:
  struct Holder {
    int fd;
    ProcessInfo process;
  };
  bool StillHolds(const Holder& holder, uint32_t inode) const;

  ProcFs procfs_;
  FindSocketFds find_fds_;
  std::map<uint32_t, std::vector<Holder>> holders_;
  std::map<uint32_t, std::chrono::steady_clock::time_point> unresolved_since_;
  std::chrono::steady_clock::time_point last_full_scan_{};
  uint64_t full_scans_ = 0;
  FdScanMethod last_method_ = FdScanMethod::kNone;
};

/// "pid 42 (nginx: nginx -g daemon off;)": how a log line or error names a process (its command
/// line as ShownCmdline() gives it).
std::string DescribeProcess(const ProcessInfo& process);

/// Bytes of a command line that a log line or a printed report shows.
inline constexpr size_t kShownCmdlineBytes = 256;

/// A command line as log lines and reports show it: whole up to kShownCmdlineBytes, else its
/// first bytes, cut before a UTF-8 character rather than inside it, and "...". A Java classpath
/// makes command lines of 100 KB and more; owner matching always sees the whole one, and metric
/// labels carry only the comm.
std::string ShownCmdline(const std::string& cmdline);

}  // namespace portwatch
