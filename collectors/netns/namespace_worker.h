#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <thread>

#include "collectors/common/result.h"
#include "collectors/netlink/transport.h"

namespace portwatch {

/// Raises CAP_SYS_ADMIN into the calling thread's effective set when it is permitted. The
/// exporter keeps it permitted but not effective (see PlanPrivileges), so only a thread entering
/// a namespace acts with it; capabilities are per thread. Without it setns fails with EPERM,
/// which the caller reports.
void RaiseSysAdminOnThisThread();
/// Clears CAP_SYS_ADMIN from the calling thread's effective set (it stays permitted).
void DropSysAdminOnThisThread();

/// One thread that makes file descriptors inside other network namespaces and comes back to its
/// own after each: what a BPF socket iterator walks is fixed by the namespace of the thread that
/// creates it, and the collector and web threads must neither change namespace nor act with
/// CAP_SYS_ADMIN (setns needs it).
///
/// A thread per action measured 44-56 us (clone and join), this thread 23 us per action (two
/// setns and a wake-up), on 2 CPUs with a build running: a pod's scrape makes two or three walks.
/// The thread starts at the first Run() and holds CAP_SYS_ADMIN only during an action. Run() may
/// be called from several threads at once: actions run one at a time.
class NamespaceWorker {
 public:
  using Make = std::function<Result<netlink::UniqueFd>()>;

  NamespaceWorker() = default;
  NamespaceWorker(const NamespaceWorker&) = delete;
  NamespaceWorker& operator=(const NamespaceWorker&) = delete;
  ~NamespaceWorker();

  /// Runs `make` inside the network namespace of `namespace_fd` (an open /proc/<pid>/ns/net) and
  /// returns what it made. Fails without running `make` when the worker cannot start, cannot
  /// read its own namespace or cannot enter `namespace_fd`'s ("setns ...").
  Result<netlink::UniqueFd> Run(int namespace_fd, const Make& make);

 private:
  struct Job {
    int namespace_fd = -1;
    const Make* make = nullptr;
  };
  void Loop();
  /// One job on the worker thread; false in `home` when the thread could not come back to its
  /// own namespace (it must not run another job).
  Result<netlink::UniqueFd> Perform(const Job& job, bool& home) const;

  std::mutex run_mutex_;  ///< one Run() at a time, held across the hand-off
  std::mutex mutex_;      ///< guards what follows, with changed_
  std::condition_variable changed_;
  std::optional<Job> job_;
  std::optional<Result<netlink::UniqueFd>> done_;
  bool stop_ = false;
  bool exited_ = false;  ///< the thread ended (stranded in a foreign namespace, or stopped)
  std::thread thread_;
  netlink::UniqueFd own_;  ///< the worker's own network namespace, opened at its start
};

}  // namespace portwatch
