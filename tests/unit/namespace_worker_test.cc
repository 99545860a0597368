// NamespaceWorker runs an action inside another network namespace on its own thread and comes
// back to its own; the calling thread never moves. Entering a namespace needs CAP_SYS_ADMIN (the
// exporter's is permitted, raised by the worker alone): skipped without.
#include "collectors/netns/namespace_worker.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace portwatch {
namespace {

uint64_t InodeOf(int fd) {
  struct stat status {};
  return ::fstat(fd, &status) == 0 ? status.st_ino : 0;
}

uint64_t NamespaceOfThread(pid_t tid) {
  struct stat status {};
  const std::string path = "/proc/self/task/" + std::to_string(tid) + "/ns/net";
  return ::stat(path.c_str(), &status) == 0 ? status.st_ino : 0;
}

pid_t ThisThread() { return static_cast<pid_t>(::syscall(SYS_gettid)); }

/// A new network namespace, held by an fd only (made on a thread of its own: unshare moves the
/// calling thread).
netlink::UniqueFd NewNamespace(std::string& error) {
  netlink::UniqueFd made;
  std::thread maker([&made, &error] {
    RaiseSysAdminOnThisThread();
    if (::unshare(CLONE_NEWNET) != 0) {
      error = std::string("unshare: ") + ::strerror(errno);
      return;
    }
    made = netlink::UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  });
  maker.join();
  return made;
}

class NamespaceWorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    own_ = netlink::UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(own_.Valid());
    std::string error;
    pod_ = NewNamespace(error);
    if (!pod_.Valid()) {
      GTEST_SKIP() << "cannot make a network namespace here: " << error;
    }
    ASSERT_NE(InodeOf(pod_.Get()), InodeOf(own_.Get()));
  }

  /// An action that opens the namespace it runs in and notes the thread it ran on.
  NamespaceWorker::Make OpenHere(std::vector<pid_t>& threads) {
    return [&threads]() -> Result<netlink::UniqueFd> {
      threads.push_back(ThisThread());
      return netlink::UniqueFd(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    };
  }

  netlink::UniqueFd own_;
  netlink::UniqueFd pod_;
  NamespaceWorker worker_;
};

TEST_F(NamespaceWorkerTest, RunsInsideTheNamespaceOnOneThreadThatComesBack) {
  std::vector<pid_t> threads;
  for (int run = 0; run < 3; ++run) {
    Result<netlink::UniqueFd> made = worker_.Run(pod_.Get(), OpenHere(threads));
    ASSERT_TRUE(made) << made.Error();
    EXPECT_EQ(InodeOf(made->Get()), InodeOf(pod_.Get()));
  }
  ASSERT_EQ(threads.size(), 3U);
  EXPECT_NE(threads[0], ThisThread());
  EXPECT_EQ(threads[1], threads[0]);
  EXPECT_EQ(threads[2], threads[0]);
  // The worker, idle, is back in the exporter's namespace; the caller never left it.
  EXPECT_EQ(NamespaceOfThread(threads[0]), InodeOf(own_.Get()));
  EXPECT_EQ(NamespaceOfThread(ThisThread()), InodeOf(own_.Get()));
}

TEST_F(NamespaceWorkerTest, ANamespaceThatCannotBeEnteredRunsNothingAndTheWorkerGoesOn) {
  std::vector<pid_t> threads;
  // A pipe is no namespace: setns refuses it (EINVAL).
  int ends[2];
  ASSERT_EQ(::pipe(ends), 0);
  const netlink::UniqueFd read_end(ends[0]);
  const netlink::UniqueFd write_end(ends[1]);
  Result<netlink::UniqueFd> refused = worker_.Run(read_end.Get(), OpenHere(threads));
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.Error(), "setns into a pod's network namespace: Invalid argument");
  EXPECT_TRUE(threads.empty());
  Result<netlink::UniqueFd> made = worker_.Run(pod_.Get(), OpenHere(threads));
  ASSERT_TRUE(made) << made.Error();
  EXPECT_EQ(InodeOf(made->Get()), InodeOf(pod_.Get()));
}

TEST_F(NamespaceWorkerTest, TheActionsFailureIsReturnedAsIs) {
  Result<netlink::UniqueFd> failed = worker_.Run(
      pod_.Get(), []() -> Result<netlink::UniqueFd> { return Failure{"no iterator here"}; });
  ASSERT_FALSE(failed);
  EXPECT_EQ(failed.Error(), "no iterator here");
}

TEST_F(NamespaceWorkerTest, CallersOnSeveralThreadsEachGetTheirOwnResult) {
  constexpr int kCallers = 4;
  constexpr int kRunsEach = 25;
  std::vector<int> wrong(kCallers, 0);
  std::vector<std::thread> callers;
  callers.reserve(kCallers);
  for (int caller = 0; caller < kCallers; ++caller) {
    callers.emplace_back([this, caller, &wrong] {
      for (int run = 0; run < kRunsEach; ++run) {
        // Each caller's action hands back a pipe holding the caller's number: a result handed
        // to another caller would show.
        const auto mine = static_cast<char>(caller);
        Result<netlink::UniqueFd> made =
            worker_.Run(pod_.Get(), [mine]() -> Result<netlink::UniqueFd> {
              int ends[2];
              if (::pipe(ends) != 0) {
                return Failure{"pipe"};
              }
              const netlink::UniqueFd write_end(ends[1]);
              if (::write(write_end.Get(), &mine, 1) != 1) {
                return Failure{"write"};
              }
              return netlink::UniqueFd(ends[0]);
            });
        char got = -1;
        if (!made || ::read(made->Get(), &got, 1) != 1 || got != mine) {
          ++wrong[caller];
        }
      }
    });
  }
  for (std::thread& caller : callers) {
    caller.join();
  }
  EXPECT_EQ(wrong, std::vector<int>(kCallers, 0));
}

}  // namespace
}  // namespace portwatch
