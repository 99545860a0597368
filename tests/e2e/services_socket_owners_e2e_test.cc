// End to end: the processes holding real sockets, found by the task_file iterator
// (SocketFdIterator) and by the /proc pass, are the same: a listener in this process (also on a
// dup()ed fd, with a second thread sharing the fd table), one shared with a forked child, one
// passed to another process over SCM_RIGHTS, a UDP socket. In-process, in a private network
// namespace: the sockets are this test's own; the pid namespace is the host's.
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <tuple>
#include <unordered_set>
#include <vector>

#include <gtest/gtest.h>

#include "collectors/config.h"
#include "collectors/procfs/socket_fd_iterator.h"
#include "collectors/procfs/socket_owners.h"
#include "collectors/services/services_collector.h"
#include "tests/support/child.h"
#include "tests/support/netns.h"
#include "tests/support/sockets.h"

namespace portwatch::testing {
namespace {

uint32_t InodeOf(const UniqueFd& fd) {
  struct stat status {};
  return ::fstat(fd.Get(), &status) == 0 ? static_cast<uint32_t>(status.st_ino) : 0;
}

/// Sends `fd` over the unix socket `channel` (SCM_RIGHTS).
bool SendFd(int channel, int fd) {
  char byte = 'f';
  iovec data{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  header->cmsg_level = SOL_SOCKET;
  header->cmsg_type = SCM_RIGHTS;
  header->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(header), &fd, sizeof(int));
  return ::sendmsg(channel, &message, 0) == 1;
}

/// Receives an fd sent by SendFd; invalid on failure.
UniqueFd ReceiveFd(int channel) {
  char byte = 0;
  iovec data{&byte, 1};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
  msghdr message{};
  message.msg_iov = &data;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof(control);
  if (::recvmsg(channel, &message, 0) != 1) {
    return UniqueFd();
  }
  cmsghdr* header = CMSG_FIRSTHDR(&message);
  if (header == nullptr || header->cmsg_type != SCM_RIGHTS) {
    return UniqueFd();
  }
  int fd = -1;
  std::memcpy(&fd, CMSG_DATA(header), sizeof(int));
  return UniqueFd(fd);
}

using Holders = std::map<uint32_t, std::vector<pid_t>>;

Holders HolderPids(const SocketOwners& owners) {
  Holders holders;
  for (const auto& [inode, processes] : owners.by_inode) {
    for (const ProcessInfo& process : processes) {
      holders[inode].push_back(process.pid);
    }
    std::sort(holders[inode].begin(), holders[inode].end());
  }
  return holders;
}

std::vector<std::tuple<uint32_t, pid_t, int>> SortedFds(SocketOwners owners) {
  std::sort(owners.fds.begin(), owners.fds.end());
  return owners.fds;
}

/// The gauge `name`{labels} in `families`, -1 when absent.
double Sample(const std::vector<prometheus::MetricFamily>& families, const std::string& name,
              const std::map<std::string, std::string>& wanted) {
  for (const prometheus::MetricFamily& family : families) {
    if (family.name != name) {
      continue;
    }
    for (const prometheus::ClientMetric& metric : family.metric) {
      const bool matches = std::all_of(wanted.begin(), wanted.end(), [&metric](const auto& pair) {
        return std::any_of(metric.label.begin(), metric.label.end(), [&pair](const auto& label) {
          return label.name == pair.first && label.value == pair.second;
        });
      });
      if (matches) {
        return metric.gauge.value;
      }
    }
  }
  return -1;
}

class ServicesSocketOwnersE2eTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(EnterPrivateNetworkNamespace(), ""); }
};

TEST_F(ServicesSocketOwnersE2eTest, TaskFileWalkAndProcPassFindTheSameHolders) {
  Result<std::unique_ptr<SocketFdIterator>> iterator = SocketFdIterator::Load();
  ASSERT_TRUE(iterator) << iterator.Error();

  // The receiver is forked first: it holds none of the sockets below until one is passed to it.
  int channel[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, channel), 0);
  const UniqueFd parent_end(channel[0]);
  const UniqueFd child_end(channel[1]);
  ChildProcess receiver(
      "owners-recv", [](std::vector<UniqueFd>&) {},
      [&child_end](std::vector<UniqueFd>& keep) {
        keep.push_back(ReceiveFd(child_end.Get()));
        const int received = keep.back().Get();
        (void)::write(child_end.Get(), &received, sizeof(received));
      });
  ASSERT_TRUE(receiver.Ready());

  // Shared with a forked child: both hold it, on the same fd number.
  const UniqueFd shared = Listen("127.0.0.1", 6002);
  ASSERT_TRUE(shared.Valid());
  ChildProcess forked("owners-fork", [](std::vector<UniqueFd>&) {});
  ASSERT_TRUE(forked.Ready());

  // Passed: made after both forks, sent to the receiver, closed here.
  int received_fd = -1;
  uint32_t passed_inode = 0;
  {
    const UniqueFd passed = Listen("127.0.0.1", 6003);
    ASSERT_TRUE(passed.Valid());
    passed_inode = InodeOf(passed);
    ASSERT_TRUE(SendFd(parent_end.Get(), passed.Get()));
    pollfd wait{parent_end.Get(), POLLIN, 0};
    ASSERT_EQ(::poll(&wait, 1, 5000), 1);
    ASSERT_EQ(::read(parent_end.Get(), &received_fd, sizeof(received_fd)),
              static_cast<ssize_t>(sizeof(received_fd)));
    ASSERT_GE(received_fd, 0);
  }

  // Only this process: a listener on two fds, and a UDP socket.
  const UniqueFd own = Listen("127.0.0.1", 6001);
  const UniqueFd own_again(::dup(own.Get()));
  const UniqueFd udp = Bind(SOCK_DGRAM, "127.0.0.1", 6004);
  ASSERT_TRUE(own.Valid() && own_again.Valid() && udp.Valid());
  // A second thread shares this process's fd table: the walk must not report its fds again.
  std::atomic<bool> stop{false};
  std::thread sharing_thread([&stop] {
    while (!stop) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  });

  const uint32_t own_inode = InodeOf(own);
  const uint32_t shared_inode = InodeOf(shared);
  const uint32_t udp_inode = InodeOf(udp);
  const std::unordered_set<uint32_t> wanted = {own_inode, shared_inode, passed_inode, udp_inode};
  ASSERT_EQ(wanted.size(), 4U);
  ASSERT_EQ(wanted.count(0), 0U);

  // The walk itself, record by record.
  Result<std::vector<SocketFd>> walked = (*iterator)->Find(wanted);
  ASSERT_TRUE(walked) << walked.Error();
  std::vector<SocketFd> records = *walked;
  std::sort(records.begin(), records.end());
  const pid_t self = ::getpid();
  std::vector<SocketFd> expected = {{own_inode, self, own.Get()},
                                    {own_inode, self, own_again.Get()},
                                    {shared_inode, self, shared.Get()},
                                    {shared_inode, forked.Pid(), shared.Get()},
                                    {passed_inode, receiver.Pid(), received_fd},
                                    {udp_inode, self, udp.Get()}};
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(records, expected);

  // The owners both ways.
  const SocketOwners from_proc = FindSocketOwners(ProcFs(), wanted);
  const SocketOwners from_walk = FindSocketOwners(
      ProcFs(), wanted, false, {}, [&iterator](const std::unordered_set<uint32_t>& inodes) {
        return (*iterator)->Find(inodes);
      });
  stop = true;
  sharing_thread.join();

  EXPECT_EQ(from_proc.method, FdScanMethod::kProcfs);
  EXPECT_EQ(from_walk.method, FdScanMethod::kBpfTaskFile);
  EXPECT_EQ(from_walk.find_fds_error, "");
  const Holders expected_holders = {
      {own_inode, {self}},
      {shared_inode, {std::min(self, forked.Pid()), std::max(self, forked.Pid())}},
      {passed_inode, {receiver.Pid()}},
      {udp_inode, {self}}};
  EXPECT_EQ(HolderPids(from_proc), expected_holders);
  EXPECT_EQ(HolderPids(from_walk), expected_holders);
  EXPECT_EQ(SortedFds(from_walk), SortedFds(from_proc));
  EXPECT_EQ(from_walk.first_fd, from_proc.first_fd);
  // The lower of the two fds, as /proc lists them first.
  EXPECT_EQ(from_walk.first_fd.at(own_inode),
            (std::pair<pid_t, int>{self, std::min(own.Get(), own_again.Get())}));
  EXPECT_EQ(from_walk.first_fd.at(passed_inode),
            (std::pair<pid_t, int>{receiver.Pid(), received_fd}));
  // The same processes, identified alike.
  for (const auto& [inode, processes] : from_walk.by_inode) {
    const std::vector<ProcessInfo>& by_proc = from_proc.by_inode.at(inode);
    ASSERT_EQ(processes.size(), by_proc.size());
    for (size_t i = 0; i < processes.size(); ++i) {
      EXPECT_EQ(DescribeProcess(processes[i]), DescribeProcess(by_proc[i]));
      EXPECT_EQ(processes[i].exe, by_proc[i].exe);
      EXPECT_EQ(processes[i].uid, by_proc[i].uid);
    }
  }
  EXPECT_EQ(from_walk.by_inode.at(passed_inode).front().command, "owners-recv");
  // The /proc pass opened every process's fd directory; the walk read only the holders'.
  EXPECT_EQ(from_walk.processes_scanned, 3U);
  EXPECT_GE(from_proc.processes_scanned, from_walk.processes_scanned);
}

/// In a new pid namespace with its own /proc (what a container without hostPID has): the walk's
/// pids are that namespace's numbers, as its /proc shows them. Runs in a grandchild, pid 1 there;
/// its exit status says which check failed.
int CheckInNestedPidNamespace() {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      ::mount("proc", "/proc", "proc", 0, nullptr) != 0) {
    return 10;
  }
  if (::getpid() != 1) {
    return 11;
  }
  const UniqueFd listener = Listen("127.0.0.1", 6041);
  if (!listener.Valid()) {
    return 12;
  }
  Result<std::unique_ptr<SocketFdIterator>> iterator = SocketFdIterator::Load();
  if (!iterator) {
    return 13;
  }
  const uint32_t inode = InodeOf(listener);
  Result<std::vector<SocketFd>> found = (*iterator)->Find({inode});
  if (!found) {
    return 14;
  }
  if (*found != std::vector<SocketFd>{{inode, 1, listener.Get()}}) {
    return 15;
  }
  const SocketOwners from_proc = FindSocketOwners(ProcFs(), {inode});
  const SocketOwners from_walk = FindSocketOwners(
      ProcFs(), {inode}, false, {}, [&iterator](const std::unordered_set<uint32_t>& inodes) {
        return (*iterator)->Find(inodes);
      });
  if (from_walk.method != FdScanMethod::kBpfTaskFile ||
      HolderPids(from_walk) != HolderPids(from_proc) ||
      HolderPids(from_walk) != Holders{{inode, {1}}}) {
    return 16;
  }
  return 0;
}

TEST_F(ServicesSocketOwnersE2eTest, TaskFileWalkNumbersProcessesAsANestedPidNamespaceDoes) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (::unshare(CLONE_NEWPID | CLONE_NEWNS) != 0) {
      ::_exit(20);
    }
    const pid_t grandchild = ::fork();
    if (grandchild == 0) {
      ::_exit(CheckInNestedPidNamespace());
    }
    int status = 0;
    if (grandchild < 0 || ::waitpid(grandchild, &status, 0) != grandchild || !WIFEXITED(status)) {
      ::_exit(21);
    }
    ::_exit(WEXITSTATUS(status));
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: mount /proc, 11: not pid 1, 12: listen, 13: load, "
                                       "14: walk, 15: records, 16: owners";
}

TEST_F(ServicesSocketOwnersE2eTest, AnEmptyWantedSetAndASocketNobodyHolds) {
  Result<std::unique_ptr<SocketFdIterator>> iterator = SocketFdIterator::Load();
  ASSERT_TRUE(iterator) << iterator.Error();
  Result<std::vector<SocketFd>> none = (*iterator)->Find({});
  ASSERT_TRUE(none) << none.Error();
  EXPECT_TRUE(none->empty());
  // An inode no socket has: a whole walk, nothing found, the trailer read.
  Result<std::vector<SocketFd>> nothing = (*iterator)->Find({1});
  ASSERT_TRUE(nothing) << nothing.Error();
  EXPECT_TRUE(nothing->empty());
  // The wanted set changes between walks: only the current one is reported.
  const UniqueFd first = Listen("127.0.0.1", 6011);
  const UniqueFd second = Listen("127.0.0.1", 6012);
  ASSERT_TRUE(first.Valid() && second.Valid());
  Result<std::vector<SocketFd>> one = (*iterator)->Find({InodeOf(first)});
  ASSERT_TRUE(one) << one.Error();
  EXPECT_EQ(*one, (std::vector<SocketFd>{{InodeOf(first), ::getpid(), first.Get()}}));
  Result<std::vector<SocketFd>> other = (*iterator)->Find({InodeOf(second)});
  ASSERT_TRUE(other) << other.Error();
  EXPECT_EQ(*other, (std::vector<SocketFd>{{InodeOf(second), ::getpid(), second.Get()}}));
}

TEST_F(ServicesSocketOwnersE2eTest, ServicesCollectorUsesTheTaskFileWalk) {
  const UniqueFd listener = Listen("127.0.0.1", 6021);
  ASSERT_TRUE(listener.Valid());
  Config config;
  config.sockets.pods = false;
  config.services_options.listener_info = true;
  config.services_options.pid_label = true;
  ServicesCollector services(ProcFs(), KernelTransportFactory());
  std::vector<prometheus::MetricFamily> families;
  const Status status = services.Collect(config, families);
  ASSERT_TRUE(status) << status.Error();
  EXPECT_EQ(Sample(families, "portwatch_process_scan_method", {{"method", "bpf_task_file"}}), 1);
  EXPECT_EQ(Sample(families, "portwatch_process_scan_method", {{"method", "procfs"}}), 0);
  EXPECT_EQ(Sample(families, "portwatch_listener_info",
                   {{"port", "6021"}, {"pid", std::to_string(::getpid())}}),
            1);
  // Only the holder was read, not every process.
  EXPECT_EQ(Sample(families, "portwatch_process_scan_processes", {}), 1);
}

/// proc_inode_cache and dentry objects in use (/proc/slabinfo: node-wide, so other work on the
/// machine shows too), and the kernel memory charged to this process's memory cgroup.
struct KernelMemory {
  int64_t proc_inodes = 0;
  int64_t dentries = 0;
  int64_t cgroup_kernel_bytes = -1;
};

KernelMemory ReadKernelMemory() {
  KernelMemory memory;
  std::ifstream slabinfo("/proc/slabinfo");
  for (std::string line; std::getline(slabinfo, line);) {
    std::istringstream fields(line);
    std::string name;
    int64_t active = 0;
    fields >> name >> active;
    if (name == "proc_inode_cache") {
      memory.proc_inodes = active;
    } else if (name == "dentry") {
      memory.dentries = active;
    }
  }
  std::ifstream cgroups("/proc/self/cgroup");
  for (std::string line; std::getline(cgroups, line);) {
    const size_t colon = line.rfind(':');
    if (line.find(":memory:") != std::string::npos) {  // v1
      std::ifstream usage("/sys/fs/cgroup/memory" + line.substr(colon + 1) +
                          "/memory.kmem.usage_in_bytes");
      usage >> memory.cgroup_kernel_bytes;
    } else if (line.rfind("0::", 0) == 0 && memory.cgroup_kernel_bytes < 0) {  // v2
      std::ifstream stat("/sys/fs/cgroup" + line.substr(colon + 1) + "/memory.stat");
      for (std::string entry; std::getline(stat, entry);) {
        if (entry.rfind("slab ", 0) == 0) {
          memory.cgroup_kernel_bytes = std::stoll(entry.substr(5));
        }
      }
    }
  }
  return memory;
}

double ThreadCpuSeconds() {
  rusage usage{};
  ::getrusage(RUSAGE_THREAD, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/// Not a test: the figures of issue 13 (task_file walk vs /proc pass with many fds). Run with
///   e2e_test --gtest_also_run_disabled_tests --gtest_filter='*MeasureFullPass*'
/// PORTWATCH_MEASURE_FDS (default 15000) sockets held by each of PORTWATCH_MEASURE_PROCESSES
/// (default 1) children, plus one wanted listener here. Each round forks fresh children, so
/// that the /proc pass meets fds whose proc inodes and dentries do not exist yet (as after a
/// restart of the exporter or of the holders).
TEST_F(ServicesSocketOwnersE2eTest, DISABLED_MeasureFullPassTaskFileVsProc) {
  const char* fds_text = std::getenv("PORTWATCH_MEASURE_FDS");
  const char* processes_text = std::getenv("PORTWATCH_MEASURE_PROCESSES");
  const int fds = fds_text != nullptr ? std::atoi(fds_text) : 15000;
  const int processes = processes_text != nullptr ? std::atoi(processes_text) : 1;
  Result<std::unique_ptr<SocketFdIterator>> iterator = SocketFdIterator::Load();
  ASSERT_TRUE(iterator) << iterator.Error();
  const FindSocketFds walk = [&iterator](const std::unordered_set<uint32_t>& inodes) {
    return (*iterator)->Find(inodes);
  };
  const UniqueFd listener = Listen("127.0.0.1", 6031);
  ASSERT_TRUE(listener.Valid());
  const std::unordered_set<uint32_t> wanted = {InodeOf(listener)};

  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<ChildProcess>> holders;
    for (int i = 0; i < processes; ++i) {
      holders.push_back(std::make_unique<ChildProcess>("owners-many", [fds](auto& keep) {
        rlimit limit{};
        ::getrlimit(RLIMIT_NOFILE, &limit);
        limit.rlim_cur = limit.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &limit);
        for (int n = 0; n < fds; ++n) {
          keep.emplace_back(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
        }
      }));
      ASSERT_TRUE(holders.back()->Ready());
    }
    for (const bool use_walk : {true, false}) {
      const KernelMemory before = ReadKernelMemory();
      const auto wall_start = std::chrono::steady_clock::now();
      const double cpu_start = ThreadCpuSeconds();
      const SocketOwners owners =
          FindSocketOwners(ProcFs(), wanted, false, {}, use_walk ? walk : nullptr);
      const double cpu = ThreadCpuSeconds() - cpu_start;
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
      const KernelMemory after = ReadKernelMemory();
      ASSERT_EQ(owners.by_inode.size(), 1U);
      ASSERT_EQ(owners.method, use_walk ? FdScanMethod::kBpfTaskFile : FdScanMethod::kProcfs);
      std::printf(
          "round %d %-13s fds=%d x %d: wall %.1f ms, thread cpu %.1f ms, processes read %llu, "
          "proc_inode_cache %+lld, dentry %+lld, cgroup kernel memory %+lld KiB\n",
          round, use_walk ? "bpf_task_file" : "procfs", fds, processes, wall * 1e3, cpu * 1e3,
          static_cast<unsigned long long>(owners.processes_scanned),
          static_cast<long long>(after.proc_inodes - before.proc_inodes),
          static_cast<long long>(after.dentries - before.dentries),
          static_cast<long long>(before.cgroup_kernel_bytes < 0
                                     ? 0
                                     : (after.cgroup_kernel_bytes - before.cgroup_kernel_bytes) /
                                           1024));
    }
  }
}

}  // namespace
}  // namespace portwatch::testing
