#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "tests/support/sockets.h"

namespace portwatch::testing {

/// A forked child that plays a service: it names itself (its comm, what `ps` and portwatch
/// show), runs `setup` to open the sockets it will hold, reports ready, runs `serve` if given
/// (a bounded loop, e.g. accepting connections) and then sleeps until killed. The destructor
/// kills it (SIGKILL) and reaps it.
class ChildProcess {
 public:
  using Setup = std::function<void(std::vector<UniqueFd>& keep)>;

  ChildProcess(const std::string& name, const Setup& setup, const Setup& serve = nullptr);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  /// True once the child ran its setup (bounded wait: 10 s).
  bool Ready() const { return ready_; }
  pid_t Pid() const { return pid_; }
  /// Kills and reaps the child now; its TIME_WAIT sockets stay with the kernel.
  void Kill();

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
};

}  // namespace portwatch::testing
