#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "collectors/procfs.h"

namespace portwatch {

struct ProcessInfo {
  pid_t pid = 0;
  std::string command;  ///< /proc/<pid>/comm
  std::string cmdline;  ///< /proc/<pid>/cmdline with NULs as spaces
  std::string exe;      ///< /proc/<pid>/exe target; empty when not readable (no privilege)
  uid_t uid = 0;        ///< owner of /proc/<pid>
};

struct SocketOwners {
  /// Socket inode to the processes holding an fd on it (several after fork or SCM_RIGHTS).
  std::map<uint32_t, std::vector<ProcessInfo>> by_inode;
  /// For each wanted inode, one (pid, fd) that holds it: enough to duplicate the socket with
  /// pidfd_getfd() and read its options.
  std::map<uint32_t, std::pair<pid_t, int>> first_fd;
  /// Every process seen, when asked for with identify_all (the `ps -ef` view).
  std::vector<ProcessInfo> processes;
  uint64_t processes_scanned = 0;
  /// Processes that vanished mid-scan or whose fds could not be read (no privilege).
  uint64_t processes_skipped = 0;
};

/// Maps socket inodes to processes the way `ss -p` does: one pass over <proc>/<pid>/fd,
/// reading the links "socket:[INODE]". Only the wanted inodes are resolved. With
/// `identify_all`, the same pass also lists every process (for matching a service's owner).
SocketOwners FindSocketOwners(const ProcFs& procfs, const std::unordered_set<uint32_t>& inodes,
                              bool identify_all = false);

/// "pid 42 (nginx: nginx -g daemon off;)": how a log line or error names a process.
std::string DescribeProcess(const ProcessInfo& process);

}  // namespace portwatch
