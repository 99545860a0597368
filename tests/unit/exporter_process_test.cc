// tests/support's process launcher: what it starts never outlives the thread that started it.
#include "tests/support/exporter_process.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <gtest/gtest.h>

namespace portwatch::testing {
namespace {

std::string Comm(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(in, comm);
  return comm;
}

/// Reaps `pid` within 10 s; its wait status, or -1 if it still runs.
int ReapWithin10s(pid_t pid) {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      return status;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

TEST(ExporterProcessTest, DiesWithTheProcessThatStartedIt) {
  // The orphan is reparented to this process, which can then reap it and see how it ended.
  ASSERT_EQ(::prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  int pipe_fds[2];
  ASSERT_EQ(::pipe(pipe_fds), 0);
  const pid_t starter = ::fork();
  ASSERT_GE(starter, 0);
  if (starter == 0) {
    ::close(pipe_fds[0]);
    // Never destroyed: the starter ends without stopping what it started.
    auto* started = new ExporterProcess("sleep", {"30"});
    const pid_t pid = started->Pid();
    for (int attempt = 0; attempt < 1000 && Comm(pid) != "sleep"; ++attempt) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));  // until exec'd
    }
    [[maybe_unused]] const ssize_t written = ::write(pipe_fds[1], &pid, sizeof(pid));
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  pid_t sleeper = -1;
  const bool reported = ::read(pipe_fds[0], &sleeper, sizeof(sleeper)) == sizeof(sleeper);
  ::close(pipe_fds[0]);
  int starter_status = -1;
  EXPECT_EQ(::waitpid(starter, &starter_status, 0), starter);
  ASSERT_TRUE(reported);

  const int status = ReapWithin10s(sleeper);
  if (status == -1) {
    ::kill(sleeper, SIGKILL);
    ::waitpid(sleeper, nullptr, 0);
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_NE(status, -1) << "still running 10 s after its starter died";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) << "wait status " << status;
}

}  // namespace
}  // namespace portwatch::testing
