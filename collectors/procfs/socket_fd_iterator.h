#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <unordered_set>
#include <vector>

#include "collectors/common/record_walk.h"
#include "collectors/common/result.h"
#include "collectors/procfs/procfs.h"
#include "collectors/procfs/socket_owners.h"

struct portwatch_owner_iter;

namespace portwatch {

/// Reads one owner walk (collectors/bpf/owner_iter_abi.h records, then the trailer, then the
/// end, see ReadRecordWalk): every (inode, pid, fd) in the order written, or the Failure.
Result<std::vector<SocketFd>> ReadOwnerWalk(const ReadWalkBytes& read);

/// The socket owner iterator (collectors/bpf/owner_iter.bpf.c, iter/task_file), loaded and
/// attached once: each Find() fills its map of wanted inodes and reads one new walk of every
/// process's fds. Find() may be called from several threads (the map is shared: one at a time).
class SocketFdIterator {
 public:
  /// Loads it, or says why not: a build without BPF, no CAP_BPF/CAP_PERFMON, no BTF, a seccomp
  /// filter or lockdown refusing bpf().
  static Result<std::unique_ptr<SocketFdIterator>> Load();

  SocketFdIterator(const SocketFdIterator&) = delete;
  SocketFdIterator& operator=(const SocketFdIterator&) = delete;
  ~SocketFdIterator();

  /// Every fd of every process of the calling thread's pid namespace that holds one of
  /// `inodes`, the processes numbered as in that namespace; none when `inodes` is empty.
  Result<std::vector<SocketFd>> Find(const std::unordered_set<uint32_t>& inodes);

 private:
  explicit SocketFdIterator(portwatch_owner_iter* program) : program_(program) {}
  /// Makes the kernel's wanted map hold exactly `inodes`, changing only the difference.
  Status SetWanted(const std::unordered_set<uint32_t>& inodes);

  portwatch_owner_iter* program_;
  std::mutex mutex_;
  /// What the kernel's map holds; unknown after a failed update (cleared before the next).
  std::unordered_set<uint32_t> in_map_;
  bool in_map_known_ = true;
};

/// The FindSocketFds that SocketOwnerCache uses in production: the task_file iterator, loaded
/// when this is called (once: a load that fails is not retried, and says so once in the log at
/// info);
/// a walk that fails is logged once at warn, and the pass reads /proc instead. Null (no strategy:
/// the /proc pass) for a `procfs` whose root is not /proc: a fixture tree has no kernel behind
/// it, and the iterator would report the real processes.
FindSocketFds KernelSocketFdFinder(const ProcFs& procfs);

}  // namespace portwatch
