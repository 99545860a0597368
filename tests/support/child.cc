#include "tests/support/child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace portwatch::testing {

ChildProcess::ChildProcess(const std::string& name, const Setup& setup, const Setup& serve) {
  int ready_pipe[2];
  if (::pipe2(ready_pipe, O_CLOEXEC) != 0) {
    return;
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::close(ready_pipe[0]);
    ::prctl(PR_SET_NAME, name.c_str(), 0, 0, 0);
    ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    std::vector<UniqueFd> keep;
    setup(keep);
    const char byte = 1;
    (void)::write(ready_pipe[1], &byte, 1);
    if (serve) {
      serve(keep);
    }
    while (true) {
      ::pause();
    }
  }
  ::close(ready_pipe[1]);
  pollfd wanted{ready_pipe[0], POLLIN, 0};
  char byte = 0;
  ready_ = pid_ > 0 && ::poll(&wanted, 1, 10000) == 1 && ::read(ready_pipe[0], &byte, 1) == 1;
  ::close(ready_pipe[0]);
}

ChildProcess::~ChildProcess() { Kill(); }

void ChildProcess::Kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

}  // namespace portwatch::testing
