#include "collectors/netns/namespace_worker.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/capability.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>
#include <type_traits>
#include <utility>

#include <spdlog/spdlog.h>

#include "collectors/common/logfmt.h"

namespace portwatch {

namespace {

void SetSysAdminOnThisThread(cap_flag_value_t value) {
  struct CapFree {
    void operator()(void* object) const { cap_free(object); }
  };
  const std::unique_ptr<std::remove_pointer_t<cap_t>, CapFree> state(cap_get_proc());
  if (!state) {
    return;
  }
  cap_flag_value_t permitted = CAP_CLEAR;
  cap_get_flag(state.get(), CAP_SYS_ADMIN, CAP_PERMITTED, &permitted);
  cap_flag_value_t effective = CAP_CLEAR;
  cap_get_flag(state.get(), CAP_SYS_ADMIN, CAP_EFFECTIVE, &effective);
  if (permitted == CAP_SET && effective != value) {
    const cap_value_t sys_admin[] = {CAP_SYS_ADMIN};
    cap_set_flag(state.get(), CAP_EFFECTIVE, 1, sys_admin, value);
    cap_set_proc(state.get());
  }
}

}  // namespace

void RaiseSysAdminOnThisThread() { SetSysAdminOnThisThread(CAP_SET); }

void DropSysAdminOnThisThread() { SetSysAdminOnThisThread(CAP_CLEAR); }

NamespaceWorker::~NamespaceWorker() {
  {
    const std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  if (thread_.joinable()) {
    thread_.join();
  }
}

Result<netlink::UniqueFd> NamespaceWorker::Run(int namespace_fd, const Make& make) {
  const std::lock_guard run(run_mutex_);
  std::unique_lock lock(mutex_);
  if (!thread_.joinable() || exited_) {
    if (thread_.joinable()) {
      lock.unlock();
      thread_.join();
      lock.lock();
    }
    // The caller's namespace is the exporter's: collector threads never leave it.
    own_ = netlink::UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    if (!own_.Valid()) {
      return Failure{ErrnoText("open /proc/thread-self/ns/net", errno)};
    }
    exited_ = false;
    try {
      thread_ = std::thread([this] { Loop(); });
    } catch (const std::system_error& error) {
      return Failure{std::string("cannot start the namespace worker thread: ") + error.what()};
    }
  }
  job_ = Job{namespace_fd, &make};
  done_.reset();
  changed_.notify_all();
  changed_.wait(lock, [this] { return done_.has_value(); });
  Result<netlink::UniqueFd> result = std::move(*done_);
  done_.reset();
  return result;
}

void NamespaceWorker::Loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, [this] { return stop_ || job_.has_value(); });
    if (stop_) {
      exited_ = true;
      return;
    }
    const Job job = *job_;
    job_.reset();
    lock.unlock();
    bool home = true;
    Result<netlink::UniqueFd> made = Perform(job, home);
    lock.lock();
    done_.emplace(std::move(made));
    changed_.notify_all();
    if (!home) {
      // A thread left in a pod's namespace must not run anything else: the next Run() starts
      // another.
      exited_ = true;
      return;
    }
  }
}

Result<netlink::UniqueFd> NamespaceWorker::Perform(const Job& job, bool& home) const {
  RaiseSysAdminOnThisThread();
  if (::setns(job.namespace_fd, CLONE_NEWNET) != 0) {
    const int error = errno;
    DropSysAdminOnThisThread();
    return Failure{ErrnoText("setns into a pod's network namespace", error)};
  }
  Result<netlink::UniqueFd> made = (*job.make)();
  if (::setns(own_.Get(), CLONE_NEWNET) != 0) {
    home = false;
    spdlog::warn("{}", LogLine("cannot return to the exporter's network namespace; the namespace "
                               "worker thread ends")
                           .Add("err", ErrnoText("setns", errno))
                           .Text());
  }
  DropSysAdminOnThisThread();
  return made;
}

}  // namespace portwatch
